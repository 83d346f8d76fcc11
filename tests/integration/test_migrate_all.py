"""playbooks/migrate.yml, every phase in one run from nothing, moves the live sample app off the legacy server.

The legacy server: ``migration_kit.legacy_server`` (no platform yet). A writer
keeps writing through the app's HTTP API the whole time. One run of
migrate.yml - bundle, provision (site.yml), replicate, deploy, ttl, cutover,
watch, decommission - ends with every write the app acknowledged on RDS
(checked by a query of this test), the app answering through the new path
and through www (the local AWS's front door, where Route 53 sends it), the
legacy app stopped, its root volume snapshotted, the temporary rules closed,
the normal TTL back; a second run changes nothing and a rollback is then
refused. The converged platform then serves a DR drill.

Phase by phase, refusals, a rehearsal and a rollback: ``test_migrate_db.py``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.migration_kit import Migration, get_json, legacy_server
from tests.playbooks import ROOT, ensure_collection, run_playbook


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


@pytest.fixture(scope="module")
def migration(stack) -> Iterator[Migration]:
    with legacy_server(stack, provision=False) as current:
        yield current


def test_every_phase_in_one_run_from_nothing_then_a_second_run_changes_nothing(migration: Migration) -> None:
    m = migration
    m.legacy.start_writer(rate=5)
    m.wait_for_writes(20)
    everything = m.migrate()
    assert everything.rc == 0, everything.explain()
    m.legacy.stop_writer()
    assert everything.outputs("db_cutover_outputs")["state"] == "done"
    acknowledged = m.acknowledged()
    with m.target() as dst:
        assert len(acknowledged) > 60 and m.missing(dst, acknowledged) == []  # every write the app acknowledged
        assert dst.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0] == 0  # the fallback slot released
    assert any(r["database"] == m.rds_address() for r in acknowledged)  # the legacy app wrote to RDS after the hand-over
    assert m.temporary_rules() == {"in": [], "out": []}  # decommission closed them again
    assert not m.legacy.app_running()  # the legacy app is stopped
    [snapshot] = m.snapshots()
    assert snapshot["VolumeId"] == m.legacy.find_instance()["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    assert m.www() == {"target": f"{m.prefix}.us-east-1.elasticbeanstalk.com", "ttl": 300}  # the normal TTL back
    status, version = get_json(f"{m.new_path()}/version")
    assert status == 200 and version["environment"] == m.live()["EnvironmentName"] and version["database"] == m.rds_address()
    # What users reach: www, through the local AWS's front door (where Route 53 sends it).
    status, door = m.stack.control("GET", f"/_local/frontdoor/records/www.{m.domain}")
    assert status == 200, door
    status, version = get_json(f"{door['url'].rstrip('/')}/version")
    assert status == 200 and version["environment"] == m.live()["EnvironmentName"] and version["database"] == m.rds_address()

    again = m.migrate()
    assert again.rc == 0 and again.changed == 0, again.changed_tasks()

    # After decommission RDS is the database of record for good: a rollback is refused.
    refused = m.migrate(["rollback"])
    assert refused.rc != 0 and "no fallback replication" in refused.explain()
    print(f"test_migrate_all: migration test done {time.monotonic() - m.started:.0f} s after the module started", file=sys.stderr)


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
