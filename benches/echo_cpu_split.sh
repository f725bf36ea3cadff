#!/usr/bin/env bash
# Server CPU per echoed message, split into user space and kernel, for
# baton's echo example and the tokio echo side by side: the matrix's echo
# load (64 connections), contenders alternating, medians of ROUNDS.
#
#   cargo build --release --examples
#   benches/echo_cpu_split.sh ROUNDS SIZE PIPELINE [tls|plain] [ECHO_BINARY...]
#   benches/echo_cpu_split.sh 5 4096 1
#   benches/echo_cpu_split.sh 3 64 1 plain /tmp/echo-abc123   # another build too
#
# An ECHO_BINARY (the echo example of another build) runs as one more
# contender in every round, reported by its path against tokio.
# Each run: a fresh server, `loadgen -w echo -c 64 -d SIZE -P PIPELINE
# --seconds 5 --warmup 1`; the server's user and system time are read from
# /proc/PID/stat 1 s after the load generator starts (its warm-up) and 5 s
# later, and divided by the messages of its 5 measured seconds (the two
# windows line up to within the load generator's start-up). The kernel
# splits CPU time into user and system by sampling at each tick (4 ms
# here), so at one message per round trip, where user space is under a
# tenth of a server's CPU, one run's user figure is known to about 10%:
# hence 5 s, not the matrix's 2, and medians. CPU is the median of each
# run's total, so it need not equal the median user plus the median kernel
# time. Bounded: the load generator stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
rounds=$1; size=$2; pipeline=$3; tls=${4:-}; shift 3; [ $# -gt 0 ] && shift
[ "$tls" = plain ] && tls=
for other in "$@"; do
  [ -x "$other" ] || { echo "$other is not an executable" >&2; exit 2; }
done
E=target/release/examples
for b in echo tokio_echo loadgen; do
  [ -x $E/$b ] || { echo "build first: cargo build --release --examples" >&2; exit 1; }
done
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
port=17300; tls_port=17301; extra=()
[ "$tls" = tls ] && { port=$tls_port; extra=(--tls --insecure); }
tick=$(getconf CLK_TCK)
for round in $(seq 1 "$rounds"); do
  for who in baton tokio "$@"; do
    case $who in
      baton) server=$E/echo ;;
      tokio) server=$E/tokio_echo ;;
      *) server=$who ;;
    esac
    "$server" --port 17300 --tls-port $tls_port >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
    # Another process on the port would answer the probe for a server that
    # failed to start (and is now a zombie): check it is ours and alive.
    if ! [ -e /proc/$pid/status ] || grep -q '^State:[[:space:]]*Z' /proc/$pid/status; then
      echo "$who did not start (port $port taken?)" >&2; exit 1
    fi
    # utime and stime are fields 14 and 15 of /proc/PID/stat.
    (sleep 1; a=$(cut -d' ' -f14,15 /proc/$pid/stat); sleep 5
     b=$(cut -d' ' -f14,15 /proc/$pid/stat); echo "$a $b" >"$out/times") &
    watcher=$!
    report=$(timeout 60 $E/loadgen -p $port "${extra[@]}" -w echo -c 64 -d "$size" \
      -P "$pipeline" --seconds 5 --warmup 1 --progress never 2>&1)
    wait $watcher
    kill -TERM $pid; wait $pid 2>/dev/null || true
    messages=$(echo "$report" | grep -m1 -o '([0-9]* requests)' | tr -dc 0-9)
    read -r u0 s0 u1 s1 <"$out/times"
    echo "$who $messages $((u1 - u0)) $((s1 - s0))" >>"$out/runs"
  done
done
awk -v tick="$tick" -v size="$size" -v p="$pipeline" -v tls="${tls:-plain}" '
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
  }
  {
    n[$1]++; k = n[$1]
    rate[$1, k] = $2 / 5; user[$1, k] = $3 * 1e6 / tick / $2; sys[$1, k] = $4 * 1e6 / tick / $2
    printf "round %d %-5s %8.0f msg/s  user %.3f  kernel %.3f us/msg\n", k, $1, $2 / 5, user[$1, k], sys[$1, k]
  }
  END {
    for (w in n) {
      for (k = 1; k <= n[w]; k++) { r[k] = rate[w, k]; u[k] = user[w, k]; s[k] = sys[w, k]; t[k] = u[k] + s[k] }
      mr[w] = median(r, n[w]); mu[w] = median(u, n[w]); ms[w] = median(s, n[w]); mt[w] = median(t, n[w])
    }
    printf "%s %s B x %s, medians of %d: baton %.0f msg/s, user %.3f, kernel %.3f, CPU %.3f us/msg; tokio %.0f msg/s, user %.3f, kernel %.3f, CPU %.3f us/msg; baton/tokio: %.2fx messages, %.2fx CPU, %.2fx kernel\n",
      tls, size, p, n["baton"], mr["baton"], mu["baton"], ms["baton"], mt["baton"], mr["tokio"], mu["tokio"], ms["tokio"], mt["tokio"],
      mr["baton"] / mr["tokio"], mt["baton"] / mt["tokio"], ms["baton"] / ms["tokio"]
    for (w in n) if (w != "baton" && w != "tokio")
      printf "%s: %.0f msg/s, user %.3f, kernel %.3f, CPU %.3f us/msg; /tokio: %.2fx messages, %.2fx CPU; /baton: %.2fx messages, %.2fx CPU\n",
        w, mr[w], mu[w], ms[w], mt[w], mr[w] / mr["tokio"], mt[w] / mt["tokio"], mr[w] / mr["baton"], mt[w] / mt["baton"]
  }' "$out/runs"
