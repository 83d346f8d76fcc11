"""playbooks/migrate.yml moves the live sample app off the legacy server, end to end.

The legacy server is this test's: a PostgreSQL cluster (``wal_level=logical``)
with the sample app's database, migrated and seeded, the sample app under
gunicorn on a loopback port reading its env file (``tools/legacy.py``, as
``make demo`` runs it), and an EC2 instance record (t3.medium) in the local
AWS. The platform is provisioned by the migration itself (``--tags
bundle,provision``: site.yml with the tiers the migration needs - the edge and
operations tiers are skipped with ANSIBLE_SKIP_TAGS to keep the suite
short). A writer keeps writing through the app's HTTP API from before the
replication to the end. What is checked is what a user cares about, by
queries and HTTP requests of this test:

* a cut-over before the replication is refused and changes nothing; a
  rehearsal (``--check``) changes nothing on either server, in AWS or DNS;
* bundle -> provision -> replicate -> deploy -> ttl: the RDS security group is
  open to the legacy server, replication runs, the Elastic Beanstalk
  environment runs the bundle on RDS and says so through its load balancer,
  www still points at the legacy server with the low TTL;
* ``cutover`` fences writes for a measured time; the legacy app is repointed
  at RDS inside the fence and every write it acknowledged is on RDS; www
  points at Elastic Beanstalk; no password reaches the output or the report;
* ``rollback`` brings every write made on RDS back to the legacy database,
  repoints the legacy app at it, points www back and closes the rules;
* a new attempt with every phase in one run (provision skipped: the platform
  exists; watch and decommission included)
  ends with every acknowledged write on RDS, the app answering through the
  new path, the legacy app stopped, its root volume snapshotted, the rules
  closed; a second run changes nothing and a rollback is then refused.

The module's fixture is then the converged platform of the DR drill test.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from local_aws.postgres import Cluster, free_port
from tests.playbooks import ROOT, PlaybookRun, ensure_collection, run_playbook
from tools.legacy import APP_DB, SERVICE, Legacy

MIGRATE = ROOT / "playbooks/migrate.yml"
TEMPORARY = "TEMPORARY migration source (playbooks/migrate.yml)"
# The tiers of site.yml the migration does not need (edge, pipeline, operations): skipped to keep the suite short.
SKIP_TIERS = "cdn,pipeline,observability,backup"


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


def get_json(url: str, timeout: float = 10) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, None


@dataclass
class Migration:
    stack: Any
    cluster: Cluster
    legacy: Legacy
    extra: dict[str, Any]
    root: Path
    started: float

    @property
    def prefix(self) -> str:
        return f"fastier-{self.extra['platform_env']}"

    @property
    def report_dir(self) -> Path:
        return self.root / "reports"

    def env(self) -> dict[str, str]:
        return {**self.stack.env(), "ANSIBLE_SKIP_TAGS": SKIP_TIERS}

    def migrate(self, tags: list[str] | None = None, check: bool = False, skip: str = "") -> PlaybookRun:
        env = self.env()
        if skip:
            env["ANSIBLE_SKIP_TAGS"] = f"{SKIP_TIERS},{skip}"
        started = time.monotonic()
        run = run_playbook(env, MIGRATE, self.extra, tags=tags, check=check, timeout=1500)
        print(f"migrate.yml {'--check ' if check else ''}{','.join(tags or ['(all)'])}: rc={run.rc} in {time.monotonic() - started:.0f} s", file=sys.stderr)
        return run

    # -- AWS, read with boto3 ---------------------------------------------------------------------------------------
    def temporary_rules(self) -> dict[str, list[tuple[str, int]]]:
        ec2 = self.stack.client("ec2")
        [group] = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{self.prefix}-db"]}])["SecurityGroups"]
        return {
            direction: sorted((r["CidrIp"], perm["FromPort"]) for perm in group[key] for r in perm.get("IpRanges", []) if r.get("Description") == TEMPORARY)
            for direction, key in (("in", "IpPermissions"), ("out", "IpPermissionsEgress"))
        }

    def rds(self) -> dict[str, Any]:
        rds, sm = self.stack.client("rds"), self.stack.client("secretsmanager")
        [db] = rds.describe_db_instances(DBInstanceIdentifier=f"{self.prefix}-db")["DBInstances"]
        secret = json.loads(sm.get_secret_value(SecretId=f"{self.prefix}/database/master")["SecretString"])
        endpoint = db["Endpoint"]
        return {"host": endpoint["Address"], "port": endpoint["Port"], "dbname": db["DBName"], "user": secret["username"], "password": secret["password"]}

    def target(self) -> psycopg.Connection:
        return psycopg.connect(**self.rds(), autocommit=True)

    def source(self) -> psycopg.Connection:
        return psycopg.connect(**self.legacy.app_conninfo(), autocommit=True)

    def rds_address(self) -> str:
        info = self.rds()
        return f"{info['host']}:{info['port']}/{info['dbname']}"

    def recreate_target_database(self) -> None:
        info = self.rds()
        with psycopg.connect(**{**info, "dbname": "postgres"}, autocommit=True) as conn:
            # WITH (FORCE): the Elastic Beanstalk environment's app keeps connections to it.
            conn.execute(f'DROP DATABASE "{info["dbname"]}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{info["dbname"]}" OWNER "{info["user"]}"')

    def www(self) -> dict[str, Any]:
        r53 = self.stack.client("route53")
        zones = [z for z in r53.list_hosted_zones()["HostedZones"] if z["Name"] == "fastier.example." and not z["Config"]["PrivateZone"]]
        records = [r for z in zones for r in r53.list_resource_record_sets(HostedZoneId=z["Id"])["ResourceRecordSets"]]
        [www] = [r for r in records if r["Name"] == "www.fastier.example." and r["Type"] == "CNAME"]
        return {"target": www["ResourceRecords"][0]["Value"].rstrip("."), "ttl": www["TTL"]}

    def environments(self) -> dict[str, dict[str, Any]]:
        eb = self.stack.client("elasticbeanstalk")
        envs = eb.describe_environments(ApplicationName=self.prefix, IncludeDeleted=False)["Environments"]
        return {e["EnvironmentName"]: e for e in envs}

    def live(self) -> dict[str, Any]:
        [live] = [e for e in self.environments().values() if e.get("CNAME", "").startswith(f"{self.prefix}.")]
        return live

    def new_path(self) -> str:
        """The live environment's load balancer (the local AWS's control interface)."""
        status, body = self.stack.control("GET", f"/_local/eb/environments/{self.live()['EnvironmentName']}/endpoint")
        assert status == 200, body
        return body["url"]

    def legacy_dns_name(self) -> str:
        return self.legacy.find_instance()["PublicDnsName"]

    def snapshots(self) -> list[dict[str, Any]]:
        return self.stack.client("ec2").describe_snapshots(Filters=[{"Name": "tag:fastier:migration", "Values": [self.prefix]}])["Snapshots"]

    def secrets(self) -> list[str]:
        return [self.cluster.superuser_password, self.legacy.app_password(), self.rds()["password"]]

    # -- the writer's acknowledged writes, checked with SQL of this test ---------------------------------------------
    def acknowledged(self) -> list[dict[str, Any]]:
        return [r for r in self.legacy.writer_records() if r.get("op") == "create" and r.get("ok")]

    def missing(self, conn: psycopg.Connection, records: list[dict[str, Any]]) -> list[str]:
        refs = [r["client_ref"] for r in records]
        rows = conn.execute("SELECT client_ref::text, id, total_cents FROM orders WHERE client_ref = ANY(%s::uuid[])", (refs,)).fetchall()
        stored = {ref: (oid, total) for ref, oid, total in rows}
        return [r["client_ref"] for r in records if stored.get(r["client_ref"]) != (r["id"], r["total_cents"])]

    def wait_for_writes(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.acknowledged()) >= count:
                return
            time.sleep(0.5)
        raise AssertionError(f"the writer acknowledged fewer than {count} writes in {timeout:.0f}s; last: {self.legacy.writer_records()[-3:]}")


@pytest.fixture(scope="module")
def migration(stack) -> Iterator[Migration]:
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="migrate-legacy-"))
    root.chmod(0o755)  # the postgres OS user must reach its cluster folder
    cluster = Cluster("legacy", root, free_port(), logical=True)
    cluster.start()
    env = f"mg{uuid.uuid4().hex[:6]}"
    port = free_port()
    admin = cluster.conninfo()
    legacy = Legacy(
        state_dir=root / "legacy",
        app_port=free_port(),
        admin={k: admin[k] for k in ("host", "port", "user", "password")},
        endpoint=stack.endpoint,
        region=stack.region,
        instance_name=f"fastier-{env}-legacy",
    )
    python = sys.executable
    service = f"{python} {SERVICE}"
    run_dir = legacy.run_dir
    extra = {
        "platform_env": env,
        "network_db_port": port,
        "database_port": port,
        # Extra vars win over the inventory's legacy host: this test's legacy server.
        "legacy_db": {"host": admin["host"], "port": admin["port"], "dbname": APP_DB, "user": "postgres", "password": admin["password"], "sslmode": "disable"},
        "legacy_app": {
            "dir": str(SERVICE.parent),
            "python": python,
            "url": legacy.url,
            "env_file": str(legacy.env_file),
            "service": {
                "status": f"{service} status --dir {run_dir}",
                "stop": f"{service} stop --dir {run_dir} --timeout 30",
                "repoint": f"{service} repoint --dir {run_dir} --env-from {{env_from}} --timeout 60",
            },
        },
        "legacy_instance_name": legacy.instance_name,
        "migrate_report_dir": str(root / "reports"),
        "app_bundle_build_dir": str(root / "bundles"),
        "db_cutover_sync_timeout_s": 180,
        "migrate_watch_seconds": 4,
        "migrate_watch_interval": 1,
    }
    try:
        legacy.up(customers=300, orders=3000, writer_rate=None)
        current = Migration(stack, cluster, legacy, extra, root, started)
        provision = current.migrate(["bundle", "provision"])
        assert provision.rc == 0, provision.explain()
        yield current
    finally:
        legacy.stop_writer()
        legacy.service("stop", check=False)
        stack.drop_db_instance(f"fastier-{env}-db")
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        print(f"test_migrate_db: module wall time {time.monotonic() - started:.0f} s", file=sys.stderr)


def test_the_app_moves_off_the_legacy_server_without_losing_a_write(migration: Migration) -> None:
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

    # A new attempt, as docs/migration.md says (an empty RDS database, the old record dropped), every phase in one run.
    m.recreate_target_database()
    with m.cluster.connect(APP_DB) as src:  # the migration user (a superuser here) owns it
        src.execute("DROP PUBLICATION fastier_cutover_fastier")
    everything = m.migrate(skip="provision")  # (the platform exists; the next run includes provision)
    assert everything.rc == 0, everything.explain()
    m.legacy.stop_writer()
    assert everything.outputs("db_cutover_outputs")["state"] == "done"
    acknowledged = m.acknowledged()
    with m.target() as dst:
        assert len(acknowledged) > 60 and m.missing(dst, acknowledged) == []
        assert dst.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0] == 0  # the fallback slot released
    assert m.temporary_rules() == {"in": [], "out": []}  # decommission closed them again
    assert not m.legacy.app_running()  # the legacy app is stopped
    [snapshot] = m.snapshots()
    assert snapshot["VolumeId"] == m.legacy.find_instance()["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    assert m.www() == {"target": f"{m.prefix}.us-east-1.elasticbeanstalk.com", "ttl": 300}  # the normal TTL back
    status, version = get_json(f"{m.new_path()}/version")
    assert status == 200 and version["environment"] == m.live()["EnvironmentName"] and version["database"] == m.rds_address()
    # What users reach: www, through the local AWS's front door (where Route 53 sends it).
    status, door = m.stack.control("GET", "/_local/frontdoor/records/www.fastier.example")
    assert status == 200, door
    status, version = get_json(f"{door['url'].rstrip('/')}/version")
    assert status == 200 and version["environment"] == m.live()["EnvironmentName"] and version["database"] == m.rds_address()

    again = m.migrate()
    assert again.rc == 0 and again.changed == 0, again.changed_tasks()

    # After decommission RDS is the database of record for good: a rollback is refused.
    refused = m.migrate(["rollback"])
    assert refused.rc != 0 and "no fallback replication" in refused.explain()
    print(f"test_migrate_db: migration test done {time.monotonic() - m.started:.0f} s after the module started", file=sys.stderr)


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
