#!/usr/bin/env bash
# `make demo`: the whole story on this machine. It runs inside
# `python -m local_aws run`, so the local AWS and its PostgreSQL clusters are
# up and LOCAL_AWS_ENDPOINT is set; they are stopped when this script ends,
# whatever happens. What this script starts itself (the legacy app and its
# writer) it stops on the way out too.
#
# 1. the legacy server: the sample app under gunicorn on 127.0.0.1:18080,
#    its database seeded, a writer placing orders through it, its EC2 record;
# 2. migrate.yml --tags bundle,provision: the bundle, then site.yml builds
#    every tier (DNS stays on the legacy server);
# 3. migrate.yml (provision skipped: it just ran): replicate -> deploy -> ttl
#    -> cutover -> watch -> decommission, the writer writing all along;
# 4. site.yml again: nothing may change (the platform agrees with the migration);
# 5. report.yml: the architecture diagram and the cost estimate;
# 6. the summary: every figure read from this run.
set -euo pipefail
cd "$(dirname "$0")/.."
log_dir=.local/demo
report_dir="${LOCAL_AWS_STATE_DIR:-.local}/reports"
mkdir -p "$log_dir"
rm -f "$report_dir"/fastier-*.json
demo_started=$SECONDS
demo_domain=$(sed -n 's/^dns_domain: *//p' inventories/local/group_vars/all/dns.yml)
echo "demo: local AWS at ${LOCAL_AWS_ENDPOINT}"

legacy_started=
stop_legacy() {
  if [ -n "$legacy_started" ]; then
    python -m tools.legacy down >>"$log_dir/legacy.log" 2>&1 || true
    echo "demo: stopped what it started: the writer and the legacy app (if decommission had not already)"
  fi
}
trap stop_legacy EXIT

# play NAME LOG ARGS...: ansible-playbook, its log kept, its recap and time shown.
play() {
  local what=$1 log=$2 started=$SECONDS
  shift 2
  if ! ansible-playbook -i inventories/local "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "demo: $what failed; the whole log is $log" >&2
    exit 1
  fi
  echo "demo: $what done in $((SECONDS - started)) s: $(grep -E '^localhost +:' "$log" | tr -s ' ')"
}

echo "demo: [1/6] the legacy server - sample app, seeded data, a writer, its EC2 record (log: $log_dir/legacy.log)"
legacy_started=1
if ! python -m tools.legacy up --fresh --customers 2000 --orders 20000 --writer-rate 5 >"$log_dir/legacy.log" 2>&1; then
  cat "$log_dir/legacy.log" >&2
  exit 1
fi
sed 's/^/  /' "$log_dir/legacy.log"

echo "demo: [2/6] migrate.yml --tags bundle,provision - the bundle, then site.yml builds every tier (log: $log_dir/provision.log)"
play "provisioning" "$log_dir/provision.log" playbooks/migrate.yml --tags bundle,provision

echo "demo: [3/6] migrate.yml - replicate, deploy, ttl, cutover, watch, decommission, the writer writing (log: $log_dir/migrate.log)"
# (provision ran just before: step 4 shows that a site.yml run now changes nothing)
play "the migration" "$log_dir/migrate.log" playbooks/migrate.yml --skip-tags provision -v
python -m tools.legacy writer stop >"$log_dir/writer-summary.json"

echo "demo: [4/6] site.yml again - nothing should change (log: $log_dir/site-again.log)"
play "site.yml re-run" "$log_dir/site-again.log" playbooks/site.yml
if ! grep -qE '^localhost +:.* changed=0 ' "$log_dir/site-again.log"; then
  echo "demo: the second run changed something; it should not:" >&2
  grep -B1 -E '^changed:' "$log_dir/site-again.log" >&2 || true
  exit 1
fi
echo "demo: site.yml changed nothing (idempotent, and it agrees with the migration)"

echo "demo: [5/6] report.yml - architecture diagram and cost estimate (log: $log_dir/report.log)"
play "the report" "$log_dir/report.log" playbooks/report.yml

echo "demo: [6/6] what exists, and what the migration did"
# The summary tasks of site.yml and report.yml, without the rest of the logs.
sed -n '/TASK \[Summarise what exists\]/,/^$/p' "$log_dir/site-again.log" | sed -n '/"msg"\|msg:/,$p' | sed 's/^/  /'
python -m tools.legacy summary --report-dir "$report_dir"
sed -n '/TASK \[Say where the report is\]/,/^$/p' "$log_dir/report.log" | sed -n '/"msg"\|msg:/,$p' | sed 's/^/  /'
# The live URL: what a visitor of www reaches (the local AWS's front door of the
# Route 53 record), answered by the Elastic Beanstalk environment; /version
# says which one, and which database.
url=$(python -m local_aws url "www.${demo_domain}" --wait 60)
if ! version=$(curl -fsS --max-time 10 "${url%/}/version"); then
  echo "demo: the live URL $url does not answer" >&2
  exit 1
fi
echo "demo: the sample app answers on the live URL ${url} - /version: ${version}"
echo "demo: finished in $((SECONDS - demo_started)) s; logs in $log_dir"
if [ "${DEMO_KEEP:-0}" = 1 ]; then
  echo "demo: DEMO_KEEP=1 - everything keeps running: open ${url} in a browser; Ctrl-C stops it all"
  trap 'exit 0' INT TERM
  while true; do sleep 3600; done
fi
