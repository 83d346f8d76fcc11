#!/usr/bin/env bash
# `make test`, inside `python -m local_aws run` (the endpoint and the PostgreSQL
# clusters are up; LOCAL_AWS_ENDPOINT and LOCAL_AWS_STATE_DIR are set).
#
# The suites spend most of their time in ansible-playbook processes and in
# waits on the local AWS, so they share the machine: the molecule scenarios run
# beside the pytest suites (TEST_WORKERS processes, whole files per worker so a
# module's converged fixture is built once; the longest files first, as
# tests/conftest.py orders them, not xdist's most-tests-first). Every test and
# scenario names its resources apart (a unique platform name or environment), so
# they never meet.
#
#   TEST_WORKERS=1 make test      # everything one after the other
#   PYTEST_ARGS='-k storage' make test
set -uo pipefail
cd "$(dirname "$0")/.."
: "${LOCAL_AWS_ENDPOINT:?run through make test (it starts the local stack)}"
workers=${TEST_WORKERS:-2}
log="${LOCAL_AWS_STATE_DIR:-.local}/molecule.log"
# CPU seconds per test file (tests/conftest.py appends them): the cost of a
# test on this CPU-bound machine, whatever ran beside it.
export TEST_CPU_REPORT="${LOCAL_AWS_STATE_DIR:-.local}/test-cpu.tsv"
: >"$TEST_CPU_REPORT"
# The machine's CPU at moments of the run (/proc/stat; Linux only): busy and
# idle share between them, printed at the end.
marks="${LOCAL_AWS_STATE_DIR:-.local}/test-cpu-marks"
: >"$marks"
mark() {
  if [ -r /proc/stat ]; then
    printf '%s\t%s\n' "$1" "$(head -n 1 /proc/stat)" >>"$marks"
  fi
}
mark start
started=$SECONDS

cpu_summary() {
  mark end
  python tools/cpu_report.py "$TEST_CPU_REPORT" "$log" --marks "$marks"
}

if [ "$workers" -le 1 ]; then
  python -m pytest --durations=25 ${PYTEST_ARGS:-}
  pytest_rc=$?
  mark "pytest done"
  tools/molecule-all.sh | tee "$log"
  molecule_rc=${PIPESTATUS[0]}
  cpu_summary
  exit $((pytest_rc || molecule_rc))
fi

echo "test: molecule scenarios in the background (log: $log)"
{
  tools/molecule-all.sh
  rc=$?
  mark "molecule done"
  exit $rc
} >"$log" 2>&1 &
molecule_pid=$!
python -m pytest -n "$workers" --dist loadfile --no-loadscope-reorder --durations=25 ${PYTEST_ARGS:-}
pytest_rc=$?
mark "pytest done"
echo "test: pytest done after $((SECONDS - started)) s (rc=$pytest_rc); waiting for molecule"
wait "$molecule_pid"
molecule_rc=$?
if [ "$molecule_rc" -ne 0 ]; then
  echo "test: molecule failed (rc=$molecule_rc); its log follows" >&2
  cat "$log" >&2
else
  grep -E '^molecule: |INFO +[a-z_-]+ ➜ [a-z_]+: (Executing|Completed)|PLAY RECAP|^localhost +:' "$log" || true
fi
cpu_summary
echo "test: finished after $((SECONDS - started)) s (pytest rc=$pytest_rc, molecule rc=$molecule_rc)"
exit $((pytest_rc || molecule_rc))
