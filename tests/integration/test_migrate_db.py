"""playbooks/migrate.yml phase by phase moves the live sample app off the legacy server, and back.

The legacy server and the platform: ``migration_kit.legacy_server`` (the
platform provisioned with ``--tags bundle,provision``). A writer keeps writing
through the app's HTTP API from before the replication to the end. What is
checked is what a user cares about, by queries and HTTP requests of this test:

* a cut-over before the replication is refused and changes nothing; a
  rehearsal (``--check``) changes nothing on either server, in AWS or DNS;
* replicate -> deploy -> ttl: the RDS security group is open to the legacy
  server, replication runs, the Elastic Beanstalk environment runs the bundle
  on RDS and says so through its load balancer, www still points at the
  legacy server with the low TTL;
* ``cutover`` fences writes for a measured time; the legacy app is repointed
  at RDS inside the fence and every write it acknowledged is on RDS; www
  points at Elastic Beanstalk; no password reaches the output or the report;
* ``rollback`` brings every write made on RDS back to the legacy database,
  repoints the legacy app at it, points www back and closes the rules.

Every phase in one run from nothing, decommission, a second run and a DR
drill: ``test_migrate_all.py`` (beside this one, on the other test worker).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.integration.migration_kit import Migration, get_json, legacy_server
from tests.playbooks import ensure_collection
from tools.legacy import APP_DB


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


@pytest.fixture(scope="module")
def migration(stack) -> Iterator[Migration]:
    with legacy_server(stack, provision=True) as current:
        yield current


def test_phase_by_phase_with_a_rehearsal_a_refusal_and_a_rollback(migration: Migration) -> None:
    m = migration
    legacy_name = m.legacy_dns_name()
    assert m.www() == {"target": legacy_name, "ttl": 300}  # provisioned, DNS still on the legacy server

    # The cut-over continues a replication: before one runs it is refused, and nothing changes.
    early = m.migrate(["cutover"])
    assert early.rc != 0 and "Run the replicate phase first" in early.explain(), early.explain()
    assert m.temporary_rules() == {"in": [], "out": []}

    # A rehearsal of the migration's phases changes nothing anywhere (site.yml's own check mode: molecule default).
    rehearsal = m.migrate(check=True, skip="provision")
    assert rehearsal.rc == 0, rehearsal.explain()
    assert m.temporary_rules() == {"in": [], "out": []}
    with m.source() as src, m.target() as dst:
        assert src.execute("SELECT count(*) FROM pg_publication").fetchone()[0] == 0
        assert dst.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0
    assert m.www() == {"target": legacy_name, "ttl": 300}
    assert not m.live().get("VersionLabel")  # still AWS's sample application

    m.legacy.start_writer(rate=5)
    m.wait_for_writes(20)
    upto = m.migrate(["replicate", "deploy", "ttl"])
    assert upto.rc == 0, upto.explain()
    assert upto.outputs("db_cutover_outputs")["state"] == "syncing"
    # In to the RDS port from the legacy server, out to the legacy port for the subscription.
    assert m.temporary_rules() == {"in": [("127.0.0.1/32", m.extra["database_port"])], "out": [("127.0.0.1/32", m.cluster.port)]}
    label = upto.outputs("app_bundle_outputs")["version_label"]
    live = m.live()
    assert live["VersionLabel"] == label and live["EnvironmentName"] == f"{m.prefix}-green"
    status, version = get_json(f"{m.new_path()}/version")
    assert status == 200 and version["environment"] == live["EnvironmentName"] and version["database"] == m.rds_address()
    assert m.www() == {"target": legacy_name, "ttl": 60}  # the TTL lowered ahead of the cut-over, still on the legacy server

    m.wait_for_writes(len(m.acknowledged()) + 20)
    cutover = m.migrate(["cutover"])
    assert cutover.rc == 0, cutover.explain()
    outputs = cutover.outputs("db_cutover_outputs")
    assert outputs["state"] == "done" and float(outputs["write_downtime_s"]) > 0
    assert int(outputs["tables_verified"]) == int(outputs["tables"]) > 0
    status, version = get_json(f"{m.legacy.url}/version")
    assert status == 200 and version["database"] == m.rds_address()  # the legacy app was repointed at RDS
    assert m.www() == {"target": f"{m.prefix}.us-east-1.elasticbeanstalk.com", "ttl": 60}
    m.wait_for_writes(len(m.acknowledged()) + 10)
    acknowledged = m.acknowledged()
    with m.target() as dst:
        assert m.missing(dst, acknowledged) == []  # every write the app acknowledged, before and after the fence
    assert any(r["database"] == m.rds_address() for r in acknowledged)  # and the legacy app writes to RDS now
    report = (m.report_dir / "fastier-cutover.json").read_text()
    assert json.loads(report)["state"] == "done"
    for secret in m.secrets():
        for text in (report, upto.stdout, cutover.stdout):
            assert secret not in text

    # A rollback before decommission: every write made on RDS comes back, the legacy app writes to its database again.
    m.wait_for_writes(len(acknowledged) + 20)
    rollback = m.migrate(["rollback"])
    assert rollback.rc == 0, rollback.explain()
    assert rollback.outputs("db_cutover_outputs")["state"] == "rolled_back"
    status, version = get_json(f"{m.legacy.url}/version")
    assert status == 200 and version["database"] == f"127.0.0.1:{m.cluster.port}/{APP_DB}"
    m.wait_for_writes(len(m.acknowledged()) + 10)
    with m.source() as src, m.target() as dst:
        assert m.missing(src, m.acknowledged()) == []
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            dst.execute("INSERT INTO page_views (path) VALUES ('/RDS is the old primary now')")
    assert m.temporary_rules() == {"in": [], "out": []}
    assert m.www()["target"] == legacy_name
    print(f"test_migrate_db: migration test done {time.monotonic() - m.started:.0f} s after the module started", file=sys.stderr)
