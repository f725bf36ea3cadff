#!/usr/bin/env bash
# The KV example against redis-server on the same redis-benchmark workloads,
# alternating contenders (A B C A B C ...) and reporting medians and ratios.
#
#   apt-get install redis-server redis-tools
#   cargo build --release --example kv
#   benches/kv_vs_redis.sh [ROUNDS]        # default 3
#   BASE_KV=/path/to/older/kv benches/kv_vs_redis.sh   # adds it as "kv-base"
#
# Workloads: SET and GET, 50 clients, -P 16 (1,000,000 requests) and -P 1
# (200,000), plain and TLS. Contenders: kv inline, kv with 2 IO threads,
# redis-server (single-threaded), and with BASE_KV an older kv build inline
# (to measure a change against its base in the same run). Every redis-benchmark runs under `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
KV=${KV:-target/release/examples/kv}
[ -x "$KV" ] || { echo "build it first: cargo build --release --example kv" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "apt-get install redis-server" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
CERT="$WORK/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
  -keyout "$CERT.key" -out "$CERT.pem" >/dev/null 2>&1

start() { # name -> starts it on ports 16380 (plain) / 16381 (TLS)
  case $1 in
    kv-io0) "$KV" --port 16380 --tls-port 16381 --tls-cert-file "$CERT.pem" --tls-key-file "$CERT.key" >/dev/null 2>&1 & ;;
    kv-base) "$BASE_KV" --port 16380 --tls-port 16381 --tls-cert-file "$CERT.pem" --tls-key-file "$CERT.key" >/dev/null 2>&1 & ;;
    kv-io2) "$KV" --port 16380 --tls-port 16381 --tls-cert-file "$CERT.pem" --tls-key-file "$CERT.key" --io-threads 2 >/dev/null 2>&1 & ;;
    redis) redis-server --port 16380 --tls-port 16381 --tls-cert-file "$CERT.pem" --tls-key-file "$CERT.key" \
             --tls-auth-clients no --save '' --appendonly no --daemonize no >/dev/null 2>&1 & ;;
  esac
  PID=$!
  for _ in $(seq 100); do redis-cli -p 16380 ping >/dev/null 2>&1 && return; sleep 0.05; done
  echo "$1 did not start" >&2; exit 1
}

# rps and p99 (ms) of one test: "rps p99"
bench() { # port tls(0|1) test pipeline requests
  local extra=""; [ "$2" = 1 ] && extra="--tls --insecure"
  timeout 300 redis-benchmark -p "$1" $extra -t "$3" -P "$4" -n "$5" -c 50 -r 100000 --csv 2>/dev/null \
    | awk -F'"' 'NR==2 { print $4, $14 }'
}

CONTENDERS=(kv-io0 kv-io2 redis)
[ -n "${BASE_KV:-}" ] && CONTENDERS=(kv-base "${CONTENDERS[@]}")
echo "round contender tls test pipeline rps p99_ms" > "$WORK/results"
for round in $(seq "$ROUNDS"); do
  for who in "${CONTENDERS[@]}"; do
    start "$who"
    for tls in 0 1; do
      port=16380; [ "$tls" = 1 ] && port=16381
      for test in set get; do
        for p in 16 1; do
          n=1000000; [ "$p" = 1 ] && n=200000
          echo "$round $who $tls $test $p $(bench $port $tls $test $p $n)" >> "$WORK/results"
        done
      done
    done
    kill "$PID"; wait "$PID" 2>/dev/null || true
  done
done

python3 - "$WORK/results" <<'PY'
import sys, statistics, collections
rows = [l.split() for l in open(sys.argv[1]).read().splitlines()[1:]]
med = collections.defaultdict(list)
who_all = []
for r, who, tls, test, p, rps, p99 in rows:
    med[(who, tls, test, p)].append((float(rps), float(p99)))
    if who not in who_all:
        who_all.append(who)
print("median rps (p99 ms) over rounds; ratios against redis-server")
print(f"{'tls':>5} {'test':>4} {'P':>3} | " + " ".join(f"{w:>18}" for w in who_all) + " | " + " ".join(f"{w + '/redis':>13}" for w in who_all if w != "redis"))
for tls in "01":
    for test in ("set", "get"):
        for p in ("16", "1"):
            m = {w: (statistics.median(x for x, _ in med[(w, tls, test, p)]), statistics.median(y for _, y in med[(w, tls, test, p)])) for w in who_all}
            cells = " ".join(f"{m[w][0]:>10.0f} ({m[w][1]:>5.3f})" for w in who_all)
            ratios = " ".join(f"{m[w][0] / m['redis'][0]:>12.2f}x" for w in who_all if w != "redis")
            print(f"{'tls' if tls == '1' else 'plain':>5} {test:>4} {p:>3} | {cells} | {ratios}")
PY
