# shellcheck shell=bash
# Sourced by the KV benchmark scripts: starts one server to measure and
# waits until it accepts connections.
#
#   start_kv_server SERVER PORT   # SERVER: a kv binary, or "redis"
#
# Sets `pid` to the server's process id; the caller stops it. Exits the
# script if the server is not up and listening within 10 s (a port held by
# another process would otherwise be measured in its place).
start_kv_server() {
  if [ "$1" = redis ]; then
    redis-server --port "$2" --save "" --appendonly no >/dev/null 2>&1 &
  else
    "$1" --port "$2" --tls-port 0 >/dev/null 2>&1 &
  fi
  pid=$!
  for _ in $(seq 1 100); do
    # Gone, or a zombie: it exited (another process holds the port?).
    if ! [ -e /proc/$pid/status ] || grep -q '^State:[[:space:]]*Z' /proc/$pid/status; then
      echo "$1 did not start (port $2 taken?)" >&2; exit 1
    fi
    (echo >/dev/tcp/127.0.0.1/"$2") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$1 is not listening on port $2 after 10 s" >&2; exit 1
}
