#!/usr/bin/env bash
# Server CPU per request of KV servers side by side: each given kv binary
# (say, two builds of examples/kv to compare) and redis-server, under the
# same pipelined load, in alternating rounds.
#
#   benches/kv_cpu_ab.sh ROUNDS WORKLOAD PIPELINE SERVER...
#   benches/kv_cpu_ab.sh 3 get 16 /tmp/kv-before target/release/examples/kv redis
#
# Each run: a fresh server, filled by 1 s of `loadgen -w set` (100,000
# keys), then `loadgen -w WORKLOAD -c 50 -P PIPELINE --seconds 2 --warmup
# 1`; `perf stat -e task-clock` watches the server for the 2 measured
# seconds. Prints requests per second and server CPU microseconds per
# request, one line per run. Bounded: every load generator run stops by
# itself.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/kv_server.sh
. benches/kv_server.sh
[ $# -ge 4 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
rounds=$1; workload=$2; pipeline=$3; shift 3
E=target/release/examples
[ -x $E/loadgen ] || { echo "build first: cargo build --release --examples" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf is missing (benches/setup.sh installs it)" >&2; exit 1; }
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
port=17400
for round in $(seq 1 "$rounds"); do
  for server in "$@"; do
    start_kv_server "$server" $port
    $E/loadgen -p $port -w set -c 50 -P 16 --seconds 1 --warmup 0 --progress never >/dev/null 2>&1
    (sleep 1; perf stat -x, -e task-clock -p $pid -o "$out/stat" -- sleep 2 >/dev/null 2>&1) &
    watcher=$!
    report=$(timeout 60 $E/loadgen -p $port -w "$workload" -c 50 -P "$pipeline" \
      --seconds 2 --warmup 1 --progress never 2>&1)
    wait $watcher
    kill -TERM $pid; wait $pid 2>/dev/null || true
    requests=$(echo "$report" | grep -m1 -o '([0-9]* requests)' | tr -dc 0-9)
    ms=$(grep task-clock "$out/stat" | cut -d, -f1)
    awk -v r="$round" -v s="$(basename "$server")" -v n="$requests" -v ms="$ms" \
      -v w="$workload" -v p="$pipeline" \
      'BEGIN { printf "round %d %-12s %s -P %s: %.0f requests/s, %.3f us CPU per request\n", r, s, w, p, n / 2, ms * 1000 / n }'
  done
done
