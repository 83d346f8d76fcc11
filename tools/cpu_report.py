"""Print where `make test` spent its CPU: per test file and per molecule scenario.

    python tools/cpu_report.py TEST_CPU_REPORT [MOLECULE_LOG]

TEST_CPU_REPORT holds one "file<TAB>CPU seconds" line per test (tests/conftest.py
appends them); the molecule log has one "molecule: scenario NAME passed: N CPU-s"
line per scenario (tools/molecule-all.sh). The local AWS server's own CPU is not
in these figures.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

SHOWN = 20


def main(argv: list[str]) -> int:
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
