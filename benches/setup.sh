#!/usr/bin/env bash
# Installs the benchmark peers and tools on Debian bookworm (run as root):
# redis-server 7 and redis-tools, valkey-server 8 from bookworm-backports,
# the TLS proxies the `proxy` section compares with (haproxy 2.6, hitch 1.7,
# stunnel4 5.68), perf (syscall counts), strace. Then builds what the matrix
# runs.
#
#   benches/setup.sh && cargo bench --bench matrix
set -euo pipefail
cd "$(dirname "$0")/.."
sources=/etc/apt/sources.list.d/debian.sources
if [ -f "$sources" ] && ! grep -q bookworm-backports "$sources"; then
  # valkey-server 8 is only in backports.
  sed -i '0,/^Suites:.*bookworm-updates/s//& bookworm-backports/' "$sources"
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools linux-perf strace
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy hitch stunnel4
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports valkey-server valkey-tools
# The packages start services on the default ports; the matrix uses its own
# ports and starts every peer itself. The proxies' services are of no use
# here: stop them and keep them from starting at boot.
for service in haproxy hitch stunnel4; do
  if command -v systemctl >/dev/null; then systemctl disable "$service" >/dev/null 2>&1 || true; fi
  if command -v service >/dev/null; then service "$service" stop >/dev/null 2>&1 || true; fi
done
redis-server --version
valkey-server --version
haproxy -v | sed -n 1p
hitch --version
stunnel -version 2>&1 | grep '^stunnel'
cargo build --release --examples
