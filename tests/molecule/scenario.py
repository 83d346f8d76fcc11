"""Run one molecule scenario (``molecule test -s NAME``, delegated driver) against the local stack.

Each scenario is a test file of its own (``test_<scenario>.py``): ``make test``
spreads whole files over its pytest-xdist workers, so the scenarios run beside
the other long files in the same pool instead of one after the other in a lane
of their own, and their CPU is counted per file like every other test.

The test passes when molecule exits 0 and every step of the scenario's test
matrix (its ``test_sequence``) says ``Executed: Successful`` - a step that did
not run fails it too. The whole output is kept in
``<state dir>/molecule-<scenario>.log``; a failure shows its end.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.localstack import LocalStack
from tests.playbooks import ROOT, VENV_BIN, ensure_collection

TAIL_LINES = 80
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run_scenario(stack: LocalStack, name: str) -> list[str]:
    """``molecule test -s name``; returns the steps that ran. Fails with the log's end."""
    ensure_collection()  # molecule.yml points ANSIBLE_COLLECTIONS_PATH at the installed artifact
    # make test's stack keeps its state dir; a private stack's goes with it, so its logs go to .local
    log = (ROOT / ".local" if stack.owned else Path(stack.settings.state_dir)) / f"molecule-{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**stack.env(), "NO_COLOR": "1", "PY_COLORS": "0", "ANSIBLE_FORCE_COLOR": "0"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    with log.open("w", encoding="utf-8") as out:
        command = [str(VENV_BIN / "molecule"), "test", "-s", name]
        proc = subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=3600, check=False)
    text = ANSI.sub("", log.read_text(encoding="utf-8", errors="replace"))
    lines = text.splitlines()
    # the first failure (a task's "fatal:"/"failed:" line, with what led to it), then the end
    first = next((at for at, line in enumerate(lines) if re.match(r"\s*(fatal|failed): \[", line)), None)
    around = lines[max(0, first - 20) : first + 40] + ["[...]"] if first is not None else []
    tail = "\n".join(around + lines[-TAIL_LINES:])
    assert proc.returncode == 0, f"molecule test -s {name} failed (rc {proc.returncode}); the whole log: {log}\n{tail}"
    # molecule's closing DETAILS: one "<scenario> > <step>: Executed: <outcome>" line per step of its sequence
    outcomes = dict(re.findall(rf"^\s*{name} (?:>|➜) (\w+): Executed: (.+?)\s*$", text, re.M))
    assert outcomes, f"molecule printed no step outcomes for {name}; the whole log: {log}\n{tail}"
    steps = [step for step in outcomes if step != "dependency"]
    not_done = {step: outcome for step, outcome in outcomes.items() if step != "dependency" and outcome != "Successful"}
    assert not not_done, f"molecule {name}: steps {not_done} did not run successfully; the whole log: {log}\n{tail}"
    return steps
