#!/usr/bin/env bash
# Make sure Graphviz's `dot` is on this machine (Debian package `graphviz`):
# the report role draws the architecture with it (through the `diagrams`
# Python package). Like ensure-postgres.sh: installs as root, tells others how.
set -euo pipefail
if command -v dot >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: Graphviz (dot) is missing; install it with:" >&2
  echo "  sudo apt-get install -y graphviz" >&2
  exit 1
fi
echo "setup: installing Graphviz (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq graphviz >/dev/null
command -v dot >/dev/null
