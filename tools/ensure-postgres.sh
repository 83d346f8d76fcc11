#!/usr/bin/env bash
# Make sure PostgreSQL server binaries are on this machine (Debian packages).
# The local stack runs its own clusters from them; nothing system-wide is used.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || [ -n "${LOCAL_PG_BIN:-}" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: PostgreSQL server binaries are missing; install them with:" >&2
  echo "  sudo apt-get install -y postgresql postgresql-contrib" >&2
  echo "(or set LOCAL_PG_BIN to a folder holding initdb/pg_ctl)" >&2
  exit 1
fi
echo "setup: installing PostgreSQL server packages (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql postgresql-contrib >/dev/null
