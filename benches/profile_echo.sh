#!/usr/bin/env bash
# Where an echo server's CPU goes, or which system calls it makes, under the
# matrix's echo load (64 connections): baton's echo example or the tokio
# echo, one at a time, so run it for both and compare.
#
#   cargo build --release --examples
#   benches/profile_echo.sh baton 64 16            # perf record: shares by DSO, top symbols
#   benches/profile_echo.sh tokio 4096 16 tls
#   MODE=syscalls benches/profile_echo.sh baton 64 1   # system calls per message
#   MODE=syscalls benches/profile_echo.sh /tmp/echo-abc123 64 1   # another build's echo
#
# The server runs fresh; after the load generator's 1 s of warm-up, perf
# watches the server for the 2 s the load generator measures (`perf record
# -e cpu-clock`, or `perf stat` of the syscall tracepoints), so system calls
# are divided by the messages of that window. Bounded: the load generator
# stops after 1 s of warm-up and 2 s measured.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
who=$1; size=$2; pipeline=$3; tls=${4:-}
E=target/release/examples
case $who in
  baton) server=$E/echo ;;
  tokio) server=$E/tokio_echo ;;
  */*) server=$who ;;
  *) echo "baton, tokio or the path of an echo example's binary" >&2; exit 2 ;;
esac
[ -x "$server" ] && [ -x $E/loadgen ] || { echo "build first: cargo build --release --examples" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf is missing (benches/setup.sh installs it)" >&2; exit 1; }
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
port=17300; tls_port=17301; extra=()
[ "$tls" = tls ] && { port=$tls_port; extra=(--tls --insecure); }
"$server" --port 17300 --tls-port $tls_port >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
if [ "${MODE:-profile}" = syscalls ]; then
  events=syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_read,syscalls:sys_enter_write
  (sleep 1; perf stat -x, -e "$events" -p $pid -o "$out/stat" -- sleep 2 >/dev/null 2>&1) &
else
  (sleep 1; perf record -e cpu-clock -p $pid -o "$out/perf.data" -- sleep 2 >/dev/null 2>&1) &
fi
watcher=$!
report=$(timeout 60 $E/loadgen -p $port -w echo -c 64 -d "$size" -P "$pipeline" \
  --seconds 2 --warmup 1 --progress never "${extra[@]}" 2>&1)
wait $watcher
kill -TERM $pid; wait $pid 2>/dev/null || true
echo "$who echo, $size B x $pipeline${tls:+, TLS}: $(echo "$report" | grep -m1 throughput)"
if [ "${MODE:-profile}" = syscalls ]; then
  messages=$(echo "$report" | grep -m1 -o '([0-9]* requests)' | tr -dc 0-9)
  awk -F, -v m="$messages" '$1 > 0 {split($3, a, ":"); printf "  %-16s %.3f per message\n", a[2], $1 / m}' "$out/stat"
else
  perf report -i "$out/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -5
  echo "top symbols:"
  perf report -i "$out/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -${TOP:-25}
fi
