"""The database role (after the network role) through ansible-playbook against the local AWS.

Four-step change test, every security setting read back with boto3, a real
connection to the instance with the password read from Secrets Manager, the
password never in the output nor regenerated, deletion refused without
confirmation and done with a final snapshot, and bad inventory values refused
before any AWS call.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import psycopg
import pytest

from local_aws.postgres import free_port
from tests.playbooks import ROOT, ensure_collection, run_playbook

PLAYBOOK = ROOT / "tests/integration/playbooks/role_database.yml"
NETWORK_PLAYBOOK = ROOT / "tests/integration/playbooks/role_network.yml"
NO_AWS = "http://127.0.0.1:9"
INSTANCE_TASK = "fastier.platform.database : Present | RDS PostgreSQL instance [RDS.2 RDS.3 RDS.5 RDS.8 RDS.9 RDS.11 RDS.13 RDS.17]"
# Every knob explicit, so the local inventory's values do not matter here.
BASE = {
    "network_nat_mode": "none",  # the database needs no NAT gateway; faster
    "network_flow_logs_enabled": False,
    "database_engine_version": "15",
    "database_instance_class": "db.t3.micro",
    "database_allocated_storage": 20,
    "database_max_allocated_storage": 100,
    "database_storage_type": "gp3",
    "database_name": "fastier",
    "database_master_username": "fastier",
    "database_multi_az": True,
    "database_storage_encrypted": True,
    "database_publicly_accessible": False,
    "database_deletion_protection": True,
    "database_backup_retention_days": 7,
    "database_auto_minor_version_upgrade": True,
    "database_cloudwatch_logs_exports": ["postgresql", "upgrade"],
    "database_copy_tags_to_snapshot": True,
    "database_apply_immediately": True,
    "database_performance_insights_enabled": False,
    "database_log_min_duration_ms": 1000,
    "database_parameters": {},
    "database_master_secret_name": "",
    "database_subnet_ids": [],
    "database_security_group_ids": [],
}


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


def _instances(rds: Any, identifier: str) -> list[dict[str, Any]]:
    return [d for d in rds.describe_db_instances()["DBInstances"] if d["DBInstanceIdentifier"] == identifier]


def _secret(stack: Any, name: str) -> dict[str, Any]:
    return json.loads(stack.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])


@pytest.fixture(scope="module")
def converged(stack) -> dict[str, Any]:
    """One environment through check mode on an empty account, the network, then the
    database's four steps; the tests below read it, the last one deletes it."""
    env = f"d{uuid.uuid4().hex[:8]}"
    port = free_port()  # each local instance is a server on 127.0.0.1:<port>
    extra = {**BASE, "platform_env": env, "network_db_port": port, "database_port": port}
    only_db = {**extra, "it_with_network": False}  # the role reads the network through its facts entry point
    identifier = f"fastier-{env}-db"
    secrets = stack.client("secretsmanager")
    rds = stack.client("rds")
    runs = {"empty_check": run_playbook(stack.env(), PLAYBOOK, extra, check=True)}
    runs["network"] = run_playbook(stack.env(), NETWORK_PLAYBOOK, extra)
    runs["first_check"] = run_playbook(stack.env(), PLAYBOOK, only_db, check=True)
    runs["instances_after_check"] = _instances(rds, identifier)
    runs["real"] = run_playbook(stack.env(), PLAYBOOK, only_db)
    runs["secret_after_real"] = secrets.describe_secret(SecretId=f"fastier-{env}/database/master") if runs["real"].rc == 0 else None
    runs["second_check"] = run_playbook(stack.env(), PLAYBOOK, only_db, check=True)
    runs["second"] = run_playbook(stack.env(), PLAYBOOK, only_db)
    return {"env": env, "port": port, "identifier": identifier, "secret_name": f"fastier-{env}/database/master", "extra": extra, **runs}


RUNS = ("empty_check", "network", "first_check", "real", "second_check", "second")


def test_database_four_step_change_test(converged):
    empty_check = converged["empty_check"]
    assert empty_check.rc == 0, empty_check.explain()
    assert empty_check.task(INSTANCE_TASK).get("skipped") is True  # no network yet: nothing to plan
    assert converged["network"].rc == 0, converged["network"].explain()

    first_check = converged["first_check"]
    assert first_check.rc == 0, first_check.explain()
    assert first_check.task(INSTANCE_TASK)["changed"] is True
    assert converged["instances_after_check"] == [], "check mode created an instance"
    assert first_check.outputs("database_outputs")["status"] == "absent"

    real = converged["real"]
    assert real.rc == 0, real.explain()
    assert real.task(INSTANCE_TASK)["changed"] is True

    for step in ("second_check", "second"):
        run = converged[step]
        assert run.rc == 0, run.explain()
        assert run.changed == 0, (step, run.changed_tasks())


def test_instance_is_private_encrypted_multi_az_protected_and_backed_up(stack, converged):
    rds = stack.client("rds")
    [db] = _instances(rds, converged["identifier"])
    assert db["Engine"] == "postgres"
    assert db["DBInstanceClass"] == "db.t3.micro"
    assert db["MultiAZ"] is True  # RDS.5
    assert db["StorageEncrypted"] is True  # RDS.3
    assert db["PubliclyAccessible"] is False  # RDS.2
    assert db["DeletionProtection"] is True  # RDS.8
    assert db["BackupRetentionPeriod"] == 7  # RDS.11
    assert db["AutoMinorVersionUpgrade"] is True  # RDS.13
    assert sorted(db["EnabledCloudwatchLogsExports"]) == ["postgresql", "upgrade"]  # RDS.9
    assert db["CopyTagsToSnapshot"] is True  # RDS.17
    assert (db["AllocatedStorage"], db["MaxAllocatedStorage"], db["StorageType"]) == (20, 100, "gp3")
    assert {t["Key"]: t["Value"] for t in db["TagList"]}["Name"] == converged["identifier"]

    # in the network role's db subnets, behind its database security group only
    network = converged["network"].outputs("network_outputs")
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == [network["db_security_group_id"]]
    assert db["DBSubnetGroup"]["DBSubnetGroupName"] == f"fastier-{converged['env']}-db"
    assert sorted(s["SubnetIdentifier"] for s in db["DBSubnetGroup"]["Subnets"]) == sorted(network["db_subnet_ids"])

    # the parameter group requires TLS and logs what an operator needs
    group = f"fastier-{converged['env']}-postgres15"
    assert [g["DBParameterGroupName"] for g in db["DBParameterGroups"]] == [group]
    assert rds.describe_db_parameter_groups(DBParameterGroupName=group)["DBParameterGroups"][0]["DBParameterGroupFamily"] == "postgres15"
    pages = rds.get_paginator("describe_db_parameters").paginate(DBParameterGroupName=group)
    params = {p["ParameterName"]: p.get("ParameterValue") for p in pages.build_full_result()["Parameters"]}
    assert params["rds.force_ssl"] == "1"
    assert params["log_min_duration_statement"] == "1000"
    assert (params["log_connections"], params["log_disconnections"], params["log_lock_waits"]) == ("1", "1", "1")

    out = converged["second"].outputs("database_outputs")
    assert out["instance_id"] == converged["identifier"]
    assert out["endpoint_address"] == db["Endpoint"]["Address"] == out["endpoint"]["address"]
    assert out["endpoint_port"] == db["Endpoint"]["Port"] == converged["port"] == out["endpoint"]["port"]
    assert (out["db_name"], out["master_username"], out["multi_az"], out["status"]) == ("fastier", "fastier", True, "available")
    described = stack.client("secretsmanager").describe_secret(SecretId=converged["secret_name"])
    assert out["secret_arn"] == described["ARN"]
    assert "password" not in json.dumps(out).lower()


def test_master_password_from_secrets_manager_connects_and_never_leaks_or_changes(stack, converged):
    secret = _secret(stack, converged["secret_name"])
    assert set(secret) == {"username", "password", "engine", "host", "port", "dbname", "dbInstanceIdentifier"}
    assert (secret["username"], secret["engine"], secret["dbname"], secret["port"]) == ("fastier", "postgres", "fastier", converged["port"])
    assert len(secret["password"]) >= 32

    with psycopg.connect(
        host=secret["host"],
        port=secret["port"],
        user=secret["username"],
        password=secret["password"],
        dbname=secret["dbname"],
        sslmode="require",
        connect_timeout=10,
    ) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("fastier", "fastier")
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)

    for step in RUNS:
        run = converged[step]
        assert secret["password"] not in run.stdout + run.stderr, f"the master password is in the output of {step}"
    # generated once: the converged runs wrote no new secret version
    after = stack.client("secretsmanager").describe_secret(SecretId=converged["secret_name"])
    assert after["VersionIdsToStages"] == converged["secret_after_real"]["VersionIdsToStages"]


def test_deletion_needs_confirmation_and_always_takes_a_final_snapshot(stack, converged):
    """Runs last: it deletes the converged instance."""
    rds = stack.client("rds")
    identifier = converged["identifier"]
    absent = {**converged["extra"], "database_state": "absent", "it_with_network": False}

    refused = run_playbook(stack.env(), PLAYBOOK, absent)
    assert refused.rc != 0
    failed = [t for t in refused.tasks() if t.get("failed")]
    assert "database_confirm_delete" in failed[-1]["msg"]
    assert [t["name"] for t in refused.tasks() if not t.get("skipped") and "fastier.platform.database" in t["name"]][-1].endswith(
        "Validate | Deleting the database takes an explicit confirmation"
    ), "the refusal must come before any AWS call"
    assert _instances(rds, identifier)[0]["DBInstanceStatus"] == "available"

    deleted = run_playbook(stack.env(), PLAYBOOK, {**absent, "database_confirm_delete": True})
    assert deleted.rc == 0, deleted.explain()
    assert _instances(rds, identifier) == []
    snapshots = [s for s in rds.describe_db_snapshots()["DBSnapshots"] if s["DBInstanceIdentifier"] == identifier]
    assert len(snapshots) == 1
    assert re.fullmatch(rf"{identifier}-final-\d{{8}}-\d{{6}}", snapshots[0]["DBSnapshotIdentifier"]), snapshots[0]["DBSnapshotIdentifier"]
    assert snapshots[0]["Status"] == "available"
    assert f"fastier-{converged['env']}-postgres15" not in [g["DBParameterGroupName"] for g in rds.describe_db_parameter_groups()["DBParameterGroups"]]
    assert f"fastier-{converged['env']}-db" not in [g["DBSubnetGroupName"] for g in rds.describe_db_subnet_groups()["DBSubnetGroups"]]
    # the secret stays: it logs in to a restore of the final snapshot
    assert _secret(stack, converged["secret_name"])["username"] == "fastier"
    assert deleted.outputs("database_outputs")["status"] == "absent"

    again = run_playbook(stack.env(), PLAYBOOK, {**absent, "database_confirm_delete": True})
    assert again.rc == 0, again.explain()
    assert again.changed == 0, again.changed_tasks()


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"database_multi_az": "maybe"}, "database_multi_az"),
        ({"database_instance_class": "large"}, "database_instance_class"),
        ({"database_backup_retention_days": 3}, "database_backup_retention_days"),
        ({"database_backup_retention_days": 0, "database_allow_short_backup_retention": True}, "database_backup_retention_days"),
        ({"database_backup_retention_days": 40}, "database_backup_retention_days"),
        ({"database_storage_type": "magnetic"}, "database_storage_type"),
        ({"database_max_allocated_storage": 10}, "database_max_allocated_storage"),
        ({"database_engine_version": "fifteen"}, "database_engine_version"),
        ({"database_master_username": "rdsadmin"}, "database_master_username"),
        ({"database_parameters": {"rds.force_ssl": 0}}, "rds.force_ssl"),
        ({"database_maintenance_window": "sunday 4am"}, "database_maintenance_window"),
    ],
)
def test_bad_database_values_are_refused_before_any_aws_call(stack, bad, named):
    env = {**stack.env(), "LOCAL_AWS_ENDPOINT": NO_AWS}
    run = run_playbook(env, PLAYBOOK, {**BASE, "platform_env": "refused", "it_with_network": False, **bad})
    assert run.rc != 0
    failed = [t for t in run.tasks() if t.get("failed")]
    assert len(failed) == 1, run.explain()
    assert named in failed[0]["msg"], failed[0]["msg"]
    ran = [t["name"] for t in run.tasks() if not t.get("skipped")]
    assert all(name in ("Network role", "Database role") or " : Validat" in name for name in ran), ran
