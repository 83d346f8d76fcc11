"""Run real ``ansible-playbook`` against the local stack and read its results.

Uses the ``ansible.posix.json`` callback (shipped in the ``ansible`` package)
so tests read per-task and per-host results instead of scraping text.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
# Tasks that only bring in other tasks: they make no AWS call of their own.
INCLUDE_ACTIONS = frozenset({"ansible.builtin.include_role", "ansible.builtin.include_tasks", "ansible.builtin.import_role", "ansible.builtin.import_tasks"})


def is_validation(task: dict[str, Any]) -> bool:
    """A role's input validation: its argument spec check or a task of its ``tasks/validate.yml``."""
    return task.get("action") == "ansible.builtin.validate_argument_spec" or "/tasks/validate.yml:" in task.get("path", "")


def messages(task: dict[str, Any]) -> list[str]:
    """What a failed task says: its own ``msg``, and for a loop the ``msg`` of every failed item."""
    items = [str(r.get("msg", "")) for r in task.get("results", []) if isinstance(r, dict) and r.get("failed")]
    return [str(task.get("msg", "")), *items]


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
                out.append({**host, "name": task["task"]["name"], "result_name": host.get("name"), "path": task["task"].get("path", "")})
        return out

    def task(self, name: str) -> dict[str, Any]:
        matches = [t for t in self.tasks() if t["name"] == name]
        if not matches:
            raise KeyError(f"no task named {name!r}; tasks: {[t['name'] for t in self.tasks()]}")
        return matches[-1]

    def changed_tasks(self, *, without_role: bool = False) -> list[str]:
        """Names of the changed tasks; ``without_role`` drops the ``<collection>.<role> : `` prefix."""
        names = [t["name"] for t in self.tasks() if t.get("changed")]
        return [name.split(" : ", 1)[-1] for name in names] if without_role else names

    def outputs(self, var: str) -> Any:
        """The last value of ``var`` (e.g. ``network_outputs``) the run showed (``debug: var=``) or set as a fact."""
        values = []
        for task in self.tasks():
            if var in task:
                values.append(task[var])
            elif var in task.get("ansible_facts", {}):
                values.append(task["ansible_facts"][var])
        if not values:
            raise KeyError(f"no task showed or set {var!r}; tasks: {[t['name'] for t in self.tasks()]}")
        return values[-1]

    def refusal(self) -> str:
        """What input validation said when it stopped this run before anything else ran.

        Raises AssertionError unless the run failed, exactly one task failed, that
        task is a validation task (``is_validation``) and every task that ran was
        one too (or only included one): no AWS module ran.
        """
        tasks = self.tasks()
        failed = [t for t in tasks if t.get("failed")]
        beyond = [t["name"] for t in tasks if not t.get("skipped") and t.get("action") not in INCLUDE_ACTIONS and not is_validation(t)]
        if self.rc == 0 or len(failed) != 1 or not is_validation(failed[0]) or beyond:
            raise AssertionError(f"not refused by input validation alone; tasks beyond validation: {beyond}; {self.explain()}")
        return "\n".join(messages(failed[0]))

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
    inventory: str | Path = "inventories/local",
    cli_vars: Sequence[str] = (),
    check: bool = False,
    diff: bool = False,
    tags: list[str] | None = None,
    timeout: float = 900,
) -> PlaybookRun:
    """Run ``playbook``; ``extra_vars`` go as JSON (typed), ``cli_vars`` as ``key=value``
    the way a user types them (every value a string)."""
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    for item in cli_vars:
        cmd += ["-e", item]
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
