#!/usr/bin/env bash
# User-space instructions per echoed message, baton's echo example against
# the tokio echo, counted by callgrind: deterministic where CPU time on
# this shared machine is not. Each server runs under
# `valgrind --tool=callgrind` twice, echoing SMALL and then SMALL +
# 100,000 messages (`loadgen -w echo -c 16 -d SIZE -P PIPELINE`); the
# difference of the two totals over 100,000 leaves out start-up (the echo
# example generates a TLS certificate) and connection set-up.
#
#   cargo build --release --examples
#   benches/echo_instructions.sh SIZE PIPELINE
#   benches/echo_instructions.sh 64 1
#
# Bounded: each load generator run has a 300 s timeout (a run under
# callgrind takes about 20 s).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
size=$1; pipeline=$2
E=target/release/examples
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
small=2000
total() { # SERVER MESSAGES -> instructions of the whole run
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$E/$1" --port 17300 --tls-port 17301 \
    >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do (echo >/dev/tcp/127.0.0.1/17300) 2>/dev/null && break; sleep 0.1; done
  timeout 300 "$E/loadgen" -p 17300 -w echo -c 16 -d "$size" -n "$2" -P "$pipeline" \
    --progress never >/dev/null 2>&1
  kill -TERM $pid; wait $pid 2>/dev/null || true
  callgrind_annotate "$out/cg" >"$out/annotated" 2>/dev/null
  awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }' "$out/annotated"
}
for server in echo tokio_echo; do
  a=$(total $server $small)
  b=$(total $server $((small + 100000)))
  echo "$server, $size B x $pipeline: $(( (b - a) / 100000 )) user-space instructions per message"
done
