#!/usr/bin/env bash
# `make demo`: runs inside `python -m local_aws run`, so the local AWS and its
# PostgreSQL clusters are up and LOCAL_AWS_ENDPOINT is set; they are stopped
# when this script ends, whatever happens.
#
# 1. site.yml builds every tier from inventories/local (a few minutes);
# 2. site.yml again: nothing may change;
# 3. report.yml: the architecture diagram and the cost estimate of what exists;
# 4. the summary of what exists (names, endpoints, the live URL) and the report.
set -euo pipefail
cd "$(dirname "$0")/.."
log_dir=.local/demo
mkdir -p "$log_dir"
echo "demo: local AWS at ${LOCAL_AWS_ENDPOINT}"

echo "demo: [1/4] site.yml - every tier from inventories/local (log: $log_dir/site.log)"
started=$SECONDS
if ! ansible-playbook -i inventories/local playbooks/site.yml >"$log_dir/site.log" 2>&1; then
  tail -n 40 "$log_dir/site.log" >&2
  echo "demo: site.yml failed; the whole log is $log_dir/site.log" >&2
  exit 1
fi
echo "demo: converged in $((SECONDS - started)) s: $(grep -E '^localhost +:' "$log_dir/site.log")"

echo "demo: [2/4] site.yml again - nothing should change (log: $log_dir/site-again.log)"
started=$SECONDS
if ! ansible-playbook -i inventories/local playbooks/site.yml >"$log_dir/site-again.log" 2>&1; then
  tail -n 40 "$log_dir/site-again.log" >&2
  echo "demo: the second site.yml run failed; the whole log is $log_dir/site-again.log" >&2
  exit 1
fi
recap=$(grep -E '^localhost +:' "$log_dir/site-again.log")
echo "demo: re-run in $((SECONDS - started)) s: $recap"
if ! grep -q "changed=0 " <<<"$recap"; then
  echo "demo: the second run changed something; it should not:" >&2
  grep -B1 -E '^changed:' "$log_dir/site-again.log" >&2 || true
  exit 1
fi
echo "demo: the second run changed nothing (idempotent)"

echo "demo: [3/4] report.yml - architecture diagram and cost estimate (log: $log_dir/report.log)"
started=$SECONDS
if ! ansible-playbook -i inventories/local playbooks/report.yml >"$log_dir/report.log" 2>&1; then
  tail -n 40 "$log_dir/report.log" >&2
  echo "demo: report.yml failed; the whole log is $log_dir/report.log" >&2
  exit 1
fi
echo "demo: report written in $((SECONDS - started)) s"

echo "demo: [4/4] what exists"
# The summary tasks of site.yml and report.yml, without the rest of the logs.
sed -n '/TASK \[Summarise what exists\]/,/^$/p' "$log_dir/site-again.log" | sed -n '/"msg"\|msg:/,$p' | sed 's/^/  /'
sed -n '/TASK \[Say where the report is\]/,/^$/p' "$log_dir/report.log" | sed -n '/"msg"\|msg:/,$p' | sed 's/^/  /'
