"""playbooks/migrate.yml moves the live sample app off the legacy server: in one run from nothing, back by a rollback,
then again phase by phase after the new attempt docs/migration.md describes.

The legacy server: ``migration_kit.legacy_server`` (no platform yet). A writer
keeps writing through the app's HTTP API from before the first replication
to the last cut-over. What is checked is what a user cares about, by queries
and HTTP requests of this test:

* one run from nothing - bundle, provision (site.yml), replicate, deploy, ttl,
  cutover, watch; decommission skipped - ends with every write the app
  acknowledged on RDS (the legacy app repointed at RDS inside a measured write
  fence), the app answering through the new path and through www (the local
  AWS's front door, where Route 53 sends it), no password in the output;
* ``rollback`` brings every write made on RDS back to the legacy database,
  repoints the legacy app at it, points www back and closes the rules;
* a new attempt, prepared as docs/migration.md says (an empty RDS database, the
  publication dropped): a cut-over before the replication is refused and
  changes nothing; a rehearsal (``--check``) changes nothing on either server,
  in AWS or DNS; replicate -> deploy -> ttl opens the RDS security group to the
  legacy server, runs the bundle on RDS, lowers www's TTL while it still points
  at the legacy server; ``cutover`` fences writes for a measured time and
  every write ever acknowledged is on RDS; ``watch,decommission`` stops the
  legacy app, snapshots its root volume, closes the temporary rules and
  restores the normal TTL; a second run of every phase changes nothing and a
  rollback is then refused;
* the converged platform then serves a DR drill.

The tests run in this order on one legacy server and one platform (the
migration is the longest part of ``make test``; a second attempt on a
provisioned platform is also what a customer meets after a rollback).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.integration.migration_kit import Migration, get_json, legacy_server
from tests.playbooks import ROOT, ensure_collection, run_playbook
from tools.legacy import APP_DB


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


@pytest.fixture(scope="module")
def migration(stack) -> Iterator[Migration]:
    with legacy_server(stack) as current:
        yield current


def _answers_on_rds_through_the_new_path_and_www(m: Migration) -> None:
    live = m.live()["EnvironmentName"]
    status, version = get_json(f"{m.new_path()}/version")
    assert status == 200 and version["environment"] == live and version["database"] == m.rds_address()
    # What users reach: www, through the local AWS's front door (where Route 53 sends it).
    status, door = m.stack.control("GET", f"/_local/frontdoor/records/www.{m.domain}")
    assert status == 200, door
    status, version = get_json(f"{door['url'].rstrip('/')}/version")
    assert status == 200 and version["environment"] == live and version["database"] == m.rds_address()


def test_every_phase_but_decommission_in_one_run_from_nothing_then_a_rollback(migration: Migration) -> None:
    m = migration
    m.legacy.start_writer(rate=5)
    m.wait_for_writes(20)
    everything = m.migrate(skip="decommission")
    assert everything.rc == 0, everything.explain()
    outputs = everything.outputs("db_cutover_outputs")
    assert outputs["state"] == "done" and float(outputs["write_downtime_s"]) > 0
    assert int(outputs["tables_verified"]) == int(outputs["tables"]) > 0
    m.wait_for_writes(len(m.acknowledged()) + 10)
    acknowledged = m.acknowledged()
    with m.target() as dst:
        assert m.missing(dst, acknowledged) == []  # every write the app acknowledged, before and after the fence
    assert any(r["database"] == m.rds_address() for r in acknowledged)  # the legacy app wrote to RDS after the hand-over
    assert m.www() == {"target": f"{m.prefix}.us-east-1.elasticbeanstalk.com", "ttl": 60}  # the low TTL until decommission
    _answers_on_rds_through_the_new_path_and_www(m)
    report = (m.report_dir / "fastier-cutover.json").read_text()
    assert json.loads(report)["state"] == "done"
    for secret in m.secrets():
        for text in (report, everything.stdout):
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
    assert m.www()["target"] == m.legacy_dns_name()
    print(f"test_migrate: one run and a rollback done {time.monotonic() - m.started:.0f} s after the module started", file=sys.stderr)


def test_a_new_attempt_phase_by_phase_with_a_refusal_and_a_rehearsal_then_decommission_and_a_second_run(migration: Migration) -> None:
    """Runs after the test above, on its platform and legacy server."""
    m = migration
    legacy_name = m.legacy_dns_name()
    assert m.www()["target"] == legacy_name, "the first attempt and its rollback run first"
    # What docs/migration.md asks before a new attempt: an empty RDS database, the publication dropped.
    assert m.prepare_new_attempt()

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
    assert m.www()["target"] == legacy_name

    m.legacy.start_writer(rate=5)  # the same writer: it kept writing through the rollback
    m.wait_for_writes(len(m.acknowledged()) + 20)
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
    for secret in m.secrets():
        for text in (upto.stdout, cutover.stdout):
            assert secret not in text

    final = m.migrate(["watch", "decommission"])
    assert final.rc == 0, final.explain()
    m.legacy.stop_writer()
    acknowledged = m.acknowledged()
    with m.target() as dst:
        # every write the app ever acknowledged: before the first attempt, on RDS during it, after its rollback, and now
        assert len(acknowledged) > 60 and m.missing(dst, acknowledged) == []
        assert dst.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0] == 0  # the fallback slot released
    assert m.temporary_rules() == {"in": [], "out": []}  # decommission closed them again
    assert not m.legacy.app_running()  # the legacy app is stopped
    [snapshot] = m.snapshots()
    assert snapshot["VolumeId"] == m.legacy.find_instance()["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    assert m.www() == {"target": f"{m.prefix}.us-east-1.elasticbeanstalk.com", "ttl": 300}  # the normal TTL back
    _answers_on_rds_through_the_new_path_and_www(m)

    again = m.migrate()
    assert again.rc == 0 and again.changed == 0, again.changed_tasks()

    # After decommission RDS is the database of record for good: a rollback is refused.
    refused = m.migrate(["rollback"])
    assert refused.rc != 0 and "no fallback replication" in refused.explain()
    print(f"test_migrate: the new attempt done {time.monotonic() - m.started:.0f} s after the module started", file=sys.stderr)


DRILL = ROOT / "playbooks/dr_drill.yml"


def test_dr_drill_restores_the_snapshot_and_measures_rto_and_rpo(migration: Migration, tmp_path: Path) -> None:
    """After the migration RDS is the live database: drill its newest snapshot.

    A canary and some events are written, a snapshot taken, more events written: the drill's copy has the canary and
    the events up to the snapshot, not the later ones; RTO and RPO are measured; nothing of the drill is left.
    """
    m = migration
    rds = m.stack.client("rds")
    identifier = f"{m.prefix}-db"
    with m.target() as live:
        live.execute("CREATE SCHEMA IF NOT EXISTS fastier_dr")
        live.execute("CREATE TABLE IF NOT EXISTS fastier_dr.canary (id bigserial PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT now(), note text)")
        live.execute("INSERT INTO fastier_dr.canary (note) VALUES ('before the snapshot')")
        live.execute("CREATE TABLE drill_events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT clock_timestamp())")
        live.execute("INSERT INTO drill_events (created_at) SELECT clock_timestamp() - interval '1 minute' FROM generate_series(1, 50)")
    rds.create_db_snapshot(DBSnapshotIdentifier=f"{identifier}-drill-base", DBInstanceIdentifier=identifier)
    with m.target() as live:
        live.execute("INSERT INTO drill_events (created_at) SELECT clock_timestamp() + interval '10 seconds' FROM generate_series(1, 7)")

    extra = {
        **m.extra,
        "dr_drill_key_tables": [{"name": "drill_events", "timestamp_column": "created_at"}],
        "dr_drill_report_dir": str(tmp_path),
        "dr_drill_access_cidrs": ["127.0.0.1/32"],
    }
    drill = run_playbook(m.env(), DRILL, extra)
    assert drill.rc == 0, drill.explain()
    out = drill.outputs("dr_drill_outputs")
    assert out["verified"] is True and out["recovery_point"]["snapshot"] == f"{identifier}-drill-base"
    [events] = out["tables"]
    assert events["restored_rows"] == 50 and events["restored_after_recovery_point"] == 0  # the 7 later rows are not in the copy
    assert out["canary"]["verified"] is True
    assert float(out["rto_s"]) > 0 and float(out["rpo_s"]) > 0
    report = json.loads(Path(out["report_json"]).read_text())
    assert report["rpo_s"] == out["rpo_s"] and "RPO" in Path(out["report_md"]).read_text()
    # Nothing of the drill is left; the next drill's canary is on the live database.
    assert rds.describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": [f"{m.prefix}-dr-drill"]}])["DBInstances"] == []
    groups = m.stack.client("ec2").describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{m.prefix}-dr-drill"]}])["SecurityGroups"]
    assert groups == []
    with m.target() as live:
        assert live.execute("SELECT count(*) FROM fastier_dr.canary").fetchone()[0] == 2
    for secret in m.secrets():
        assert secret not in drill.stdout and secret not in Path(out["report_json"]).read_text()
