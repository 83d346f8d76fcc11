#!/usr/bin/env bash
# `make demo`: runs inside `python -m local_aws run`, so the local AWS and its
# PostgreSQL clusters are up and LOCAL_AWS_ENDPOINT is set; they are stopped
# when this script ends, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "demo: local AWS at ${LOCAL_AWS_ENDPOINT}"
ansible-playbook -i inventories/local playbooks/smoke.yml
echo "demo: run it again - nothing should change"
ansible-playbook -i inventories/local playbooks/smoke.yml | tee /dev/stderr | grep -q "changed=0" \
  && echo "demo: second run changed nothing (idempotent)"
