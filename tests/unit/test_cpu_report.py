"""tools/cpu_report.py: the CPU summary `make test` prints at the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import cpu_report


def test_sums_per_file_and_ranks_files_and_scenarios_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "test-cpu.tsv"
    report.write_text("tests/a.py\t3.5\ntests/b.py\t10\ntests/a.py\t2.5\n", encoding="utf-8")
    log = tmp_path / "molecule.log"
    log.write_text("molecule: scenario default\nnoise\nmolecule: scenario default passed: 30 CPU-s, 50 s\n", encoding="utf-8")
    assert cpu_report.main([str(report), str(log)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "test: CPU seconds, 46 in all (pytest files 16, molecule 30)"
    assert [line.split()[-1] for line in lines[1:]] == ["default", "tests/b.py", "tests/a.py"]
    assert lines[3].split()[:2] == ["6", "13.0"]  # 3.5 + 2.5 of 46


def test_no_figures_is_said_not_invented(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cpu_report.main([str(tmp_path / "missing.tsv")]) == 0
    assert capsys.readouterr().out.strip() == "test: no CPU figures recorded"
