"""No playbook of the collection deletes the live database without a final snapshot.

A scan of every playbook, role and scenario of the collection: each task that
deletes an RDS instance either takes a final snapshot (skip_final_snapshot
false, with a final snapshot identifier), or is the DR drill's deletion of its
own temporary copy, which refuses anything that is not that copy; no task and no
module of ours deletes an instance another way (an AWS CLI or boto3 call).
Then one real run: the drill, finding an instance at its copy's name that it
did not make (here the platform's live database under that name would be the
same), refuses to delete it and leaves it running.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from local_aws.postgres import free_port
from tests.playbooks import ROOT, ensure_collection, run_playbook

RDS_INSTANCE = {"amazon.aws.rds_instance", "rds_instance", "community.aws.rds_instance"}
# The one deletion without a final snapshot: the DR drill's temporary copy, behind its guard.
DRILL_COPY = (Path("roles/dr_drill/tasks/delete_copy.yml"), "{{ __dr_drill_instance_id }}")
SOURCES = ["playbooks/**/*.yml", "roles/*/tasks/**/*.yml", "roles/*/handlers/**/*.yml", "molecule/*/*.yml"]


def _tasks(items: Any) -> Iterator[dict[str, Any]]:
    for item in items or []:
        if not isinstance(item, dict):
            continue
        yield item
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            if isinstance(item.get(key), list):
                yield from _tasks(item[key])


def _files() -> list[Path]:
    found = sorted({path for pattern in SOURCES for path in ROOT.glob(pattern)})
    assert len(found) > 50, found  # the globs find the collection
    return found


def _deletions() -> list[tuple[Path, dict[str, Any], dict[str, Any]]]:
    out = []
    for path in _files():
        for task in _tasks(yaml.safe_load(path.read_text())):
            module = next((name for name in RDS_INSTANCE if name in task), None)
            if module is None or not isinstance(task[module], dict):
                continue
            args = task[module]
            if str(args.get("state", "present")) in ("absent", "terminated"):
                out.append((path.relative_to(ROOT), task, args))
    return out


def test_every_deletion_of_a_db_instance_takes_a_final_snapshot_or_is_the_drills_own_copy():
    deletions = _deletions()
    # The two that exist today (the scan finds them): the database role's, and the drill's copy.
    assert {str(path) for path, _, _ in deletions} == {"roles/database/tasks/absent.yml", str(DRILL_COPY[0])}
    for path, task, args in deletions:
        if (path, args.get("db_instance_identifier")) == DRILL_COPY:
            assert args.get("skip_final_snapshot") is True, task
            continue
        assert args.get("skip_final_snapshot") is False, (path, task["name"])  # a literal false, never a variable
        assert str(args.get("final_db_snapshot_identifier", "")).strip(), (path, task["name"])


def test_the_drills_copy_is_deleted_only_behind_its_guard():
    tasks = list(_tasks(yaml.safe_load((ROOT / DRILL_COPY[0]).read_text())))
    [guard] = [t for t in tasks if "ansible.builtin.assert" in t]
    [delete] = [t for t in tasks if "amazon.aws.rds_instance" in t]
    assert tasks.index(guard) < tasks.index(delete)
    that = " ".join(guard["ansible.builtin.assert"]["that"])
    for condition in ("database_outputs.instance_id", "__dr_drill_source", "purpose", "'dr-drill'"):
        assert condition in that, that
    # The drill tags what it restores with that purpose, and includes this file wherever it deletes.
    assert "'purpose': 'dr-drill'" in (ROOT / "roles/dr_drill/vars/main.yml").read_text()
    for name in ("restore.yml", "cleanup.yml"):
        assert "include_tasks: delete_copy.yml" in (ROOT / "roles/dr_drill/tasks" / name).read_text()


def test_nothing_deletes_an_instance_behind_the_modules_back():
    pattern = re.compile(r"delete[-_]db[-_]instance|DeleteDBInstance", re.IGNORECASE)
    offenders = [str(path.relative_to(ROOT)) for path in _files() if pattern.search(path.read_text())]
    offenders += [str(path.relative_to(ROOT)) for path in ROOT.glob("plugins/**/*.py") if pattern.search(path.read_text())]
    assert offenders == []


@pytest.fixture(scope="module")
def foreign_copy(stack: Any) -> Iterator[dict[str, Any]]:
    """A platform with a live database, its secret and a snapshot, and an instance at the drill copy's name
    that the drill did not make."""
    ensure_collection()
    env = f"g{uuid.uuid4().hex[:7]}"
    prefix, password = f"fastier-{env}", uuid.uuid4().hex
    rds = stack.client("rds")
    for name in (f"{prefix}-db", f"{prefix}-dr-drill"):
        rds.create_db_instance(
            DBInstanceIdentifier=name,
            Engine="postgres",
            DBInstanceClass="db.t4g.micro",
            AllocatedStorage=20,
            MasterUsername="fastier",
            MasterUserPassword=password,
            DBName="fastier",
            Port=free_port(),
            BackupRetentionPeriod=0,
            Tags=[{"Key": "Name", "Value": name}],
        )
    stack.client("secretsmanager").create_secret(Name=f"{prefix}/database/master", SecretString=json.dumps({"username": "fastier", "password": password}))
    rds.create_db_snapshot(DBInstanceIdentifier=f"{prefix}-db", DBSnapshotIdentifier=f"{prefix}-s1")
    try:
        yield {"env": env, "prefix": prefix}
    finally:
        for name in (f"{prefix}-db", f"{prefix}-dr-drill"):
            stack.drop_db_instance(name)


def test_the_drill_refuses_to_delete_an_instance_it_did_not_make(stack, foreign_copy):
    prefix = foreign_copy["prefix"]
    run = run_playbook(stack.env(), ROOT / "playbooks/dr_drill.yml", {"platform_env": foreign_copy["env"], "dr_drill_write_canary": False})
    assert run.rc != 0
    refusals = [t for t in run.tasks() if t.get("failed")]
    assert refusals and all(t["name"] == "fastier.platform.dr_drill : Delete copy | It is the drill's own copy, never the live database" for t in refusals)
    assert "not a copy made by the DR drill" in refusals[0]["msg"], refusals[0]["msg"]
    assert not any(t.get("changed") for t in run.tasks()), run.changed_tasks()
    alive = {i["DBInstanceIdentifier"]: i["DBInstanceStatus"] for i in stack.client("rds").describe_db_instances()["DBInstances"]}
    assert (alive[f"{prefix}-db"], alive[f"{prefix}-dr-drill"]) == ("available", "available")
