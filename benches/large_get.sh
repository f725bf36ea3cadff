#!/usr/bin/env bash
# GET of 64 KiB values (1,000 keys, 50 connections, -P 1 and -P 16) with the
# project's load generator: the KV example against redis-server, and with
# BASE_KV an older kv build, contenders alternating each round; prints every
# run and the medians.
#
#   cargo build --release --examples
#   benches/large_get.sh [ROUNDS]                         # default 3
#   BASE_KV=/path/to/older/kv benches/large_get.sh 3
#
# Every run is bounded: 0.5 s of warm-up and 2 s measured, under `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
KV=${KV:-target/release/examples/kv}
LOADGEN=target/release/examples/loadgen
[ -x "$KV" ] && [ -x "$LOADGEN" ] || { echo "build first: cargo build --release --examples" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "apt-get install redis-server" >&2; exit 1; }
OUT=$(mktemp)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -f "$OUT"' EXIT
PORT=16390

one() { # name command... : starts it, measures -P 1 and -P 16, stops it
  local name=$1; shift
  "$@" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  for p in 1 16; do
    local rate
    rate=$(timeout 60 "$LOADGEN" -p $PORT -w get -d 65536 -r 1000 --prefill -c 50 -P "$p" \
      -t 2 --warmup 0.5 --progress never --json |
      python3 -c 'import sys, json; print(round(json.load(sys.stdin)["throughput"]))')
    echo "$name -P $p $rate" | tee -a "$OUT"
  done
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
}

for _ in $(seq 1 "$ROUNDS"); do
  [ -n "${BASE_KV:-}" ] && one kv-base "$BASE_KV" --port $PORT --tls-port 0
  one kv "$KV" --port $PORT --tls-port 0
  one redis redis-server --port $PORT --save "" --appendonly no
done
echo "medians (GETs per second):"
python3 - "$OUT" <<'PY'
import sys, statistics, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, _, p, rate = line.split()
    runs[(name, p)].append(int(rate))
med = {k: statistics.median(v) for k, v in runs.items()}
for (name, p), m in sorted(med.items()):
    ratio = m / med[("redis", p)] if ("redis", p) in med else float("nan")
    print(f"{name:8} -P {p:>2}  {m:>9.0f}  {ratio:.2f}x redis")
PY
