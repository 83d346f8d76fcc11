"""The "legacy server" of the local stack: Fastier's t3.medium, on this machine.

    python -m tools.legacy up      [--fresh] [--customers N] [--orders M] [--writer-rate R | --no-writer]
    python -m tools.legacy status
    python -m tools.legacy writer start [--rate R] | writer stop
    python -m tools.legacy down
    python -m tools.legacy summary --report-dir DIR [--prefix fastier-local]

``up`` (idempotent) makes what the customer's server has today, against the
local "legacy" PostgreSQL of ``python -m local_aws up`` (port
``LOCAL_PG_LEGACY_PORT``, superuser password in its mode-600 file):

* the app's own role and database (``fastier``), migrated and seeded;
* the app's env file (``<state>/legacy/app.env``, mode 600: ``DATABASE_URL``);
* the sample app under gunicorn on ``127.0.0.1:<port>`` (``legacy_service.py``:
  pid file, logs and ``service.json`` in ``<state>/legacy/run``), with the
  instance's environment (the local AWS endpoint and placeholder credentials,
  as an instance profile would give);
* a background writer through the app's HTTP API (``writes.jsonl``, pid file);
* the EC2 instance record in the local AWS: a t3.medium tagged as the legacy
  server, with an encrypted root volume (decommissioning snapshots it).

``down`` stops the writer and the app (the database and the instance record go
with the local AWS). ``status`` prints JSON. ``summary`` prints the figures of
a migration that ran (``make demo``'s closing summary): the live URL and what
answers there, rows moved and the measured write fence (from the cut-over's
JSON report), the writer's acknowledged and failed writes, DNS, the legacy
server's state and its final snapshot - all read now, none of them constants. Everything is under
``<LOCAL_AWS_STATE_DIR>/legacy`` (``.local/legacy``); ``state.json`` there
records what ``up`` made. The inventory ``inventories/local`` (group
``legacy``) names the same paths, port and instance.

Tests use :class:`Legacy` with their own database and port.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "examples" / "fastier-app"
SERVICE = APP_DIR / "legacy_service.py"
APP_USER = "fastier"
APP_DB = "fastier"
INSTANCE_NAME = "fastier-local-legacy"
DEFAULT_APP_PORT = 18080
# Placeholders the local AWS accepts (moto ignores credentials): not secrets.
LOCAL_ACCESS_KEY = "local-access-key"
LOCAL_SECRET_KEY = "local-secret-key"  # noqa: S105 - a placeholder moto ignores


class LegacyError(Exception):
    pass


def say(message: str) -> None:
    print(f"legacy: {message}", flush=True)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


@dataclass
class Legacy:
    """The legacy server: its database (reached as ``admin``, a superuser), the app, the writer and the EC2 record."""

    state_dir: Path
    app_port: int
    admin: dict[str, Any]  # host, port, user, password of a superuser of the legacy PostgreSQL
    endpoint: str | None = None  # the local AWS (None: no EC2 record, no AWS for the app)
    region: str = "us-east-1"
    instance_name: str = INSTANCE_NAME
    workers: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)

    # -- paths -------------------------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def env_file(self) -> Path:
        return self.state_dir / "app.env"

    @property
    def password_file(self) -> Path:
        return self.state_dir / "app-db.pw"

    @property
    def writer_log(self) -> Path:
        return self.state_dir / "writes.jsonl"

    @property
    def writer_pid_file(self) -> Path:
        return self.state_dir / "writer.pid"

    @property
    def writer_out(self) -> Path:
        return self.state_dir / "writer.out"

    @property
    def record_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    def record(self) -> dict[str, Any]:
        try:
            return json.loads(self.record_file.read_text())
        except (OSError, ValueError):
            return {}

    def _save(self, **values: Any) -> None:
        data = {**self.record(), **values}
        self.record_file.write_text(json.dumps(data, indent=2) + "\n")

    # -- the database --------------------------------------------------------------------------------------
    def app_password(self) -> str:
        if not self.password_file.exists():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(24))
        return self.password_file.read_text().strip()

    def app_conninfo(self) -> dict[str, Any]:
        return {"host": self.admin["host"], "port": int(self.admin["port"]), "dbname": APP_DB, "user": APP_USER, "password": self.app_password()}

    def ensure_database(self) -> bool:
        """The app's role (LOGIN, its own password) and database (owned by it); True when made now."""
        import psycopg
        from psycopg import sql

        made = False
        admin = {k: self.admin[k] for k in ("host", "port", "user", "password")}
        with psycopg.connect(**admin, dbname="postgres", autocommit=True, connect_timeout=10) as conn:
            password = sql.Literal(self.app_password())
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_USER,)).fetchone():
                conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(APP_USER), password))
            else:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(APP_USER), password))
                made = True
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (APP_DB,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(APP_DB), sql.Identifier(APP_USER)))
                made = True
        return made

    def reset(self) -> list[str]:
        """Start again from nothing (``up --fresh``): a previous demo left this database migrated (read-only, its
        replication objects and the migration's record in it) and the env file pointing at RDS."""
        import psycopg
        from psycopg import sql

        done = []
        if self.app_running():
            self.stop_writer()
            self.stop_app()
            done.append("app stopped")
        admin = {k: self.admin[k] for k in ("host", "port", "user", "password")}
        with psycopg.connect(**admin, dbname="postgres", autocommit=True, connect_timeout=10) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (APP_DB,)).fetchone():
                with psycopg.connect(**admin, dbname=APP_DB, autocommit=True, connect_timeout=10) as app_db:
                    app_db.execute("SET default_transaction_read_only = off")  # a cut-over left the database read-only
                    for (name,) in app_db.execute(
                        "SELECT subname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = %s", (APP_DB,)
                    ):
                        ident = sql.Identifier(name)
                        app_db.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident))
                        app_db.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(ident))
                        app_db.execute(sql.SQL("DROP SUBSCRIPTION {}").format(ident))
                conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s AND NOT active", (APP_DB,))
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(APP_DB)))
                done.append(f"database {APP_DB} dropped")
        for path in (self.env_file, self.env_file.with_name(self.env_file.name + ".rds"), self.env_file.with_name(self.env_file.name + ".legacy")):
            path.unlink(missing_ok=True)
        for path in (self.writer_log, self.writer_out, self.record_file):
            path.unlink(missing_ok=True)
        return done

    def database_url(self) -> str:
        info = self.app_conninfo()
        return f"postgresql://{info['user']}:{info['password']}@{info['host']}:{info['port']}/{info['dbname']}"

    def _cli(self, *args: str) -> str:
        env = self.app_env(DATABASE_URL=self.database_url())
        proc = subprocess.run([sys.executable, "-m", "fastier_app", *args], cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            raise LegacyError(f"fastier_app {args[0]} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-800:]}")
        return proc.stdout

    def migrate_and_seed(self, customers: int, orders: int) -> bool:
        """Schema migrations, then demo data unless there is data already; True when it seeded."""
        import psycopg

        self._cli("migrate")
        with psycopg.connect(**self.app_conninfo(), autocommit=True, connect_timeout=10) as conn:
            if conn.execute("SELECT count(*) FROM orders").fetchone()[0] > 0:
                return False
        self._cli("seed", "--customers", str(customers), "--orders", str(orders), "--seed", "42")
        return True

    # -- the app -------------------------------------------------------------------------------------------
    def app_env(self, **extra: str) -> dict[str, str]:
        """The server's environment: nothing that picks a database, plus the instance's AWS settings."""
        prefixes = ("PG", "DATABASE_", "DB_", "FASTIER_", "AWS_ENDPOINT_URL", "GUNICORN_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k not in ("APP_VERSION", "WEB_CONCURRENCY", "PORT", "BIND")}
        if self.endpoint:
            # What an instance profile and the instance's region give a real server.
            env.update(AWS_ENDPOINT_URL=self.endpoint, AWS_REGION=self.region, AWS_DEFAULT_REGION=self.region)
            env.update(AWS_ACCESS_KEY_ID=LOCAL_ACCESS_KEY, AWS_SECRET_ACCESS_KEY=LOCAL_SECRET_KEY, AWS_EC2_METADATA_DISABLED="true")
        env.update(self.extra_env)
        env.update(extra)
        return env

    def write_env_file(self) -> bool:
        """The app's settings (mode 600). Left alone when it exists: the migration rewrites it at the cut-over."""
        if self.env_file.exists():
            return False
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.env_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("# Fastier app settings on the legacy server (read by every new gunicorn worker)\n")
            fh.write(f"DATABASE_URL={self.database_url()}\n")
            fh.write("FASTIER_ENVIRONMENT=legacy\n")
        os.replace(tmp, self.env_file)
        return True

    def service(self, command: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, str(SERVICE), command, "--dir", str(self.run_dir), *args],
            env=self.app_env(),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if check and proc.returncode != 0:
            raise LegacyError(f"legacy_service.py {command} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-1500:]}")
        return proc

    def start_app(self) -> str:
        args = ["--port", str(self.app_port), "--env-file", str(self.env_file), "--workers", str(self.workers), "--timeout", "60"]
        return self.service("start", *args).stdout.strip()

    def app_running(self) -> bool:
        return self.service("status", check=False).returncode == 0

    def stop_app(self) -> str:
        return self.service("stop").stdout.strip()

    # -- the writer ------------------------------------------------------------------------------------------
    def writer_pid(self) -> int | None:
        try:
            pid = int(self.writer_pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if b"fastier_app.writer" in cmdline and _alive(pid) else None

    def start_writer(self, rate: float) -> int:
        running = self.writer_pid()
        if running:
            return running
        out = self.writer_out.open("a")
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastier_app.writer", "--url", self.url, "--log", str(self.writer_log), "--rate", str(rate), "--timeout", "5"],
            cwd=APP_DIR,
            env=self.app_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()
        self.writer_pid_file.write_text(str(proc.pid))
        return proc.pid

    def stop_writer(self, timeout: float = 20) -> dict[str, Any] | None:
        """SIGTERM (it finishes the request in flight); its summary (the last JSON line it printed) or None."""
        pid = self.writer_pid()
        if pid is None:
            self.writer_pid_file.unlink(missing_ok=True)
            return None
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.writer_pid_file.unlink(missing_ok=True)
        return self.writer_summary()

    def writer_summary(self) -> dict[str, Any] | None:
        try:
            lines = self.writer_out.read_text().splitlines()
        except OSError:
            return None
        for line in reversed(lines):
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    continue
        return None

    def writer_records(self) -> list[dict[str, Any]]:
        records = []
        try:
            text = self.writer_log.read_text()
        except OSError:
            return []
        for line in text.splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a torn last line
        return records

    # -- the EC2 instance record -------------------------------------------------------------------------------
    def _ec2(self) -> Any:
        import boto3

        return boto3.client(
            "ec2", endpoint_url=self.endpoint, region_name=self.region, aws_access_key_id=LOCAL_ACCESS_KEY, aws_secret_access_key=LOCAL_SECRET_KEY
        )

    def find_instance(self) -> dict[str, Any] | None:
        if not self.endpoint:
            return None
        ec2 = self._ec2()
        filters = [
            {"Name": "tag:Name", "Values": [self.instance_name]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        ]
        found = [i for r in ec2.describe_instances(Filters=filters)["Reservations"] for i in r["Instances"]]
        return found[0] if found else None

    def ensure_instance(self) -> tuple[dict[str, Any] | None, bool]:
        """The t3.medium the app runs on today, as an EC2 record: (instance, made now)."""
        if not self.endpoint:
            return None, False
        found = self.find_instance()
        if found:
            return found, False
        ec2 = self._ec2()
        images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}])["Images"]
        if not images:
            images = ec2.describe_images(Owners=["amazon"])["Images"][:1]
        image = sorted(images, key=lambda i: i.get("CreationDate", ""))[-1]
        root = image.get("RootDeviceName") or "/dev/xvda"
        tags = [
            {"Key": "Name", "Value": self.instance_name},
            {"Key": "Role", "Value": "legacy-app-server"},
            {"Key": "fastier:legacy", "Value": "true"},
            {"Key": "project", "Value": "fastier"},
        ]
        volume_tags = [{"Key": "Name", "Value": f"{self.instance_name}-root"}]
        made = ec2.run_instances(
            ImageId=image["ImageId"],
            InstanceType="t3.medium",
            MinCount=1,
            MaxCount=1,
            BlockDeviceMappings=[{"DeviceName": root, "Ebs": {"VolumeSize": 30, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True}}],
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": volume_tags}],
        )["Instances"][0]
        return made, True

    # -- everything ---------------------------------------------------------------------------------------------
    def up(self, customers: int = 2000, orders: int = 20000, writer_rate: float | None = 5.0, fresh: bool = False) -> dict[str, Any]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)
        if fresh:
            done = self.reset()
            say(f"fresh start: {', '.join(done) or 'nothing left from a previous run'}")
        if self.ensure_database():
            say(f"database {APP_DB} (owner {APP_USER}) created on {self.admin['host']}:{self.admin['port']}")
        if self.migrate_and_seed(customers, orders):
            say(f"migrated and seeded: {customers} customers, {orders} orders")
        else:
            say("migrated; the data was there already (not seeded again)")
        if self.write_env_file():
            say(f"env file {self.env_file} (mode 600) points the app at the legacy database")
        say(self.start_app())
        instance, made = self.ensure_instance()
        if instance:
            root = instance_root_volume(instance)
            what = f"{instance['InstanceId']} ({instance['InstanceType']}, Name={self.instance_name}, root volume {root})"
            say(f"EC2 instance record {what} {'created' if made else 'exists'}")
            self._save(instance_id=instance["InstanceId"], root_volume_id=root, public_dns_name=instance.get("PublicDnsName"))
        if writer_rate:
            pid = self.start_writer(writer_rate)
            say(f"writer (pid {pid}, {writer_rate:g} requests/s) -> {self.url}, log {self.writer_log}")
        self._save(app_url=self.url, env_file=str(self.env_file), run_dir=str(self.run_dir), app_dir=str(APP_DIR), writer_log=str(self.writer_log))
        return self.status()

    def down(self) -> dict[str, Any]:
        summary = self.stop_writer()
        if summary is not None:
            say(f"writer stopped: {summary.get('acknowledged')} writes acknowledged, {summary.get('failed')} failed")
        say(f"app: {self.stop_app()}")
        return {"writer": summary}

    def status(self) -> dict[str, Any]:
        proc = self.service("status", check=False)
        try:
            app = json.loads(proc.stdout)
        except ValueError:
            app = {"running": False}
        return {"app": app, "url": self.url, "writer_pid": self.writer_pid(), "writer": self.writer_summary(), **self.record()}


def migration_summary(legacy: Legacy, report_dir: Path, prefix: str, migration_id: str = APP_DB) -> list[str]:
    """What the migration did and what exists now, read from its report, the writer's log and the local AWS."""
    import boto3

    def client(service: str) -> Any:
        return boto3.client(
            service, endpoint_url=legacy.endpoint, region_name=legacy.region, aws_access_key_id=LOCAL_ACCESS_KEY, aws_secret_access_key=LOCAL_SECRET_KEY
        )

    lines = []
    eb = client("elasticbeanstalk")
    live = [e for e in eb.describe_environments(ApplicationName=prefix, IncludeDeleted=False)["Environments"] if e.get("CNAME", "").startswith(f"{prefix}.")]
    doors = (_get_json(f"{legacy.endpoint}/_local/frontdoor") or {}).get("records") or [] if legacy.endpoint else []
    for door in sorted(doors, key=lambda d: (d.get("name", "").count("."), d.get("name", ""))):
        url = (door.get("url") or "").rstrip("/")
        answer = _get_json(f"{url}/version") if url else None
        said = f"environment {answer.get('environment')}, version {answer.get('version')}, database {answer.get('database')}" if answer else "no answer"
        lines.append(f"Live URL of {door.get('name')}: {url or '-'} (its front door: where Route 53 sends it); /version: {said}")
    if live:
        env = live[0]
        url = _local_endpoint(legacy.endpoint, env["EnvironmentName"])
        lines.append(
            f"Elastic Beanstalk: {env['EnvironmentName']} runs {env.get('VersionLabel') or '-'}, {env['Status']}/{env['Health']}, "
            f"CNAME {env['CNAME']}, load balancer {url or '-'}"
        )
    try:
        report = json.loads((report_dir / f"{migration_id}-cutover.json").read_text())
    except (OSError, ValueError):
        report = None
    if report:
        tables = report.get("tables") or []
        rows = sum(int(t.get("rows") or t.get("target_rows") or 0) for t in tables)
        verified = sum(1 for t in tables if t.get("verified"))
        lines.append(
            f"Rows moved: {rows} in {len(tables)} tables ({verified}/{len(tables)} verified by row count and checksum); "
            f"measured write fence {report.get('write_downtime_s')} s (lag at the fence {report.get('lag_bytes_at_fence')} bytes)"
        )
        lines.append(f"Cut-over report: {report_dir / f'{migration_id}-cutover.json'}")
    records = legacy.writer_records()
    if records:
        acknowledged = [r for r in records if r.get("ok")]
        on_rds = [r for r in acknowledged if r.get("database") and not r["database"].startswith(f"{legacy.admin['host']}:{legacy.admin['port']}/")]
        failed = [r for r in records if not r.get("ok")]
        fenced = [r for r in failed if r.get("http_status") == 503 or "read-only" in str(r.get("error", ""))]
        lines.append(
            f"Writer: {len(records)} requests to the legacy app, {len(acknowledged)} acknowledged ({len(on_rds)} of them written to RDS after the "
            f"hand-over); {len(fenced)} refused during the write fence (503, read-only for maintenance), "
            f"{len(failed) - len(fenced)} not answered after the legacy app was stopped at decommission"
        )
    r53 = client("route53")
    for zone in r53.list_hosted_zones()["HostedZones"]:
        for record in r53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]:
            if record["Type"] == "CNAME" and record["Name"].startswith("www."):
                lines.append(f"DNS: {record['Name'].rstrip('.')} -> {record['ResourceRecords'][0]['Value']} (TTL {record['TTL']} s)")
    instance = legacy.find_instance()
    snapshots = client("ec2").describe_snapshots(Filters=[{"Name": "tag:fastier:migration", "Values": [prefix]}])["Snapshots"]
    lines.append(
        f"Legacy server: app {'running' if legacy.app_running() else 'stopped'}, EC2 instance {instance['InstanceId'] if instance else '-'}, "
        f"final snapshot {', '.join(s['SnapshotId'] for s in snapshots) or '-'}"
    )
    return lines


def _local_endpoint(endpoint: str | None, environment: str) -> str | None:
    answer = _get_json(f"{endpoint}/_local/eb/environments/{environment}/endpoint") if endpoint else None
    return answer.get("url") if answer else None


def _get_json(url: str) -> dict[str, Any] | None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback URLs of the local stack
            return json.loads(resp.read() or b"null")
    except (urllib.error.URLError, OSError, ValueError):
        return None


def instance_root_volume(instance: dict[str, Any]) -> str | None:
    mappings = instance.get("BlockDeviceMappings") or []
    root = [m for m in mappings if m.get("DeviceName") == instance.get("RootDeviceName")] or mappings
    return root[0]["Ebs"]["VolumeId"] if root else None


def from_env() -> Legacy:
    """The legacy server of the local stack this shell points at (``python -m local_aws env``)."""
    state = Path(os.environ.get("LOCAL_AWS_STATE_DIR", ROOT / ".local")).resolve()
    pw_file = state / "pg" / "legacy" / "superuser.pw"
    try:
        password = pw_file.read_text().strip()
    except OSError as exc:
        raise LegacyError(f"no legacy PostgreSQL password at {pw_file}: start the local stack first (python -m local_aws up)") from exc
    admin = {"host": "127.0.0.1", "port": int(os.environ.get("LOCAL_PG_LEGACY_PORT", "15432")), "user": "postgres", "password": password}
    return Legacy(
        state_dir=state / "legacy",
        app_port=int(os.environ.get("LOCAL_LEGACY_APP_PORT", DEFAULT_APP_PORT)),
        admin=admin,
        endpoint=os.environ.get("LOCAL_AWS_ENDPOINT") or f"http://127.0.0.1:{os.environ.get('LOCAL_AWS_PORT', '5000')}",
        region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.legacy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="database, app, writer and EC2 record (idempotent)")
    up.add_argument("--customers", type=int, default=2000)
    up.add_argument("--orders", type=int, default=20000)
    up.add_argument("--writer-rate", type=float, default=5.0, help="writer requests per second (default 5)")
    up.add_argument("--no-writer", action="store_true")
    up.add_argument("--fresh", action="store_true", help="drop what a previous run left (the migrated database, the env files, the writer log)")
    sub.add_parser("down", help="stop the writer and the app")
    sub.add_parser("status", help="JSON")
    summary = sub.add_parser("summary", help="the figures of the migration that ran")
    summary.add_argument("--report-dir", type=Path, required=True)
    summary.add_argument("--prefix", default="fastier-local")
    writer = sub.add_parser("writer", help="start or stop the background writer")
    writer.add_argument("action", choices=("start", "stop"))
    writer.add_argument("--rate", type=float, default=5.0)
    args = parser.parse_args(argv)
    try:
        legacy = from_env()
        if args.command == "up":
            status = legacy.up(args.customers, args.orders, None if args.no_writer else args.writer_rate, fresh=args.fresh)
            say(f"up: {legacy.url} (running: {status['app'].get('running')})")
        elif args.command == "down":
            legacy.down()
        elif args.command == "status":
            print(json.dumps(legacy.status(), indent=2))
        elif args.command == "summary":
            for line in migration_summary(legacy, args.report_dir, args.prefix):
                print(f"  {line}")
        elif args.action == "start":
            say(f"writer pid {legacy.start_writer(args.rate)}")
        else:
            print(json.dumps(legacy.stop_writer()))
    except LegacyError as exc:
        print(f"legacy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
