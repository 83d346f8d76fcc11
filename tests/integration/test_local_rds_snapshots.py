"""Local RDS snapshots and restores move real data.

Each test writes rows to a real PostgreSQL instance through the endpoint RDS
reports, takes a snapshot or notes a time, writes more, restores through the
RDS API (boto3) and reads the restored server: the rows of that moment are
there, the later ones are not.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from tests.localstack import LocalStack

PASSWORD = "initial-pass-1"
MASTER = "master"
DR_REGION = "us-west-2"
UTC = datetime.UTC


class Resources:
    """Instances and snapshots a test makes (per region), deleted afterwards."""

    def __init__(self, stack: LocalStack, unique: str):
        self.stack = stack
        self.unique = unique
        self.clients: dict[str, Any] = {}
        self.instances: list[tuple[str, str]] = []
        self.snapshots: list[tuple[str, str]] = []

    def rds(self, region: str | None = None) -> Any:
        region = region or self.stack.region
        if region not in self.clients:
            self.clients[region] = self.stack.client("rds", region=region)
        return self.clients[region]

    def name(self, what: str) -> str:
        return f"s-{self.unique}-{what}"

    def create(self, what: str, **params: Any) -> dict[str, Any]:
        identifier = self.name(what)
        self.instances.append((self.stack.region, identifier))
        args = {
            "DBInstanceIdentifier": identifier,
            "Engine": "postgres",
            "DBInstanceClass": "db.t3.micro",
            "AllocatedStorage": 20,
            "MasterUsername": MASTER,
            "MasterUserPassword": PASSWORD,
            "DBName": "fastier",
            **params,
        }
        return self.rds().create_db_instance(**args)["DBInstance"]

    def restore_snapshot(self, what: str, snapshot: str, region: str | None = None, **params: Any) -> dict[str, Any]:
        identifier = self.name(what)
        self.instances.append((region or self.stack.region, identifier))
        params = {"BackupRetentionPeriod": 0, **params}  # no base backup for a restore the test does not restore again
        return self.rds(region).restore_db_instance_from_db_snapshot(DBInstanceIdentifier=identifier, DBSnapshotIdentifier=snapshot, **params)["DBInstance"]

    def restore_time(self, what: str, **params: Any) -> dict[str, Any]:
        identifier = self.name(what)
        self.instances.append((self.stack.region, identifier))
        params = {"BackupRetentionPeriod": 0, **params}
        return self.rds().restore_db_instance_to_point_in_time(TargetDBInstanceIdentifier=identifier, **params)["DBInstance"]

    def snapshot_name(self, what: str, region: str | None = None) -> str:
        name = self.name(what)
        self.snapshots.append((region or self.stack.region, name))
        return name

    def cleanup(self) -> None:
        for region, identifier in self.instances:
            try:
                self.rds(region).modify_db_instance(DBInstanceIdentifier=identifier, DeletionProtection=False, ApplyImmediately=True)
                self.rds(region).delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)
            except ClientError as err:
                assert err.response["Error"]["Code"] == "DBInstanceNotFound", err
        for region, name in self.snapshots:
            try:
                self.rds(region).delete_db_snapshot(DBSnapshotIdentifier=name)
            except ClientError as err:
                assert "NotFound" in err.response["Error"]["Code"], err


@pytest.fixture
def res(stack: LocalStack, unique: str) -> Iterator[Resources]:
    resources = Resources(stack, unique)
    yield resources
    resources.cleanup()


def connect(db: dict[str, Any], password: str = PASSWORD) -> psycopg.Connection:
    endpoint = db["Endpoint"]
    return psycopg.connect(
        host=endpoint["Address"], port=endpoint["Port"], user=MASTER, password=password, dbname="fastier", autocommit=True, connect_timeout=5
    )


def write(db: dict[str, Any], *ids: int) -> datetime.datetime:
    """Insert rows, one transaction each; returns the time after the last commit."""
    with connect(db) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())")
        for row in ids:
            conn.execute("INSERT INTO orders (id) VALUES (%s)", (row,))
    return datetime.datetime.now(UTC)


def rows(db: dict[str, Any], password: str = PASSWORD) -> list[int]:
    with connect(db, password) as conn:
        return [row for (row,) in conn.execute("SELECT id FROM orders ORDER BY id")]


def error_code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def snapshot_files(stack: LocalStack) -> dict[tuple[str, str], Path]:
    status, body = stack.control("GET", "/_local/rds/snapshots")
    assert status == 200, body
    return {(s["region"], s["id"]): Path(s["data_dir"]) for s in body["snapshots"]}


def wait_restorable(rds: Any, identifier: str, at_least: datetime.datetime | None = None, timeout: float = 20) -> dict[str, Any]:
    """DescribeDBInstances until LatestRestorableTime exists (and reaches ``at_least``), as a DR script would."""
    deadline = time.monotonic() + timeout
    while True:
        db = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
        latest = db.get("LatestRestorableTime")
        if latest is not None and (at_least is None or latest >= at_least):
            return db
        assert time.monotonic() < deadline, f"LatestRestorableTime of {identifier} is {latest}, waited for {at_least}"
        time.sleep(0.2)


def test_snapshot_holds_the_data_and_password_of_its_moment(stack: LocalStack, res: Resources) -> None:
    db = res.create("src", AllocatedStorage=25, DeletionProtection=True)
    write(db, 1, 2)
    name = res.snapshot_name("snap")

    before = datetime.datetime.now(UTC)
    snapshot = res.rds().create_db_snapshot(DBInstanceIdentifier=db["DBInstanceIdentifier"], DBSnapshotIdentifier=name)["DBSnapshot"]
    after = datetime.datetime.now(UTC)

    assert snapshot["Status"] == "available"
    assert before <= snapshot["SnapshotCreateTime"] <= after
    assert (snapshot["AllocatedStorage"], snapshot["Engine"], snapshot["MasterUsername"]) == (25, "postgres", MASTER)
    files = snapshot_files(stack)[(stack.region, name)]
    assert (files / "PG_VERSION").is_file()
    write(db, 3)
    res.rds().modify_db_instance(DBInstanceIdentifier=db["DBInstanceIdentifier"], MasterUserPassword="changed-pass-2", ApplyImmediately=True)

    restored = res.restore_snapshot("restored", name)

    assert restored["DBInstanceStatus"] == "available"
    # As on AWS a restore is deletion-protected only when asked (moto copied the source's protection).
    assert db["DeletionProtection"] is True and restored["DeletionProtection"] is False
    assert restored["Endpoint"]["Port"] != db["Endpoint"]["Port"]
    assert rows(restored) == [1, 2]  # row 3 came after the snapshot; the password is the one of that moment
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(restored, "changed-pass-2")
    assert rows(db, "changed-pass-2") == [1, 2, 3]  # the source is untouched
    write(restored, 10)
    assert rows(db, "changed-pass-2") == [1, 2, 3]  # and independent of its restore


def test_copies_outlive_the_deleted_snapshot_and_restore_in_another_region(stack: LocalStack, res: Resources) -> None:
    db = res.create("src", BackupRetentionPeriod=0)
    write(db, 1)
    name = res.snapshot_name("snap")
    arn = res.rds().create_db_snapshot(DBInstanceIdentifier=db["DBInstanceIdentifier"], DBSnapshotIdentifier=name)["DBSnapshot"]["DBSnapshotArn"]
    write(db, 2)

    local_copy = res.snapshot_name("copy")
    res.rds().copy_db_snapshot(SourceDBSnapshotIdentifier=name, TargetDBSnapshotIdentifier=local_copy)
    dr_copy = res.snapshot_name("dr", DR_REGION)
    copied = res.rds(DR_REGION).copy_db_snapshot(SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier=dr_copy, SourceRegion=stack.region)
    assert copied["DBSnapshot"]["DBSnapshotArn"].startswith(f"arn:aws:rds:{DR_REGION}:")
    files = snapshot_files(stack)
    original = files[(stack.region, name)]
    copies = {files[(stack.region, local_copy)], files[(DR_REGION, dr_copy)]}
    assert original not in copies and len(copies) == 2, "copies have folders of their own"

    res.rds().delete_db_snapshot(DBSnapshotIdentifier=name)

    assert not original.exists()
    assert (stack.region, name) not in snapshot_files(stack)
    assert all((copy / "PG_VERSION").is_file() for copy in copies)
    in_dr = res.restore_snapshot("in-dr", dr_copy, region=DR_REGION)
    assert in_dr["DBInstanceArn"].startswith(f"arn:aws:rds:{DR_REGION}:") and in_dr["AvailabilityZone"].startswith(DR_REGION)
    assert rows(in_dr) == [1]


def test_final_snapshot_of_a_deleted_instance_restores_its_data(res: Resources) -> None:
    db = res.create("src", BackupRetentionPeriod=0)
    write(db, 1, 2, 3)
    final = res.snapshot_name("final")

    res.rds().delete_db_instance(DBInstanceIdentifier=db["DBInstanceIdentifier"], FinalDBSnapshotIdentifier=final)

    with pytest.raises(psycopg.OperationalError):
        connect(db)
    assert rows(res.restore_snapshot("restored", final)) == [1, 2, 3]


def test_stopped_instance_refuses_snapshots_but_its_final_snapshot_has_its_data(res: Resources) -> None:
    db = res.create("src", BackupRetentionPeriod=0)
    write(db, 1)
    identifier = db["DBInstanceIdentifier"]
    res.rds().stop_db_instance(DBInstanceIdentifier=identifier)

    assert error_code(lambda: res.rds().create_db_snapshot(DBInstanceIdentifier=identifier, DBSnapshotIdentifier=res.snapshot_name("x"))) == (
        "InvalidDBInstanceState"
    )
    final = res.snapshot_name("final")
    res.rds().delete_db_instance(DBInstanceIdentifier=identifier, FinalDBSnapshotIdentifier=final)

    assert rows(res.restore_snapshot("restored", final)) == [1]  # a copy of the stopped server's data


def test_point_in_time_restore_replays_archived_wal(res: Resources) -> None:
    db = res.create("src")
    identifier = db["DBInstanceIdentifier"]
    source = wait_restorable(res.rds(), identifier)  # the first backup is done, as RDS's after creation
    write(db, 1, 2)
    between = datetime.datetime.now(UTC)
    time.sleep(0.05)
    write(db, 3, 4)
    latest = wait_restorable(res.rds(), identifier, at_least=between)["LatestRestorableTime"]

    [backups] = res.rds().describe_db_instance_automated_backups(DBInstanceIdentifier=identifier)["DBInstanceAutomatedBackups"]
    assert backups["DbiResourceId"] == source["DbiResourceId"] and backups["RestoreWindow"]["EarliestTime"] <= between <= latest

    at_time = res.restore_time("at", SourceDBInstanceIdentifier=identifier, RestoreTime=between)

    assert at_time["DBInstanceStatus"] == "available"
    assert rows(at_time) == [1, 2]  # committed before the time; 3 and 4 after it
    write(db, 5)
    newest = res.restore_time("latest", SourceDbiResourceId=source["DbiResourceId"], UseLatestRestorableTime=True, BackupRetentionPeriod=1)
    assert rows(newest) == [1, 2, 3, 4, 5]
    assert newest["BackupRetentionPeriod"] == 1 and at_time["BackupRetentionPeriod"] == 0
    wait_restorable(res.rds(), newest["DBInstanceIdentifier"])  # a restored instance keeps automated backups of its own

    def refused(**params: Any) -> str:
        restore = res.rds().restore_db_instance_to_point_in_time
        return error_code(lambda: restore(SourceDBInstanceIdentifier=identifier, TargetDBInstanceIdentifier=res.name("never"), **params))

    assert refused(RestoreTime=db["InstanceCreateTime"] - datetime.timedelta(minutes=5)) == "InvalidRestoreFault"
    assert refused(RestoreTime=latest + datetime.timedelta(hours=1)) == "InvalidRestoreFault"
    assert refused(RestoreTime=latest, UseLatestRestorableTime=True) == "InvalidParameterCombination"
    assert error_code(lambda: res.rds().describe_db_instances(DBInstanceIdentifier=res.name("never"))) == "DBInstanceNotFound"

    # The automated snapshot RDS takes at creation: the master and database, none of the rows.
    [automated] = res.rds().describe_db_snapshots(DBInstanceIdentifier=identifier, SnapshotType="automated")["DBSnapshots"]
    assert automated["Status"] == "available"
    with connect(res.restore_snapshot("auto", automated["DBSnapshotIdentifier"])) as conn:
        assert conn.execute("SELECT to_regclass('orders')").fetchone() == (None,)


def test_no_automated_backups_without_retention(res: Resources) -> None:
    db = res.create("none", BackupRetentionPeriod=0)
    identifier = db["DBInstanceIdentifier"]

    assert res.rds().describe_db_snapshots(DBInstanceIdentifier=identifier, SnapshotType="automated")["DBSnapshots"] == []
    assert "LatestRestorableTime" not in res.rds().describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    restore = res.rds().restore_db_instance_to_point_in_time
    code = error_code(lambda: restore(SourceDBInstanceIdentifier=identifier, TargetDBInstanceIdentifier=res.name("never"), UseLatestRestorableTime=True))
    assert code == "PointInTimeRestoreNotEnabled"
