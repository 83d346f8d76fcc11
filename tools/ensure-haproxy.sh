#!/usr/bin/env bash
# Make sure HAProxy is on this machine (Debian package `haproxy`): the local
# Elastic Beanstalk puts one in front of each environment that runs its
# version (see docs/local-aws-elasticbeanstalk.md). Like ensure-postgres.sh:
# installs as root, tells others how. Nothing system-wide is used: the
# package's own service is left stopped, each environment runs its own
# HAProxy on loopback (LOCAL_HAPROXY_BIN points at another binary).
set -euo pipefail
if [ -n "${LOCAL_HAPROXY_BIN:-}" ] || command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: HAProxy is missing; install it with:" >&2
  echo "  sudo apt-get install -y haproxy" >&2
  echo "(or set LOCAL_HAPROXY_BIN to an haproxy binary)" >&2
  exit 1
fi
echo "setup: installing HAProxy (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq
# Where the package's own service starts (systemd), it is stopped and
# disabled at once: the local stack never uses it.
apt-get -o DPkg::Lock::Timeout=300 install -y -qq haproxy >/dev/null
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet haproxy 2>/dev/null; then
  systemctl stop haproxy || true
  systemctl disable haproxy >/dev/null 2>&1 || true
fi
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null
