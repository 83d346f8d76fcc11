"""rds_cutover installed in the collection, run by ansible-playbook, into a local RDS instance.

The source is a local PostgreSQL (wal_level=logical) with the cut-over data
set and a writer running throughout; the target is an RDS DB instance of the
local AWS (a real PostgreSQL server at the endpoint RDS reports). Proves the
installed module works end to end and that no password reaches the output.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from local_aws.postgres import Cluster, free_port
from tests.integration import pgdata
from tests.playbooks import ROOT, ensure_collection, run_playbook

PLAYBOOK = ROOT / "tests/integration/playbooks/cutover_rds.yml"


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


@pytest.fixture
def source() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="cutover-pb-"))
    root.chmod(0o755)
    cluster = Cluster("legacy", root, free_port(), logical=True)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def rds_target(stack, unique) -> Iterator[dict[str, Any]]:
    rds = stack.client("rds")
    identifier = f"cutover-{unique}"
    password = secrets.token_urlsafe(18)
    db = rds.create_db_instance(
        DBInstanceIdentifier=identifier,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="fastier_admin",
        MasterUserPassword=password,
        DBName="fastier",
    )["DBInstance"]
    try:
        yield {"host": db["Endpoint"]["Address"], "port": db["Endpoint"]["Port"], "dbname": "fastier", "user": "fastier_admin", "password": password}
    finally:
        rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)


def test_playbook_moves_a_live_database_to_rds(stack, source: Cluster, rds_target: dict[str, Any], tmp_path: Path) -> None:
    with source.connect() as conn:
        conn.execute("CREATE DATABASE fastier")
    src_info = source.conninfo("fastier")
    with psycopg.connect(**src_info, autocommit=True) as conn:
        pgdata.build(conn, rows=3_000)
    src = {"host": src_info["host"], "port": src_info["port"], "dbname": "fastier", "user": "postgres", "password": src_info["password"]}
    report = tmp_path / "cutover.json"
    writer = pgdata.Writer(src_info).start()
    writer.wait_for(20)
    try:
        run = run_playbook(stack.env(), PLAYBOOK, {"cutover_source": src, "cutover_target": rds_target, "cutover_report": str(report)})
    finally:
        writer.stop()
    assert run.rc == 0, run.explain()
    rehearsal = run.task("Rehearse the cut-over")
    assert rehearsal["changed"] is True and rehearsal["rehearsal"]["sample"]["table"] == "shop.orders"
    result = run.task("Cut over")
    assert result["changed"] is True and result["method"] == "logical" and result["state"] == "done"
    assert result["write_downtime_s"] < 30 and result["lag_bytes_at_fence"] is not None
    rows = sum(t["source_rows"] for t in result["tables"])
    assert any(f"verify: {len(result['tables'])}/{len(result['tables'])} tables match (checksums, {rows} rows)" in line for line in result["progress"])
    assert run.task("Cut over again (the migration is done)")["changed"] is False
    # No password anywhere: not in the output, not in the report.
    for password in (src["password"], rds_target["password"]):
        assert password not in run.stdout + run.stderr
        assert password not in report.read_text()
    assert json.loads(report.read_text())["state"] == "done"
    # Every write the application saw commit is on the RDS instance.
    with psycopg.connect(**rds_target, autocommit=True) as dst, psycopg.connect(**src_info, autocommit=True) as src_conn:
        assert pgdata.missing_writes(dst, writer) == []
        assert pgdata.sequences_behind(src_conn, dst) == []
