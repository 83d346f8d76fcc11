"""The legacy server and the migration of the tests of playbooks/migrate.yml.

The legacy server is the test's own: a PostgreSQL cluster (``wal_level=logical``)
with the sample app's database, migrated and seeded, the sample app under
gunicorn on a loopback port reading its env file (``tools/legacy.py``, as
``make demo`` runs it), and an EC2 instance record (t3.medium) in the local
AWS. The platform is provisioned by the migration itself (its run of every
phase: site.yml with the tiers the migration needs - the edge and operations tiers are skipped with
ANSIBLE_SKIP_TAGS to keep the suite short). What the tests check is read by
queries and HTTP requests of their own (:class:`Migration`).

``test_migrate.py`` uses it: every phase in one run from nothing (decommission
left for later) and a rollback, then a new attempt phase by phase (a refusal,
a rehearsal, decommission, a second run), then a DR drill.
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from local_aws.postgres import Cluster, free_port
from tests.playbooks import ROOT, PlaybookRun, run_playbook
from tools.legacy import APP_DB, SERVICE, Legacy

MIGRATE = ROOT / "playbooks/migrate.yml"
TEMPORARY = "TEMPORARY migration source (playbooks/migrate.yml)"
# The tiers of site.yml the migration does not need (edge, pipeline, operations): skipped to keep the suite short.
SKIP_TIERS = "cdn,pipeline,observability,backup"


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
    def domain(self) -> str:
        """The test's own DNS domain: the zone of the local inventory (fastier.example) belongs to molecule's default."""
        return str(self.extra["dns_domain"])

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

    def prepare_new_attempt(self) -> list[str]:
        """What docs/migration.md asks before a new attempt after a rollback, done with SQL as a user would: an empty
        RDS database (``DROP DATABASE ... WITH (FORCE)``: the Elastic Beanstalk environment holds connections to it;
        created again with the same owner) and ``DROP PUBLICATION fastier_cutover_<db>`` on the legacy database.
        Returns the statements it ran (none when no attempt was made before)."""
        ran = []
        with self.cluster.connect(APP_DB) as src:
            for (name,) in src.execute("SELECT pubname FROM pg_publication WHERE pubname LIKE 'fastier\\_cutover\\_%'").fetchall():
                statement = sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(name))
                src.execute(statement)
                ran.append(statement.as_string(src))
        info = self.rds()
        with self.target() as dst:
            tables = dst.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
        if tables:
            with psycopg.connect(**{**info, "dbname": "postgres"}, autocommit=True) as admin:
                [owner] = admin.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (info["dbname"],)).fetchone()
                for statement in (
                    sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(info["dbname"])),
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(info["dbname"]), sql.Identifier(owner)),
                ):
                    admin.execute(statement)
                    ran.append(statement.as_string(admin))
        print(f"new attempt prepared: {ran}", file=sys.stderr)
        return ran

    def rds_address(self) -> str:
        info = self.rds()
        return f"{info['host']}:{info['port']}/{info['dbname']}"

    def www(self) -> dict[str, Any]:
        r53 = self.stack.client("route53")
        zones = [z for z in r53.list_hosted_zones()["HostedZones"] if z["Name"] == f"{self.domain}." and not z["Config"]["PrivateZone"]]
        records = [r for z in zones for r in r53.list_resource_record_sets(HostedZoneId=z["Id"])["ResourceRecordSets"]]
        [www] = [r for r in records if r["Name"] == f"www.{self.domain}." and r["Type"] == "CNAME"]
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


@contextmanager
def legacy_server(stack: Any) -> Iterator[Migration]:
    """A legacy server of its own (cluster, sample app, EC2 record), no platform yet (migrate.yml provisions it);
    everything it started is stopped afterwards."""
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
        "dns_domain": f"{env}.fastier.example",
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
        yield Migration(stack, cluster, legacy, extra, root, started)
    finally:
        legacy.stop_writer()
        legacy.service("stop", check=False)
        stack.drop_db_instance(f"fastier-{env}-db")
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        print(f"legacy server: module wall time {time.monotonic() - started:.0f} s", file=sys.stderr)
