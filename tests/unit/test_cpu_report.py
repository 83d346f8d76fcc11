"""tools/cpu_report.py: the CPU summary `make test` prints at the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import cpu_report


def test_sums_per_file_and_ranks_files_with_the_molecule_scenarios_among_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "test-cpu.tsv"
    report.write_text("tests/a.py\t3.5\ntests/b.py\t10\ntests/a.py\t2.5\ntests/molecule/test_default.py\t30\n", encoding="utf-8")
    assert cpu_report.main([str(report)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "test: CPU seconds, 46 in all (molecule scenarios 30 of them)"
    assert [line.split()[-1] for line in lines[1:]] == ["tests/molecule/test_default.py", "tests/b.py", "tests/a.py"]
    assert lines[3].split()[:2] == ["6", "13.0"]  # 3.5 + 2.5 of 46


def test_no_figures_is_said_not_invented(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cpu_report.main([str(tmp_path / "missing.tsv")]) == 0
    assert capsys.readouterr().out.strip() == "test: no CPU figures recorded"


def test_marks_give_the_machine_busy_and_idle_share_per_segment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marks = tmp_path / "marks"
    # user nice system idle iowait irq softirq steal guest guest_nice
    marks.write_text(
        "start\tcpu  1000 0 500 8000 0 0 0 0 0 0\n"
        "pytest done\tcpu  2500 0 900 8100 100 0 0 0 0 0\n"  # 1900 busy, 200 idle: 90 % busy
        "end\tcpu  2600 0 900 8900 100 0 0 0 0 0\n"  # 100 busy, 800 idle
        "garbage line\n",
        encoding="utf-8",
    )
    assert cpu_report.main([str(tmp_path / "missing.tsv"), "--marks", str(marks)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "test: no CPU figures recorded"
    assert out[2:4] == ["  up to pytest done: 90 % busy, 10 % idle", "  up to end: 11 % busy, 89 % idle"]


def test_marks_without_a_file_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cpu_report.main(["x.tsv", "--marks"]) == 2
    assert "--marks MARKS" in capsys.readouterr().err
