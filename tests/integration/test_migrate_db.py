"""playbooks/migrate.yml moves a live database into the database role's RDS instance.

The network and database tiers of ``playbooks/site.yml`` are converged for a
unique ``platform_env``; the legacy server is a PostgreSQL cluster of this test
(``wal_level=logical``) with the cut-over data set, given to the inventory's
``legacy`` host as ``legacy_db``. A writer keeps committing on it while the
phases run one by one, the way a user runs them (tags). What is checked is what
a user cares about, by independent queries and boto3 reads:

* a cut-over before the replication is refused and changes nothing; a
  rehearsal (``--check``) changes nothing on either server or in AWS;
* ``replicate`` opens the RDS security group to the legacy server (in to the
  database port, out to the source port, described as temporary) and leaves
  replication running;
* ``cutover`` fences writes for a measured time, and afterwards every write
  the writer committed on the legacy database is on RDS and no sequence is
  behind; no password reaches the output or the report;
* after the cut-over the application writes to RDS, and ``rollback`` brings
  every one of those writes back to the legacy database (fallback
  replication), makes it writable and RDS read-only, and closes the rules;
* a new attempt with every phase in one run ends with the rules closed and
  the fallback replication released (decommission), a re-run changes
  nothing, and a rollback is then refused.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from local_aws.postgres import Cluster, free_port
from tests.integration import pgdata
from tests.playbooks import ROOT, PlaybookRun, ensure_collection, run_playbook

SITE = ROOT / "playbooks/site.yml"
MIGRATE = ROOT / "playbooks/migrate.yml"
TEMPORARY = "TEMPORARY migration source (playbooks/migrate.yml)"


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


@dataclass
class Migration:
    stack: Any
    legacy: Cluster
    extra: dict[str, Any]
    report_dir: Path

    @property
    def prefix(self) -> str:
        return f"fastier-{self.extra['platform_env']}"

    def migrate(self, tags: list[str] | None = None, check: bool = False) -> PlaybookRun:
        return run_playbook(self.stack.env(), MIGRATE, self.extra, tags=tags, check=check)

    def db_group(self) -> dict[str, Any]:
        ec2 = self.stack.client("ec2")
        [group] = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{self.prefix}-db"]}])["SecurityGroups"]
        return group

    def temporary_rules(self) -> dict[str, list[tuple[str, int]]]:
        group = self.db_group()
        return {
            direction: sorted((r["CidrIp"], perm["FromPort"]) for perm in group[key] for r in perm.get("IpRanges", []) if r.get("Description") == TEMPORARY)
            for direction, key in (("in", "IpPermissions"), ("out", "IpPermissionsEgress"))
        }

    def target(self) -> psycopg.Connection:
        rds, sm = self.stack.client("rds"), self.stack.client("secretsmanager")
        [db] = rds.describe_db_instances(DBInstanceIdentifier=f"{self.prefix}-db")["DBInstances"]
        secret = json.loads(sm.get_secret_value(SecretId=f"{self.prefix}/database/master")["SecretString"])
        return psycopg.connect(
            host=db["Endpoint"]["Address"],
            port=db["Endpoint"]["Port"],
            dbname=db["DBName"],
            user=secret["username"],
            password=secret["password"],
            autocommit=True,
        )

    def target_conninfo(self) -> dict[str, Any]:
        with self.target() as conn:
            info = conn.info
            return {"host": info.host, "port": info.port, "dbname": info.dbname, "user": info.user, "password": info.password}

    def recreate_target_database(self) -> None:
        info = self.target_conninfo()
        with psycopg.connect(**{**info, "dbname": "postgres"}, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{info["dbname"]}"')
            conn.execute(f'CREATE DATABASE "{info["dbname"]}" OWNER "{info["user"]}"')

    def secrets(self) -> list[str]:
        sm = self.stack.client("secretsmanager")
        return [self.legacy.superuser_password, json.loads(sm.get_secret_value(SecretId=f"{self.prefix}/database/master")["SecretString"])["password"]]


@pytest.fixture(scope="module")
def migration(stack) -> Iterator[Migration]:
    root = Path(tempfile.mkdtemp(prefix="migrate-legacy-"))
    root.chmod(0o755)
    legacy = Cluster("legacy", root, free_port(), logical=True)
    legacy.start()
    env = f"mg{uuid.uuid4().hex[:6]}"
    port = free_port()
    info = legacy.conninfo("fastier")
    extra = {
        "platform_env": env,
        "network_db_port": port,
        "database_port": port,
        # Extra vars win over the inventory's legacy host: this test's cluster.
        "legacy_db": {"host": info["host"], "port": info["port"], "dbname": "fastier", "user": "postgres", "password": info["password"], "sslmode": "disable"},
        "migrate_report_dir": str(root / "reports"),
        "db_cutover_sync_timeout_s": 120,
    }
    try:
        with legacy.connect() as conn:
            conn.execute("CREATE DATABASE fastier")
        with psycopg.connect(**info, autocommit=True) as conn:
            pgdata.build(conn, rows=3_000)
        current = Migration(stack, legacy, extra, root / "reports")
        converge = run_playbook(stack.env(), SITE, extra, tags=["network", "database"])
        assert converge.rc == 0, converge.explain()
        yield current
    finally:
        stack.drop_db_instance(f"fastier-{env}-db")
        legacy.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_phases_move_every_committed_write_and_close_the_access_again(migration: Migration) -> None:
    m = migration
    # The cut-over continues a replication: before one runs it is refused, and nothing changes.
    early = m.migrate(["cutover"])
    assert early.rc != 0 and "Run the replicate phase first" in early.explain(), early.explain()
    assert m.temporary_rules() == {"in": [], "out": []}

    # A rehearsal of every phase changes nothing anywhere.
    rehearsal = m.migrate(check=True)
    assert rehearsal.rc == 0, rehearsal.explain()
    assert m.temporary_rules() == {"in": [], "out": []}
    with m.legacy.connect("fastier") as src, m.target() as dst:
        assert src.execute("SELECT count(*) FROM pg_publication").fetchone()[0] == 0
        assert dst.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'shop'").fetchone()[0] == 0

    writer = pgdata.Writer(m.legacy.conninfo("fastier")).start()
    try:
        writer.wait_for(20)
        replicate = m.migrate(["replicate"])
        assert replicate.rc == 0, replicate.explain()
        assert replicate.outputs("db_cutover_outputs")["state"] == "syncing"
        # In to the RDS port from the legacy server, out to the legacy port for the subscription.
        assert m.temporary_rules() == {"in": [("127.0.0.1/32", m.extra["database_port"])], "out": [("127.0.0.1/32", m.legacy.port)]}

        # (A converge of the network meanwhile keeps them: tests/integration/test_role_network.py.)
        writer.wait_for(writer.committed + 50)
        cutover = m.migrate(["cutover"])
    finally:
        writer.stop()
    assert cutover.rc == 0, cutover.explain()
    outputs = cutover.outputs("db_cutover_outputs")
    assert outputs["state"] == "done" and 0 < float(outputs["write_downtime_s"]) < 30
    assert int(outputs["tables_verified"]) == int(outputs["tables"]) > 0

    # Independent of the module's own verification: every committed write is on RDS.
    with m.legacy.connect("fastier") as src, m.target() as dst:
        assert writer.committed > 50, writer.errors[-3:]
        assert pgdata.missing_writes(dst, writer) == []
        assert pgdata.sequences_behind(src, dst) == []
        assert pgdata.table_counts(src) == pgdata.table_counts(dst)

    report = (m.report_dir / "fastier-cutover.json").read_text()
    assert json.loads(report)["state"] == "done"
    for secret in m.secrets():
        for text in (report, replicate.stdout, cutover.stdout):
            assert secret not in text

    # The application writes to RDS now; a rollback before decommission brings every one of those writes back.
    app = pgdata.Writer(m.target_conninfo()).start()
    try:
        app.wait_for(40)
        rollback = m.migrate(["rollback"])
    finally:
        app.stop()
    assert rollback.rc == 0, rollback.explain()
    assert rollback.outputs("db_cutover_outputs")["state"] == "rolled_back"
    with m.legacy.connect("fastier") as src, m.target() as dst:
        assert app.committed > 40, app.errors[-3:]
        assert pgdata.missing_writes(src, app) == []
        assert pgdata.sequences_behind(dst, src) == []
        src.execute("INSERT INTO audit.log_lines (line) VALUES ('the legacy database is writable again')")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            dst.execute("INSERT INTO audit.log_lines (line) VALUES ('RDS is the old primary now')")
    assert m.temporary_rules() == {"in": [], "out": []}

    # A new attempt, as docs/migration.md says: an empty RDS database, the old record dropped; every phase in one run.
    m.recreate_target_database()
    with m.legacy.connect("fastier") as src:
        src.execute("DROP PUBLICATION fastier_cutover_fastier")
    everything = m.migrate()
    assert everything.rc == 0, everything.explain()
    assert everything.outputs("db_cutover_outputs")["state"] == "done"
    assert m.temporary_rules() == {"in": [], "out": []}  # decommission closed them again
    with m.legacy.connect("fastier") as src, m.target() as dst:
        assert pgdata.table_counts(src) == pgdata.table_counts(dst)
        assert dst.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0] == 0  # the fallback slot released
    again = m.migrate()
    assert again.rc == 0 and again.changed == 0, again.changed_tasks()

    # After decommission RDS is the database of record for good: a rollback is refused.
    refused = m.migrate(["rollback"])
    assert refused.rc != 0 and "no fallback replication" in refused.explain()


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
    drill = run_playbook(m.stack.env(), DRILL, extra)
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
