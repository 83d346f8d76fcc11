#!/usr/bin/env bash
# ansible-test bootstraps pip in each of its venvs with a script it downloads
# from a host this machine cannot reach; a cached copy is used when present.
# This stand-in does the same job offline: ensurepip, then pip installs the
# packages ansible-test asked for from the package index we can reach.
set -euo pipefail
pkg=$(python -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
pip_version=$(sed -n "s/.*pip='\([0-9.]*\)'.*/\1/p" "$pkg/_internal/python_requirements.py" | head -n1)
[ -n "$pip_version" ] || { echo "sanity: cannot read ansible-test's pip version" >&2; exit 1; }
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$cache")"
cat > "$cache" <<'PY'
"""Offline stand-in for get-pip.py, written by fastier.platform's tools/offline-get-pip.sh."""
import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"]
ca = "/etc/ssl/certs/ca-certificates.crt"
if os.path.exists(ca):
    cmd += ["--cert", ca]
sys.exit(subprocess.call(cmd + args))
PY
