# Sourced by the KV benchmark scripts: starts one server to measure and
# waits until it accepts connections.
#
#   start_kv_server SERVER PORT   # SERVER: a kv binary, or "redis"
#
# Sets `pid` to the server's process id; the caller stops it.
start_kv_server() {
  if [ "$1" = redis ]; then
    redis-server --port "$2" --save "" --appendonly no >/dev/null 2>&1 &
  else
    "$1" --port "$2" --tls-port 0 >/dev/null 2>&1 &
  fi
  pid=$!
  for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$2") 2>/dev/null && break; sleep 0.1; done
}
