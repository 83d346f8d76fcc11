"""Print where `make test` spent its CPU: per test file and per molecule scenario.

    python tools/cpu_report.py TEST_CPU_REPORT [MOLECULE_LOG] [--marks MARKS]

TEST_CPU_REPORT holds one "file<TAB>CPU seconds" line per test (tests/conftest.py
appends them); the molecule log has one "molecule: scenario NAME passed: N CPU-s"
line per scenario (tools/molecule-all.sh). The local AWS server's own CPU is not
in these figures.

MARKS holds "NAME<TAB><the cpu line of /proc/stat>" lines written at moments of
the run (tools/test-all.sh: start, molecule done, pytest done, end): between two
marks, how many of the machine's cores were busy (everything on it: the tests,
the local AWS, its PostgreSQL servers and apps) and how much stayed idle. Idle
time is what more test workers could use; a busy machine gains nothing from them.
"""

from __future__ import annotations

import itertools
import re
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
    if marks is not None and marks.is_file():
        segments = machine_segments(marks)
        if segments:
            print("test: the whole machine's CPU (tests, local AWS, PostgreSQL, apps)")
            print("\n".join(segments))
    per_file: dict[str, float] = defaultdict(float)
    report = Path(argv[0])
    if report.is_file():
        for line in report.read_text(encoding="utf-8").splitlines():
            name, _, seconds = line.rpartition("\t")
            if name:
                per_file[name] += float(seconds)
    scenarios: dict[str, float] = {}
    if len(argv) > 1 and Path(argv[1]).is_file():
        for match in re.finditer(r"^molecule: scenario (\S+) passed: (\d+) CPU-s", Path(argv[1]).read_text(encoding="utf-8"), re.M):
            scenarios[f"molecule {match[1]}"] = float(match[2])
    rows = sorted({**per_file, **scenarios}.items(), key=lambda row: -row[1])
    total = sum(value for _, value in rows)
    if not rows:
        print("test: no CPU figures recorded")
        return 0
    print(f"test: CPU seconds, {total:.0f} in all (pytest files {sum(per_file.values()):.0f}, molecule {sum(scenarios.values()):.0f})")
    for name, seconds in rows[:SHOWN]:
        print(f"  {seconds:7.0f}  {100 * seconds / total:4.1f} %  {name}")
    if len(rows) > SHOWN:
        rest = rows[SHOWN:]
        print(f"  {sum(value for _, value in rest):7.0f}  {100 * sum(value for _, value in rest) / total:4.1f} %  {len(rest)} more")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
