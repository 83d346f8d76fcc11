"""Run real ``ansible-playbook`` against the local stack and read its results.

Uses the ``ansible.posix.json`` callback (shipped in the ``ansible`` package)
so tests read per-task and per-host results instead of scraping text.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def stats(self) -> dict[str, Any]:
        return self.result.get("stats", {}).get("localhost", {})

    @property
    def changed(self) -> int:
        return int(self.stats.get("changed", 0))

    @property
    def failed(self) -> int:
        return int(self.stats.get("failures", 0)) + int(self.stats.get("unreachable", 0))

    def tasks(self) -> list[dict[str, Any]]:
        out = []
        for play in self.result.get("plays", []):
            for task in play.get("tasks", []):
                host = task.get("hosts", {}).get("localhost", {})
                # the task's name wins over a module result key called "name"
                out.append({**host, "name": task["task"]["name"], "result_name": host.get("name")})
        return out

    def task(self, name: str) -> dict[str, Any]:
        matches = [t for t in self.tasks() if t["name"] == name]
        if not matches:
            raise KeyError(f"no task named {name!r}; tasks: {[t['name'] for t in self.tasks()]}")
        return matches[-1]

    def changed_tasks(self) -> list[str]:
        return [t["name"] for t in self.tasks() if t.get("changed")]

    def explain(self) -> str:
        """What to print when an assertion about this run fails."""
        failed = [t for t in self.tasks() if t.get("failed")]
        return f"rc={self.rc} failed tasks={json.dumps(failed, default=str)[:4000]} stderr={self.stderr[-2000:]}"


def ensure_collection() -> None:
    """Install the current collection (cheap when nothing changed)."""
    subprocess.run(["make", "-s", "collection"], cwd=ROOT, check=True, capture_output=True, text=True, timeout=600)


def run_playbook(
    env: dict[str, str],
    playbook: str | Path,
    extra_vars: dict[str, Any] | None = None,
    *,
    inventory: str = "inventories/local",
    check: bool = False,
    diff: bool = False,
    tags: list[str] | None = None,
    timeout: float = 900,
) -> PlaybookRun:
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", inventory, str(playbook)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if tags:
        cmd += ["--tags", ",".join(tags)]
    run_env = {
        **env,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    }
    proc = subprocess.run(cmd, cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=timeout, check=False)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = {}
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, result)
