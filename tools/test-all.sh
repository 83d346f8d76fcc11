#!/usr/bin/env bash
# `make test`, inside `python -m local_aws run` (the endpoint and the PostgreSQL
# clusters are up; LOCAL_AWS_ENDPOINT and LOCAL_AWS_STATE_DIR are set).
#
# One pytest run: unit, contract and integration tests, and the molecule
# scenarios (tests/molecule/test_<scenario>.py runs `molecule test -s
# <scenario>`). The suites spend most of their time in ansible-playbook
# processes and in waits on the local AWS, so they share the machine:
# TEST_WORKERS processes, whole files per worker (a module's converged fixture
# is built once), the longest files first (tests/conftest.py orders them, not
# xdist's most-tests-first), so that every worker ends about when the others
# do. Every test and scenario names its resources apart (a unique platform name
# or environment), so they never meet.
#
#   TEST_WORKERS=1 make test      # everything one after the other
#   PYTEST_ARGS='-k storage' make test
#   PYTEST_ARGS='tests/molecule' make test   # only the molecule scenarios
set -uo pipefail
cd "$(dirname "$0")/.."
: "${LOCAL_AWS_ENDPOINT:?run through make test (it starts the local stack)}"
workers=${TEST_WORKERS:-3}
state="${LOCAL_AWS_STATE_DIR:-.local}"
# CPU seconds per test file (tests/conftest.py appends them): the cost of a
# test on this CPU-bound machine, whatever ran beside it.
export TEST_CPU_REPORT="$state/test-cpu.tsv"
: >"$TEST_CPU_REPORT"
# The machine's CPU at moments of the run (/proc/stat; Linux only): busy and
# idle share between them, printed at the end.
marks="$state/test-cpu-marks"
: >"$marks"
mark() {
  if [ -r /proc/stat ]; then
    printf '%s\t%s\n' "$1" "$(head -n 1 /proc/stat)" >>"$marks"
  fi
}
mark start
started=$SECONDS

if [ "$workers" -le 1 ]; then
  python -m pytest --durations=25 ${PYTEST_ARGS:-}
else
  python -m pytest -n "$workers" --dist loadfile --no-loadscope-reorder --durations=25 ${PYTEST_ARGS:-}
fi
rc=$?
mark end
python tools/cpu_report.py "$TEST_CPU_REPORT" --marks "$marks"
echo "test: finished after $((SECONDS - started)) s on $workers worker(s) (rc=$rc); molecule logs: $state/molecule-<scenario>.log"
exit "$rc"
