"""Job templates run the way AWX runs them: through ansible-runner, against the local stack.

What AWX does for a job, done here with the same pieces:

- the inventory: AWX imports an inventory source with ``ansible-inventory --list --export`` and
  hands the job a script that prints that JSON (no group_vars files next to it, variables not
  rendered until the job runs);
- the playbook, extra vars, job type (check = ``--check``), diff mode, tags, skip tags and
  verbosity: read from the job template definition in playbooks/vars/awx.yml, never repeated here;
  AWX's job metadata (``awx_job_id``...) as extra vars;
- the engine: ``ansible_runner.run`` in the project directory (its ansible.cfg applies), with the
  collection from the built artifact (what the execution environment installs).

The only variables added to a template's are those that keep a run apart on a shared stack
(``platform_env``, ``report_dir``); AWX would need the template to prompt for them.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import ansible_runner
import pytest
import yaml

from tests.playbooks import ROOT, VENV_BIN, ensure_collection

TEMPLATES = {t["name"]: t for t in yaml.safe_load((ROOT / "playbooks/vars/awx.yml").read_text())["awx_job_templates"]}
INVENTORY_SOURCE = "inventories/local/hosts.yml"


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


def awx_inventory(folder: Path, source: str = INVENTORY_SOURCE) -> Path:
    """The inventory script AWX gives a job after importing ``source`` from the project."""
    exported = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", str(ROOT / source), "--list", "--export"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    script = folder / "hosts"
    script.write_text(f"#!/usr/bin/env python3\nimport json, sys\njson.dump({json.loads(exported)!r}, sys.stdout)\n")
    script.chmod(0o700)
    return script


def launch_args(template: dict[str, Any], tags: str = "") -> str:
    """The ansible-playbook arguments AWX derives from a job template (and a tags prompt)."""
    args = []
    if template.get("job_type", "run") == "check":
        args.append("--check")
    if template.get("diff_mode"):
        args.append("--diff")
    if tags:
        assert template.get("ask_tags_on_launch"), f"{template['name']} does not prompt for tags"
    if tags or template.get("job_tags"):
        args += ["--tags", tags or template["job_tags"]]
    if template.get("skip_tags"):
        args += ["--skip-tags", template["skip_tags"]]
    if template.get("verbosity"):
        args.append("-" + "v" * template["verbosity"])
    return " ".join(args)


def run_job(stack, tmp_path: Path, name: str, isolate: dict[str, Any], tags: str = "") -> ansible_runner.Runner:
    """Launch job template ``name`` of the local environment as AWX would."""
    template = TEMPLATES[name]
    job_id = uuid.uuid4().int % 100000
    metadata = {
        "awx_job_id": job_id,
        "awx_job_template_name": f"fastier-local {name}",
        "awx_job_launch_type": "manual",
        "awx_user_name": "pytest",
        "awx_inventory_name": "fastier-local",
    }
    env = {k: v for k, v in stack.env().items() if k != "ANSIBLE_CONFIG"}  # AWX runs in the project: its ansible.cfg applies
    env |= {"ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"), "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"}
    private = tmp_path / f"job-{job_id}"
    private.mkdir()
    return ansible_runner.run(
        private_data_dir=str(private),
        project_dir=str(ROOT),
        playbook=template["playbook"],
        inventory=str(awx_inventory(private)),
        extravars={**metadata, **template.get("extra_vars", {}), **isolate},
        cmdline=launch_args(template, tags),
        envvars=env,
        quiet=True,
        timeout=900,
    )


def _failures(job: ansible_runner.Runner) -> str:
    failed = [e.get("event_data", {}).get("res") for e in job.events if e.get("event") == "runner_on_failed"]
    return f"status={job.status} rc={job.rc} failed={json.dumps(failed, default=str)[:4000]} stdout={job.stdout.read()[-3000:]}"


def _results(job: ansible_runner.Runner, task: str) -> list[dict[str, Any]]:
    return [
        e["event_data"]["res"]
        for e in job.events
        if e.get("event") in ("runner_on_ok", "runner_on_changed") and e.get("event_data", {}).get("task") == task and "res" in e["event_data"]
    ]


def test_the_report_template_runs_through_ansible_runner(stack, tmp_path):
    env_name = f"awx{uuid.uuid4().hex[:6]}"
    report_dir = tmp_path / "report"
    # Its own DNS domain too: the zone of the local inventory's domain may exist (molecule's default scenario makes it).
    extra = {"platform_env": env_name, "report_dir": str(report_dir), "dns_domain": f"{env_name}.fastier.example"}
    job = run_job(stack, tmp_path, "report", extra)
    assert job.status == "successful" and job.rc == 0, _failures(job)
    assert job.stats["failures"] == {} and job.stats["dark"] == {}
    # A fresh platform: every tier read, none found, the report written where asked.
    files = sorted(p.name for p in report_dir.iterdir())
    assert files == ["architecture.json", "architecture.png", "architecture.svg", "cost.json", "report.html", "report.md"]
    [said] = _results(job, "Say where the report is")
    assert said["msg"][0] == f"Report: {report_dir}/report.html"
    assert said["msg"][1] == "Tiers found: "


def test_the_site_preview_template_plans_and_changes_nothing(stack, tmp_path):
    # The preview prompts for tags; one tier keeps the run short (every tier's inputs are validated anyway).
    env_name = f"awx{uuid.uuid4().hex[:6]}"
    job = run_job(stack, tmp_path, "site preview", {"platform_env": env_name}, tags="network")
    assert job.status == "successful" and job.rc == 0, _failures(job)
    # Check mode: the plan says the VPC would be made ...
    [vpc] = _results(job, "Present | VPC")
    assert vpc["changed"] is True
    validated = {e["event_data"]["task"] for e in job.events if e.get("event") == "runner_on_ok"}
    assert {f"Check the {tier} inputs" for tier in ("beanstalk", "dns", "cdn", "pipeline", "observability")} <= validated
    # ... and nothing is made.
    vpcs = stack.client("ec2").describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"fastier-{env_name}-vpc"]}])["Vpcs"]
    assert vpcs == []
