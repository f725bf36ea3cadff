#!/usr/bin/env bash
# What one SSCAN, HSCAN and ZSCAN call costs on a large collection: each
# given kv binary (say, two builds to compare) and redis-server, with a set,
# a hash and a sorted set of 200,000 members each, answering
# `?SCAN key 0 COUNT 10` from one client (redis-benchmark -c 1 -n CALLS),
# servers alternating round by round; prints each run and the medians. A
# call that walks COUNT members runs at round-trip speed; one that costs
# O(collection) runs at tens per second.
#
#   cargo build --release --example kv
#   benches/kv_scan_cost.sh ROUNDS CALLS SERVER...
#   benches/kv_scan_cost.sh 3 1000 /tmp/kv-before target/release/examples/kv redis
#
# Bounded: each redis-benchmark run stops after CALLS calls or 60 s.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/kv_server.sh
. benches/kv_server.sh
[ $# -ge 3 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
rounds=$1; calls=$2; shift 2
command -v redis-benchmark >/dev/null || { echo "redis-tools is missing (benches/setup.sh installs it)" >&2; exit 1; }
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
port=17600
for round in $(seq 1 "$rounds"); do
  index=0
  for server in "$@"; do
    index=$((index + 1))
    # Named by position too: two builds may both be called `kv`.
    name="$index:$(basename "$server")"
    start_kv_server "$server" $port
    seq 1 200000 | awk '{ print "SADD s m" $1; print "HSET h f" $1 " v"; print "ZADD z " $1 " m" $1 }' |
      redis-cli -p $port --pipe >/dev/null
    for command in SSCAN:s HSCAN:h ZSCAN:z; do
      rate=$(timeout 60 redis-benchmark -p $port -c 1 -n "$calls" -q "${command%:*}" "${command#*:}" 0 COUNT 10 2>&1 |
        tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | cut -d' ' -f1)
      echo "round $round $name ${command%:*}: ${rate:-0} calls/s"
      echo "$name ${command%:*} ${rate:-0}" >>"$out/runs"
    done
    kill -TERM $pid; wait $pid 2>/dev/null || true
  done
done
sort -k1,1 -k2,2 -k3,3n "$out/runs" | awk '
  { key = $1 " " $2; v[key, ++n[key]] = $3; if (!(key in seen)) { seen[key] = 1; order[++k] = key } }
  END { for (i = 1; i <= k; i++) { key = order[i]; m = n[key]
          med = m % 2 ? v[key, (m+1)/2] : (v[key, m/2] + v[key, m/2+1]) / 2
          printf "median %s: %.0f calls/s\n", key, med } }'
