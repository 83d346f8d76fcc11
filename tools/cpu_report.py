"""Print where `make test` spent its CPU: per test file (a molecule scenario is one).

    python tools/cpu_report.py TEST_CPU_REPORT [--marks MARKS]

TEST_CPU_REPORT holds one "file<TAB>CPU seconds" line per test (tests/conftest.py
appends them: the test's process and every process it ran, such as
ansible-playbook or molecule). The local AWS server's own CPU is not in these
figures.

MARKS holds "NAME<TAB><the cpu line of /proc/stat>" lines written at moments of
the run (tools/test-all.sh: start, molecule done, pytest done, end): between two
marks, how many of the machine's cores were busy (everything on it: the tests,
the local AWS, its PostgreSQL servers and apps) and how much stayed idle. Idle
time is what more test workers could use; a busy machine gains nothing from them.
"""

from __future__ import annotations

import itertools
import sys
from collections import defaultdict
from pathlib import Path

SHOWN = 20


def machine_segments(marks: Path) -> list[str]:
    """Busy cores and idle share between consecutive marks of /proc/stat's cpu line."""
    points = []
    for line in marks.read_text(encoding="utf-8").splitlines():
        name, _, stat = line.partition("\t")
        fields = stat.split()
        if len(fields) < 5 or fields[0] != "cpu":
            continue
        ticks = [int(value) for value in fields[1:]]
        idle = ticks[3] + ticks[4]  # idle + iowait
        points.append((name, sum(ticks[:8]), idle))  # user..steal; guest time is inside user
    lines = []
    for (_, total_a, idle_a), (name_b, total_b, idle_b) in itertools.pairwise(points):
        ticks = total_b - total_a
        if ticks <= 0:
            continue
        idle = (idle_b - idle_a) / ticks
        lines.append(f"  up to {name_b}: {100 * (1 - idle):.0f} % busy, {100 * idle:.0f} % idle")
    return lines


def main(argv: list[str]) -> int:
    marks = None
    if "--marks" in argv:
        at = argv.index("--marks")
        if at + 1 >= len(argv):
            print(__doc__.strip(), file=sys.stderr)
            return 2
        marks = Path(argv[at + 1])
        argv = argv[:at] + argv[at + 2 :]
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    per_file: dict[str, float] = defaultdict(float)
    report = Path(argv[0])
    if report.is_file():
        for line in report.read_text(encoding="utf-8").splitlines():
            name, _, seconds = line.rpartition("\t")
            if name:
                per_file[name] += float(seconds)
    rows = sorted(per_file.items(), key=lambda row: -row[1])
    total = sum(value for _, value in rows)
    if not rows:
        print("test: no CPU figures recorded")
    else:
        print_files(rows, total)
    if marks is not None and marks.is_file():
        segments = machine_segments(marks)
        if segments:
            print("test: the whole machine's CPU (tests, local AWS, PostgreSQL, apps)")
            print("\n".join(segments))
    return 0


def print_files(rows: list[tuple[str, float]], total: float) -> None:
    molecule = sum(value for name, value in rows if name.startswith("tests/molecule/"))
    print(f"test: CPU seconds, {total:.0f} in all (molecule scenarios {molecule:.0f} of them)")
    for name, seconds in rows[:SHOWN]:
        print(f"  {seconds:7.0f}  {100 * seconds / total:4.1f} %  {name}")
    if len(rows) > SHOWN:
        rest = rows[SHOWN:]
        print(f"  {sum(value for _, value in rest):7.0f}  {100 * sum(value for _, value in rest) / total:4.1f} %  {len(rest)} more")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
