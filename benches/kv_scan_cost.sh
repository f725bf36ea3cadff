#!/usr/bin/env bash
# What one SSCAN, HSCAN and ZSCAN call costs on a large collection: each
# given kv binary (say, two builds to compare) and redis-server, with a set,
# a hash and a sorted set of 200,000 members each, answering
# `?SCAN key 0 COUNT 10` from one client (redis-benchmark -c 1 -n 200). A
# call that walks COUNT members runs at round-trip speed; one that costs
# O(collection) runs at tens per second.
#
#   cargo build --release --example kv
#   benches/kv_scan_cost.sh target/release/examples/kv redis
#
# Bounded: each redis-benchmark run stops after 200 calls or 60 s.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
command -v redis-benchmark >/dev/null || { echo "redis-tools is missing (benches/setup.sh installs it)" >&2; exit 1; }
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
port=17600
for server in "$@"; do
  if [ "$server" = redis ]; then
    redis-server --port $port --save "" --appendonly no >/dev/null 2>&1 &
  else
    "$server" --port $port --tls-port 0 >/dev/null 2>&1 &
  fi
  pid=$!
  for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  seq 1 200000 | awk '{ print "SADD s m" $1; print "HSET h f" $1 " v"; print "ZADD z " $1 " m" $1 }' |
    redis-cli -p $port --pipe >/dev/null
  for command in "SSCAN s 0 COUNT 10" "HSCAN h 0 COUNT 10" "ZSCAN z 0 COUNT 10"; do
    # shellcheck disable=SC2086 # the command's words are separate arguments
    rate=$(timeout 60 redis-benchmark -p $port -c 1 -n 200 -q $command 2>&1 | tr '\r' '\n' |
      grep -o '[0-9.]* requests per second' | tail -1)
    echo "$(basename "$server") $command: ${rate:-no answer within 60 s}"
  done
  kill -TERM $pid; wait $pid 2>/dev/null || true
done
