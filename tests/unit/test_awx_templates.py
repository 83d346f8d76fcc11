"""What AWX runs, checked against what exists: the execution environment definition and the job templates.

- ``ansible-builder create`` writes a build context (no container engine, no Galaxy) that holds
  this collection's artifact, its dependency collections with galaxy.yml's ranges, the Python
  requirements, bindep.txt and the controller's ansible-core/ansible-runner pins; the artifact
  installs from the context the way the image build installs it.
- ``playbooks/awx_configure.yml`` passes a syntax check, and every job template of
  ``playbooks/vars/awx.yml`` runs a playbook that exists, with tags the playbook has and
  variables (survey and extra vars) that the playbook or its roles' argument specs use.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from bindep.depends import Depends

from tests.playbooks import ROOT, VENV_BIN, ensure_collection
from tests.unit.test_awx_configure import FakeController

DEFINITIONS = yaml.safe_load((ROOT / "playbooks/vars/awx.yml").read_text())
TEMPLATES = DEFINITIONS["awx_job_templates"]
BY_NAME = {t["name"]: t for t in TEMPLATES}
EE = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
# Playbooks that are jobs an operator launches (teardown.yml is left to a shell on purpose: it deletes the platform).
JOB_PLAYBOOKS = {"site", "deploy", "rollback", "migrate", "dr_drill", "report", "restore"}


def _pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return dict(line.split("==", 1) for line in lines if "==" in line)


# --- execution environment -------------------------------------------------------------


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    ensure_collection()  # build/fastier-platform-<version>.tar.gz, what the EE installs
    out = tmp_path_factory.mktemp("ee") / "context"
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-builder"), "create", "--file", str(ROOT / "execution-environment.yml"), "--context", str(out), "-v", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No matches" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr  # a missing build file is only a warning
    return out


def test_the_build_context_holds_the_collection_and_its_dependencies(context):
    artifact = f"fastier-platform-{GALAXY['version']}.tar.gz"
    assert (context / "_build" / "collections" / artifact).is_file()
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    by_name = {entry["name"]: entry for entry in requirements}
    assert by_name[f"collections/{artifact}"]["type"] == "file"
    for name, version in GALAXY["dependencies"].items():
        assert by_name[name]["version"] == version, name
    assert (context / "_build" / "requirements.txt").read_text() == (ROOT / "requirements.txt").read_text()
    assert (context / "_build" / "bindep.txt").read_text() == (ROOT / "bindep.txt").read_text()


def test_the_build_installs_the_collection_with_the_controllers_pins(context, tmp_path):
    [containerfile] = [p for p in (context / "Containerfile", context / "Dockerfile") if p.exists()]
    text = containerfile.read_text()
    pins = _pins()
    assert f'ARG ANSIBLE_INSTALL_REFS="ansible-core=={pins["ansible-core"]} ansible-runner=={pins["ansible-runner"]}"' in text
    assert "RUN $PKGMGR -y module enable postgresql:16" in text
    assert (
        'ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml --collections-path "/usr/share/ansible/collections"' in text
    )

    # The galaxy stage runs in a copy of _build: the artifact's entry must resolve from there (offline, no Galaxy).
    build = context / "_build"
    only_file = [e for e in yaml.safe_load((build / "requirements.yml").read_text())["collections"] if e.get("type") == "file"]
    (build / "file-only.yml").write_text(yaml.safe_dump({"collections": only_file}))
    env = {**{k: v for k, v in os.environ.items() if k != "ANSIBLE_CONFIG"}, "HOME": str(tmp_path)}
    cmd = [str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "--force", "-r", "file-only.yml", "-p", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=build, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = tmp_path / "ansible_collections" / "fastier" / "platform"
    assert (installed / "MANIFEST.json").is_file()
    assert (installed / "requirements.txt").is_file()  # ansible-builder's introspection reads it in the image


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        (["platform:rpm", "platform:centos", "platform:redhat"], {"postgresql", "graphviz"}),
        (["platform:dpkg", "platform:debian"], {"postgresql-client", "graphviz"}),
    ],
)
def test_bindep_brings_the_postgresql_client_and_graphviz(profile, expected):
    rules = Depends((ROOT / "bindep.txt").read_text()).active_rules(profile)
    assert expected <= {rule[0] for rule in rules}


def test_the_ee_follows_the_collection_version_and_the_controller_pins():
    deps = EE["dependencies"]
    pins = _pins()
    assert deps["ansible_core"]["package_pip"] == f"ansible-core=={pins['ansible-core']}"
    assert deps["ansible_runner"]["package_pip"] == f"ansible-runner=={pins['ansible-runner']}"
    artifact = f"fastier-platform-{GALAXY['version']}.tar.gz"
    assert EE["additional_build_files"] == [{"src": f"build/{artifact}", "dest": "collections"}]


# --- job templates -------------------------------------------------------------------------


def _play_tags(node: Any) -> set[str]:
    """Every tag a playbook names (plays, roles, tasks, include ``apply``), at any depth."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "tags" and isinstance(value, str):
                found.add(value)
            elif key == "tags" and isinstance(value, list) and all(isinstance(tag, str) for tag in value):
                found |= set(value)
            else:  # also module options named tags (AWS resource tags: a mapping)
                found |= _play_tags(value)
    elif isinstance(node, list):
        for value in node:
            found |= _play_tags(value)
    return found


def _used_variables(playbook: Path) -> set[str]:
    """Names the playbook's code refers to (comments left out) and the options of the roles it runs."""
    code = "\n".join(line for line in playbook.read_text().splitlines() if not line.lstrip().startswith("#"))
    names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code))
    roles = set(re.findall(r"fastier\.platform\.([a-z_]+)", code)) & {p.name for p in (ROOT / "roles").iterdir()}
    for role in sorted(roles):
        specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        for entry in specs.values():
            names |= set(entry.get("options", {}))
    return names


def test_awx_configure_passes_a_syntax_check():
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "--syntax-check", "playbooks/awx_configure.yml"],
        cwd=ROOT,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("template", TEMPLATES, ids=[t["name"] for t in TEMPLATES])
def test_a_job_template_runs_what_its_playbook_has(template):
    playbook = ROOT / template["playbook"]
    assert playbook.is_file(), f"{template['name']}: {template['playbook']} does not exist"
    tags = _play_tags(yaml.safe_load(playbook.read_text()))
    for field in ("job_tags", "skip_tags"):
        for tag in filter(None, template.get(field, "").split(",")):
            assert tag.strip() in tags, f"{template['name']}: {field} {tag!r} is not a tag of {template['playbook']} ({sorted(tags)})"
    used = _used_variables(playbook)
    for var in [q["variable"] for q in template.get("survey", [])] + list(template.get("extra_vars", {})):
        assert var in used, f"{template['name']}: {var} is used neither by {template['playbook']} nor by its roles' argument specs"
    assert template.get("job_type", "run") in ("run", "check")


SURVEYED = [owner for owner in TEMPLATES + DEFINITIONS["awx_workflows"] if owner.get("survey")]


@pytest.mark.parametrize("owner", SURVEYED, ids=[owner["name"] for owner in SURVEYED])
def test_a_survey_is_one_awx_accepts(owner):
    # What awx_configure.yml posts, under the rules of test_awx_configure.py's stand-in controller.
    FakeController._check_survey({"name": owner["name"], "description": "", "spec": owner["survey"]})


def test_every_job_playbook_has_a_template_and_every_migration_phase_one():
    playbooks = {p.stem for p in (ROOT / "playbooks").glob("*.yml")}
    templated = {Path(t["playbook"]).stem for t in TEMPLATES}
    assert (JOB_PLAYBOOKS & playbooks) - templated == set()
    migrate = yaml.safe_load((ROOT / "playbooks/migrate.yml").read_text())
    phases = _play_tags(migrate) - {"always", "never"}
    run_phases = {t["job_tags"] for t in TEMPLATES if t["playbook"] == "playbooks/migrate.yml" and t.get("job_type", "run") == "run"}
    assert run_phases == phases


def test_the_deploy_workflow_stages_smoke_tests_then_swaps():
    [workflow] = [w for w in DEFINITIONS["awx_workflows"] if w["name"] == "deploy workflow"]
    nodes = {n["identifier"]: n for n in workflow["nodes"]}
    assert [nodes["stage"]["success"], nodes["smoke"]["success"], nodes["swap"]["success"]] == [["smoke"], ["swap"], []]
    steps = {i: BY_NAME[n["template"]] for i, n in nodes.items()}
    assert {t["playbook"] for t in steps.values()} == {"playbooks/deploy.yml"}
    # stage: deploy to the idle environment, no smoke test, no switch; smoke: the smoke test, no switch; swap: the switch.
    assert steps["stage"]["extra_vars"] == {"deploy_promote": False, "blue_green_smoke_url": ""}
    assert steps["smoke"]["extra_vars"] == {"deploy_promote": False}
    assert steps["swap"]["extra_vars"] == {"deploy_promote": True}
    # The version comes from the workflow's survey (AWX passes workflow variables to every node).
    assert [q["variable"] for q in workflow["survey"]] == ["deploy_version_label"]
    assert "deploy_version_label" in _used_variables(ROOT / "playbooks/deploy.yml")
    # The smoke step tests something in every inventory AWX configures (local runs it from a shell).
    for inventory in sorted(p for p in (ROOT / "inventories").iterdir() if p.name != "local"):
        smoke = yaml.safe_load((inventory / "group_vars/all/blue_green.yml").read_text())["blue_green_smoke_url"]
        assert smoke.startswith("https://"), f"{inventory.name}: blue_green_smoke_url is {smoke!r}"


def test_the_dr_drill_is_scheduled_weekly():
    [schedule] = DEFINITIONS["awx_schedules"]
    assert BY_NAME[schedule["template"]]["playbook"] == "playbooks/dr_drill.yml"
    assert re.fullmatch(r"DTSTART;TZID=UTC:\d{8}T\d{6} RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=[A-Z]{2}", schedule["rrule"])
