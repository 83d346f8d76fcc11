"""pg_recovery_check: a restored copy against the live database as of the recovery point.

Two real PostgreSQL databases on loopback: ``live`` keeps being written, and
``copy`` holds what ``live`` held at a recovery point (made the way a
snapshot would: the rows up to that point). Each case changes the copy the
way a bad restore would and checks the verdict, then runs the installed
module through ansible-playbook once for its interface (no password shown).
"""

from __future__ import annotations

import datetime
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from local_aws.postgres import Cluster, free_port
from plugins.module_utils import recovery
from tests.playbooks import ensure_collection, run_playbook

UTC = datetime.UTC
POINT = datetime.datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
SCHEMA = """
CREATE TABLE orders (id bigint PRIMARY KEY, created_at timestamptz NOT NULL);
CREATE SCHEMA fastier_dr;
CREATE TABLE fastier_dr.canary (id bigserial PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT now(), note text);
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="recovery-check-"))
    root.chmod(0o755)
    server = Cluster("pg", root, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _fill(conn: psycopg.Connection, until: datetime.datetime) -> None:
    """Orders every 10 s from POINT-5min, up to ``until``; canaries at POINT-60s and POINT+60s (if before ``until``)."""
    conn.execute(SCHEMA)
    moment, n = POINT - datetime.timedelta(minutes=5), 0
    while moment <= until:
        n += 1
        conn.execute("INSERT INTO orders VALUES (%s, %s)", (n, moment))
        moment += datetime.timedelta(seconds=10)
    for offset in (-60, 60):
        stamp = POINT + datetime.timedelta(seconds=offset)
        if stamp <= until:
            conn.execute("INSERT INTO fastier_dr.canary (written_at, note) VALUES (%s, 'canary')", (stamp,))


@pytest.fixture
def pair(cluster: Cluster, unique: str) -> Iterator[dict[str, Any]]:
    names = {"live": f"live_{unique}", "copy": f"copy_{unique}"}
    with cluster.connect() as admin:
        for name in names.values():
            admin.execute(f'CREATE DATABASE "{name}"')
    conns = {side: psycopg.connect(**cluster.conninfo(name), autocommit=True) for side, name in names.items()}
    _fill(conns["live"], POINT + datetime.timedelta(minutes=3))  # the live database went on after the point
    _fill(conns["copy"], POINT)
    try:
        yield {**conns, "names": names}
    finally:
        for conn in conns.values():
            conn.close()


KEY = [{"name": "orders", "timestamp_column": "created_at"}]
CANARY = {"table": "fastier_dr.canary", "column": "written_at"}
DECLARED = POINT + datetime.timedelta(minutes=3)


def test_a_faithful_copy_is_verified_and_its_rpo_measured(pair: dict[str, Any]) -> None:
    verdict = recovery.check(pair["copy"], pair["live"], POINT, KEY, canary=CANARY, reference_time=DECLARED)
    assert verdict["verified"] is True, verdict["problems"]
    [orders] = verdict["tables"]
    assert orders["restored_rows"] == 31 and orders["restored_after_recovery_point"] == 0
    # The newest data in the copy is the order stamped at the point itself: 3 minutes of data lost.
    assert verdict["newest_data"] == "2026-11-22T12:00:00.000000Z" and verdict["rpo_s"] == 180.0
    assert verdict["canary"]["restored_newest"] == "2026-11-22T11:59:00.000000Z"


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ("DELETE FROM orders WHERE id = 7", "orders: 29 row(s) restored, 30 the live database held"),
        ("INSERT INTO orders VALUES (999, '2026-11-22T12:01:00Z')", "1 row(s) newer than the recovery point"),
        ("DELETE FROM fastier_dr.canary", "the canary of 2026-11-22T11:59:00.000000Z is missing from the copy"),
    ],
    ids=["a-lost-row", "a-row-from-after-the-point", "the-canary-lost"],
)
def test_a_wrong_copy_is_named(pair: dict[str, Any], damage: str, words: str) -> None:
    pair["copy"].execute(damage)
    verdict = recovery.check(pair["copy"], pair["live"], POINT, KEY, canary=CANARY, reference_time=DECLARED)
    assert verdict["verified"] is False
    assert any(words in problem for problem in verdict["problems"]), verdict["problems"]


def test_the_module_reports_the_verdict_without_a_password(stack, cluster: Cluster, pair: dict[str, Any], tmp_path: Path) -> None:
    ensure_collection()
    info = {side: {**cluster.conninfo(pair["names"][side]), "sslmode": "disable"} for side in ("live", "copy")}
    play = tmp_path / "check.yml"
    play.write_text(
        json.dumps(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Check the copy",
                            "fastier.platform.pg_recovery_check": {
                                "restored": "{{ it_copy }}",
                                "live": "{{ it_live }}",
                                "recovery_time": POINT.isoformat(),
                                "reference_time": DECLARED.isoformat(),
                                "key_tables": KEY,
                                "canary": CANARY,
                                "fail_on_mismatch": "{{ it_fail }}",
                            },
                            "register": "it_verdict",
                        }
                    ],
                }
            ]
        )
    )
    extra = {"it_copy": info["copy"], "it_live": info["live"], "it_fail": True}
    good = run_playbook(stack.env(), play, extra, check=True)
    assert good.rc == 0, good.explain()
    assert good.task("Check the copy")["rpo_s"] == 180.0 and good.changed == 0
    pair["copy"].execute("DELETE FROM orders WHERE id = 3")
    bad = run_playbook(stack.env(), play, extra)
    assert bad.rc != 0 and "29 row(s) restored, 30 the live database held" in bad.explain()
    assert cluster.superuser_password not in bad.stdout + bad.stderr
