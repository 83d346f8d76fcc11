#!/usr/bin/env bash
# `make demo`: runs inside `python -m local_aws run`, so the local AWS and its
# PostgreSQL clusters are up and LOCAL_AWS_ENDPOINT is set; they are stopped
# when this script ends, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "demo: local AWS at ${LOCAL_AWS_ENDPOINT}"
ansible-playbook -i inventories/local playbooks/smoke.yml
echo "demo: run it again - nothing should change"
second=$(ansible-playbook -i inventories/local playbooks/smoke.yml)
printf '%s\n' "$second"
if grep -q "changed=0" <<<"$second"; then
  echo "demo: second run changed nothing (idempotent)"
else
  echo "demo: the second run changed something; it should not" >&2
  exit 1
fi
