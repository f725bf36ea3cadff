#!/usr/bin/env bash
# Installs the benchmark peers and tools on Debian bookworm (run as root):
# redis-server 7 and redis-tools, valkey-server 8 from bookworm-backports,
# perf (syscall counts), strace. Then builds what the matrix runs.
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
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports valkey-server valkey-tools
# The packages start services on the default ports; the matrix uses its own.
redis-server --version
valkey-server --version
cargo build --release --examples
