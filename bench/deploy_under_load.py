#!/usr/bin/env python3
"""What a user of the live URL sees during deploys, a rollback and an instance crash.

    .venv/bin/python -m bench.deploy_under_load [--rate 40] [--clients 8] [--json FILE]
    make bench-deploy

Starts a private local stack (free ports, temporary state) and builds a
small platform the way the roles leave it: the sample app
(``examples/fastier-app``) as Elastic Beanstalk versions (bundles with the
app_bundle role's Procfile), a local RDS PostgreSQL instance (migrated and
seeded) whose credentials the app reads from Secrets Manager, the live
environment ``<app>-blue`` (Immutable deployments, health checks on
``/healthz``), and a hosted zone whose apex is an alias of the live CNAME
(the dns role's record) plus the weighted record ``app.<zone>``
(route53_weighted). Every request goes through the live URL: the local front
door of the record (``local_aws.frontdoor``), which routes it as DNS would,
to the environments' load balancers.

A steady mixed load (reads: order lists, an order, the dashboard page,
``/version``; writes: new orders and status changes; half the clients on
keep-alive connections, half on a new connection per request) runs for the
whole of each scenario:

1. ``deploy cname_swap``: ``playbooks/deploy.yml`` of v2 (the idle
   environment is created from the live one, then the CNAMEs are swapped);
2. ``rollback cname_swap``: ``playbooks/rollback.yml`` (back to v1);
3. ``failed deploy``: a version whose ``/healthz`` fails (a migration it
   needs is not applied): the deploy must stop before any switch;
4. ``deploy route53_weighted``: v3, weights 10 -> 50 -> 100 on ``app.<zone>``;
5. ``instance killed``: SIGKILL to one instance of the live environment,
   until the Auto Scaling group has replaced it and the environment is Green.

Per scenario: requests sent, non-2xx answers, connection errors (no HTTP
answer), the longest gap between two successful answers, p50/p99 latency of
the answers, the versions seen in order, and acknowledged writes missing from
the database. Prints a table and writes the figures as JSON. A benchmark, not
a test: it asserts nothing about time (tests/integration/
test_deploy_under_load.py runs the same machinery at a light load and
asserts that no request fails).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import platform as host
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from plugins.module_utils.source_bundle import build as build_bundle
from tests.localstack import LocalStack, acquire, release
from tests.playbooks import ROOT, PlaybookRun, ensure_collection, run_playbook

APP_DIR = ROOT / "examples/fastier-app"
SOLUTION_STACK = "64bit Amazon Linux 2023 v4.6.0 running Python 3.11"
REGION = "us-east-1"
EB_ZONE_ID = "Z117KPS5GTRQ2G"  # Elastic Beanstalk's hosted zone in us-east-1 (the dns role's alias target zone)
ENV_NS = "aws:elasticbeanstalk:application:environment"
PROCESS_NS = "aws:elasticbeanstalk:environment:process:default"
BROKEN = "v4-broken"
DEFAULT_JSON = ROOT / ".local/bench/deploy_under_load.json"
MAX_VERSIONS = 20


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def wait_until(predicate: Any, timeout: float = 120.0, what: str = "condition", step: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"{what}: not met within {timeout:.0f} s (last: {last!r})")


# -- the platform ------------------------------------------------------------------------------------------------------


def procfile(workers: int, threads: int) -> str:
    """The web process as roles/app_bundle/templates/Procfile.j2 writes it (gunicorn reads gunicorn.conf.py too)."""
    return (
        f"web: gunicorn --bind 127.0.0.1:8000 --workers {workers} --threads {threads} --max-requests 1000 "
        "--max-requests-jitter 100 --timeout 30 --graceful-timeout 30 wsgi:application\n"
    )


def app_bundle(label: str, workers: int, threads: int, broken: bool = False) -> bytes:
    """The sample app as a version: its VERSION is the label; ``broken`` adds a migration nobody applies (``/healthz`` 503)."""
    files = {"Procfile": procfile(workers, threads), "VERSION": f"{label}\n"}
    if broken:
        files["migrations/0099_needs_a_migration_run.sql"] = "ALTER TABLE orders ADD COLUMN gift_note text;\n"
    out = io.BytesIO()
    build_bundle(str(APP_DIR), out, files=files)
    return out.getvalue()


@dataclass
class Catalogue:
    customers: list[int]
    products: list[int]
    orders: list[int]


class Platform:
    """A blue/green pair of the sample app on a local stack, with its database and its hosted zone."""

    def __init__(self, stack: LocalStack, *, name: str | None = None, instances: int = 2, workers: int = 2, threads: int = 2, orders: int = 2000):
        self.stack = stack
        self.name = name or f"bench{uuid.uuid4().hex[:6]}"
        self.app = f"fastier-{self.name}"
        self.blue, self.green = f"{self.app}-blue", f"{self.app}-green"
        self.live_cname = f"{self.app}.{REGION}.elasticbeanstalk.com"
        self.bucket = f"{self.app}-artifacts"
        self.domain = f"{self.name}.example"
        self.weighted_name = f"app.{self.domain}"
        self.instances, self.workers, self.threads, self.orders = instances, workers, threads, orders
        self.eb = stack.client("elasticbeanstalk")
        self.s3 = stack.client("s3")
        self.route53 = stack.client("route53")
        self.zone_id = ""
        self.db_identifier = f"{self.app}-db"
        self.db_url = ""
        self.secret_arn = ""
        self.catalogue = Catalogue([], [], [])

    # -- set-up ----------------------------------------------------------------------------------------------------
    def build(self) -> None:
        started = time.monotonic()
        phases = []
        for phase in (self._database, self._versions, self._live_environment, self._zone):
            begun = time.monotonic()
            phase()
            phases.append(f"{phase.__name__.strip('_')} {time.monotonic() - begun:.1f} s")
        log(f"platform {self.app} ready in {time.monotonic() - started:.1f} s ({', '.join(phases)}): {self.url(self.domain)} -> {self.blue}")

    def _database(self) -> None:
        rds = self.stack.client("rds")
        password = secrets.token_urlsafe(18)
        created = rds.create_db_instance(
            DBInstanceIdentifier=self.db_identifier,
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            AllocatedStorage=20,
            MasterUsername="fastier",
            MasterUserPassword=password,
            DBName="fastier",
        )["DBInstance"]
        endpoint = created["Endpoint"]
        self.db_url = f"postgresql://fastier:{password}@{endpoint['Address']}:{endpoint['Port']}/fastier"
        secret = {"username": "fastier", "password": password, "host": endpoint["Address"], "port": endpoint["Port"], "dbname": "fastier"}
        self.secret_arn = self.stack.client("secretsmanager").create_secret(Name=f"{self.app}/database/master", SecretString=json.dumps(secret))["ARN"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_", "DB_", "FASTIER_"))}
        env["DATABASE_URL"] = self.db_url
        for args in (["migrate"], ["seed", "--customers", "300", "--orders", str(self.orders), "--seed", "7"]):
            subprocess.run([sys.executable, "-m", "fastier_app", *args], cwd=APP_DIR, env=env, check=True, capture_output=True, text=True, timeout=300)
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            self.catalogue = Catalogue(
                [r[0] for r in conn.execute("SELECT id FROM customers ORDER BY id LIMIT 200")],
                [r[0] for r in conn.execute("SELECT id FROM products ORDER BY id")],
                [r[0] for r in conn.execute("SELECT id FROM orders ORDER BY id DESC LIMIT 500")],
            )

    def _versions(self) -> None:
        self.s3.create_bucket(Bucket=self.bucket)
        self.eb.create_application(ApplicationName=self.app)
        for label in ("v1", "v2", "v3", BROKEN):
            key = f"bundles/{label}.zip"
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=app_bundle(label, self.workers, self.threads, broken=label == BROKEN))
            self.eb.create_application_version(ApplicationName=self.app, VersionLabel=label, SourceBundle={"S3Bucket": self.bucket, "S3Key": key})

    def _live_environment(self) -> None:
        def option(namespace: str, name: str, value: str) -> dict[str, str]:
            return {"Namespace": namespace, "OptionName": name, "Value": value}

        self.eb.create_environment(
            ApplicationName=self.app,
            EnvironmentName=self.blue,
            SolutionStackName=SOLUTION_STACK,
            VersionLabel="v1",
            CNAMEPrefix=self.app,
            OptionSettings=[
                option("aws:autoscaling:asg", "MinSize", str(self.instances)),
                option("aws:autoscaling:asg", "MaxSize", str(max(4, self.instances))),
                option("aws:elasticbeanstalk:command", "DeploymentPolicy", "Immutable"),
                option("aws:elasticbeanstalk:healthreporting:system", "SystemType", "enhanced"),
                option(PROCESS_NS, "HealthCheckPath", "/healthz"),
                option(ENV_NS, "DATABASE_SECRET_ARN", self.secret_arn),
                option(ENV_NS, "LOG_LEVEL", "warning"),
                option(ENV_NS, "GUNICORN_ACCESS_LOG", "/dev/null"),
            ],
        )
        self.wait_green(self.blue)

    def _zone(self) -> None:
        zone = self.route53.create_hosted_zone(Name=self.domain, CallerReference=str(uuid.uuid4()))["HostedZone"]
        self.zone_id = zone["Id"].rsplit("/", 1)[-1]
        alias = {"HostedZoneId": EB_ZONE_ID, "DNSName": self.live_cname, "EvaluateTargetHealth": True}
        self.change([{"Action": "UPSERT", "ResourceRecordSet": {"Name": self.domain, "Type": "A", "AliasTarget": alias}}])
        self.reset_weights()
        for record in (self.domain, self.weighted_name):
            wait_until(lambda record=record: self.serving(record), what=f"the front door of {record}")

    def change(self, changes: list[dict[str, Any]]) -> None:
        self.route53.change_resource_record_sets(HostedZoneId=self.zone_id, ChangeBatch={"Changes": changes})

    def reset_weights(self) -> None:
        """Weighted records of the pair as the CNAMEs are now: all of ``app.<zone>`` to the environment holding the live CNAME."""
        envs = {e["EnvironmentName"]: e for e in self.environments()}
        live = next(name for name, e in envs.items() if e["CNAME"].lower() == self.live_cname)
        changes = []
        for name, env in sorted(envs.items()):
            record = {"Name": self.weighted_name, "Type": "CNAME", "SetIdentifier": name, "Weight": 100 if name == live else 0, "TTL": 1}
            changes.append({"Action": "UPSERT", "ResourceRecordSet": {**record, "ResourceRecords": [{"Value": env["CNAME"]}]}})
        self.change(changes)

    # -- reading -----------------------------------------------------------------------------------------------------------
    def environments(self) -> list[dict[str, Any]]:
        found = self.eb.describe_environments(ApplicationName=self.app)["Environments"]
        return [e for e in found if e["Status"] != "Terminated"]

    def environment(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.environments() if e["EnvironmentName"] == name), None)

    def wait_green(self, name: str, timeout: float = 180.0) -> dict[str, Any]:
        def green() -> dict[str, Any] | None:
            env = self.environment(name)
            return env if env and env["Status"] == "Ready" and env["Health"] == "Green" else None

        return wait_until(green, timeout, what=f"{name} Ready and Green")

    def record(self, name: str) -> dict[str, Any] | None:
        status, body = self.stack.control("GET", f"/_local/frontdoor/records/{name}")
        return body if status == 200 else None

    def serving(self, name: str) -> dict[str, Any] | None:
        found = self.record(name)
        return found if found and found["served_share"] == 1 else None

    def url(self, name: str) -> str:
        found = self.record(name)
        assert found is not None, f"no front door for {name}"
        return found["url"]

    def live(self, name: str) -> str:
        """The environment that takes (most of) the traffic of record ``name`` now."""
        found = self.record(name)
        assert found is not None, f"no front door for {name}"
        return max(found["targets"], key=lambda t: t["share"])["environment_name"]

    def instances_of(self, name: str) -> list[dict[str, Any]]:
        status, body = self.stack.control("GET", f"/_local/eb/environments/{name}")
        assert status == 200, body
        [env] = [e for e in body["environments"] if e["description"]["Status"] != "Terminated"]
        return [i for i in env["deploy_hook"]["instances"] if i["state"] == "in_service"]

    def lost_writes(self, refs: list[str]) -> list[str]:
        """Acknowledged creates (their client_ref) that the database does not hold."""
        if not refs:
            return []
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            stored = {r[0] for r in conn.execute("SELECT client_ref::text FROM orders WHERE client_ref = ANY(%s::uuid[])", (refs,))}
        return sorted(set(refs) - stored)

    # -- operations --------------------------------------------------------------------------------------------------------
    def variables(self, strategy: str, *, bake: float, watch: float, ledger: bool = True) -> dict[str, Any]:
        return {
            "blue_green_ledger_enabled": ledger,
            "blue_green_application_name": self.app,
            "blue_green_environment_names": [self.blue, self.green],
            "blue_green_live_cname": self.live_cname,
            "blue_green_ledger_bucket": self.bucket,
            "blue_green_strategy": strategy,
            "blue_green_route53_zone_id": self.zone_id,
            "blue_green_route53_record_name": self.weighted_name,
            "blue_green_route53_ttl": 1,
            "blue_green_weights": [10, 50, 100],
            "blue_green_bake_seconds": bake,
            "blue_green_watch_seconds": watch,
            "blue_green_poll_interval": 0.5,
        }

    def deploy(self, version: str, strategy: str, *, bake: float = 2, watch: float = 2, ledger: bool = True) -> PlaybookRun:
        """``playbooks/deploy.yml`` of ``version``; without the ledger a deploy is faster (and rollback.yml has nothing to go back to)."""
        variables = {**self.variables(strategy, bake=bake, watch=watch, ledger=ledger), "deploy_version_label": version}
        return run_playbook(self.stack.env(), ROOT / "playbooks/deploy.yml", variables)

    def rollback(self, strategy: str, *, bake: float = 2, watch: float = 2) -> PlaybookRun:
        return run_playbook(self.stack.env(), ROOT / "playbooks/rollback.yml", self.variables(strategy, bake=bake, watch=watch))

    def kill_instance(self, name: str) -> dict[str, Any]:
        """SIGKILL to one instance of environment ``name`` (its whole process group, as a crashed host)."""
        victim = self.instances_of(name)[0]
        os.killpg(victim["pid"], signal.SIGKILL)
        return victim

    def wait_replaced(self, name: str, victim: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
        def replaced() -> bool:
            ids = [i["id"] for i in self.instances_of(name) if i["health"] == "Ok"]
            return victim["id"] not in ids and len(ids) >= self.instances

        wait_until(replaced, timeout, what=f"{name}: {victim['id']} replaced")
        return self.wait_green(name, timeout)

    def teardown(self) -> None:
        """Remove what was made (for a shared stack; a private one goes as a whole)."""
        with contextlib.suppress(Exception):
            self.eb.delete_application(ApplicationName=self.app, TerminateEnvByForce=True)
        if self.zone_id:
            with contextlib.suppress(Exception):
                records = self.route53.list_resource_record_sets(HostedZoneId=self.zone_id)["ResourceRecordSets"]
                deletes = [{"Action": "DELETE", "ResourceRecordSet": r} for r in records if r["Type"] in ("A", "AAAA", "CNAME")]
                for change in deletes:
                    self.change([change])
                self.route53.delete_hosted_zone(Id=self.zone_id)
        with contextlib.suppress(Exception):
            self.stack.drop_db_instance(self.db_identifier)


# -- the load ------------------------------------------------------------------------------------------------------------


@dataclass
class Sample:
    start: float  # seconds since the load started
    end: float
    op: str
    status: int | None  # None: no HTTP answer (refused, reset, timed out)
    error: str = ""
    version: str | None = None
    client_ref: str | None = None


READS = {"list": 30, "order": 20, "version": 20, "page": 10}
WRITES = {"create": 15, "update": 5}
MIX = {**READS, **WRITES}  # request kinds and their weights


class Load:
    """A steady mixed load on one URL: ``clients`` threads, ``rate`` requests per second in all.

    Each client keeps its own pace (a request every ``clients / rate``
    seconds; a slow answer delays the next one, there is no catch-up burst).
    Even-numbered clients use one keep-alive connection (a new one after an
    error), the others a new connection per request. Nothing is retried.
    """

    def __init__(
        self, url: str, catalogue: Catalogue, *, rate: float = 40.0, clients: int = 8, mix: dict[str, int] | None = None, seed: int = 7, timeout: float = 10.0
    ):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.catalogue = catalogue
        self.rate, self.clients, self.timeout = rate, clients, timeout
        self.mix = mix or MIX
        self.rng = random.Random(seed)  # noqa: S311 - load generation, not cryptography
        self.samples: list[Sample] = []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.started = 0.0
        self.stopped = 0.0
        self.threads = [threading.Thread(target=self._client, args=(n,), name=f"load-{n}", daemon=True) for n in range(clients)]
        self.mine: list[tuple[int, str]] = []  # (order id, status) of orders this load created and may move on

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(self.timeout + 5)
        self.stopped = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.started

    # -- one client ----------------------------------------------------------------------------------------------------
    def _client(self, number: int) -> None:
        rng = random.Random(self.rng.random() + number)  # noqa: S311
        keep_alive = number % 2 == 0
        period = self.clients / self.rate
        conn: http.client.HTTPConnection | None = None
        due = time.monotonic() + rng.random() * period
        while not self.stop_event.is_set():
            pause = due - time.monotonic()
            if pause > 0 and self.stop_event.wait(pause):
                break
            due = max(due + period, time.monotonic())
            if conn is None or not keep_alive:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            sample = self._one(conn, rng)
            if sample.status is None or not keep_alive:
                conn.close()
                conn = None
            with self.lock:
                self.samples.append(sample)
        if conn is not None:
            conn.close()

    def _pick(self, rng: random.Random) -> str:
        return rng.choices(list(self.mix), weights=list(self.mix.values()))[0]

    def _one(self, conn: http.client.HTTPConnection, rng: random.Random) -> Sample:
        op = self._pick(rng)
        body: dict[str, Any] | None = None
        ref = None
        moving: tuple[int, str] | None = None
        if op == "update":
            with self.lock:
                moving = self.mine.pop(rng.randrange(len(self.mine))) if self.mine else None
            if moving is None:
                op = "create"
        if op == "list":
            method, path = "GET", f"/api/orders?limit=20&before_id={rng.choice(self.catalogue.orders) + 1}"
        elif op == "order":
            method, path = "GET", f"/api/orders/{rng.choice(self.catalogue.orders)}"
        elif op == "version":
            method, path = "GET", "/version"
        elif op == "page":
            method, path = "GET", "/"
        elif op == "create":
            ref = str(uuid.uuid4())
            items = [{"product_id": p, "quantity": rng.randint(1, 3)} for p in rng.sample(self.catalogue.products, rng.randint(1, 3))]
            method, path, body = "POST", "/api/orders", {"customer_id": rng.choice(self.catalogue.customers), "items": items, "client_ref": ref}
        else:
            assert moving is not None
            method, path, body = "PATCH", f"/api/orders/{moving[0]}", {"status": {"new": "paid", "paid": "shipped"}[moving[1]]}
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        start = self.now()
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            return Sample(start, self.now(), op, None, f"{type(exc).__name__}: {exc}"[:200])
        sample = Sample(start, self.now(), op, response.status, "" if response.status < 400 else payload[:200].decode(errors="replace"), client_ref=ref)
        if 200 <= response.status < 300:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                answer = json.loads(payload) if op != "page" else {}
                if op == "version":
                    sample.version = answer["version"]
                elif op == "create":
                    with self.lock:
                        self.mine.append((answer["order"]["id"], "new"))
                elif op == "update" and answer["order"]["status"] == "paid":
                    with self.lock:
                        self.mine.append((answer["order"]["id"], "paid"))
        return sample

    # -- figures --------------------------------------------------------------------------------------------------------
    def failures(self) -> list[Sample]:
        return [s for s in self.samples if s.status is None or not 200 <= s.status < 300]

    def versions(self) -> list[str]:
        """The versions ``/version`` answered, in the order the answers arrived."""
        return [s.version for s in sorted(self.samples, key=lambda s: s.end) if s.version]

    def acknowledged_creates(self) -> list[str]:
        return [s.client_ref for s in self.samples if s.op == "create" and s.status is not None and 200 <= s.status < 300 and s.client_ref]


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(fraction * len(ordered) + 0.5)) - 1))]


def changes(versions: list[str]) -> list[str]:
    """``[v1, v1, v2, v1, v2]`` -> ``[v1, v2, v1, v2]``: the sequence of versions, runs collapsed."""
    out: list[str] = []
    for version in versions:
        if not out or out[-1] != version:
            out.append(version)
    return out


@dataclass
class Figures:
    scenario: str
    url: str
    operation_s: float
    window_s: float
    sent: int
    ok: int
    non_2xx: int
    connection_errors: int
    longest_gap_s: float
    p50_ms: float | None
    p99_ms: float | None
    versions: list[str]  # the first changes of version (runs collapsed), at most MAX_VERSIONS
    version_changes: int
    last_version: str | None
    lost_writes: int
    statuses: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    note: str = ""

    def versions_seen(self) -> str:
        """``v1 -> v2``; a split shows as ``v1 -> v3, 11 changes`` (both answered in turn)."""
        if self.version_changes <= 1:
            return " -> ".join(self.versions)
        return f"{self.versions[0]} -> {self.last_version}, {self.version_changes} changes"

    @classmethod
    def of(cls, scenario: str, url: str, load: Load, *, operation_s: float, lost: list[str], note: str = "") -> Figures:
        samples = load.samples
        window = load.stopped - load.started
        ok_ends = sorted(s.end for s in samples if s.status is not None and 200 <= s.status < 300)
        edges = [0.0, *ok_ends, window]
        statuses: dict[str, int] = {}
        for s in samples:
            key = str(s.status) if s.status is not None else "no answer"
            statuses[key] = statuses.get(key, 0) + 1
        latencies = [(s.end - s.start) * 1000 for s in samples if s.status is not None]
        p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
        return cls(
            scenario=scenario,
            url=url,
            operation_s=round(operation_s, 1),
            window_s=round(window, 1),
            sent=len(samples),
            ok=len(ok_ends),
            non_2xx=sum(1 for s in samples if s.status is not None and not 200 <= s.status < 300),
            connection_errors=sum(1 for s in samples if s.status is None),
            longest_gap_s=round(max(b - a for a, b in zip(edges, edges[1:], strict=False)), 3),
            p50_ms=round(p50, 1) if p50 is not None else None,
            p99_ms=round(p99, 1) if p99 is not None else None,
            versions=changes(load.versions())[:MAX_VERSIONS],
            version_changes=max(0, len(changes(load.versions())) - 1),
            last_version=(load.versions() or [None])[-1],
            lost_writes=len(lost),
            statuses=statuses,
            errors=sorted({f"{s.op} {s.status}: {s.error}" for s in load.failures()})[:10],
            note=note,
        )


# -- scenarios ------------------------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.figures: list[Figures] = []

    def under_load(self, platform: Platform, scenario: str, record: str, action: Any) -> Figures:
        url = platform.url(record)
        load = Load(url, platform.catalogue, rate=self.args.rate, clients=self.args.clients)
        log(f"{scenario}: load on {url} ({record} -> {platform.live(record)})")
        with load:
            time.sleep(self.args.settle)
            started = time.monotonic()
            note = action()
            operation = time.monotonic() - started
            time.sleep(self.args.settle)
        figures = Figures.of(scenario, url, load, operation_s=operation, lost=platform.lost_writes(load.acknowledged_creates()), note=note or "")
        self.figures.append(figures)
        log(
            f"{scenario}: {figures.sent} sent, {figures.non_2xx} non-2xx, {figures.connection_errors} connection errors, "
            f"longest gap {figures.longest_gap_s:.2f} s, versions {figures.versions_seen()}"
        )
        return figures

    def run(self, platform: Platform) -> None:
        args = self.args

        def playbook(run: PlaybookRun, expect_ok: bool = True) -> str:
            if expect_ok and run.rc != 0:
                sys.exit(f"the playbook failed: {run.explain()}")
            if not expect_ok and run.rc == 0:
                sys.exit("the deploy of the broken version succeeded; it should have stopped before the switch")
            return "" if expect_ok else f"deploy refused (rc {run.rc})"

        wanted = set(args.scenarios)
        if "cname" in wanted:
            self.under_load(platform, "deploy cname_swap (v2)", platform.domain, lambda: playbook(platform.deploy("v2", "cname_swap", watch=args.watch)))
            self.under_load(platform, "rollback cname_swap (v1)", platform.domain, lambda: playbook(platform.rollback("cname_swap", watch=args.watch)))
        if "failed" in wanted:
            broken = platform.deploy
            self.under_load(
                platform, f"failed deploy ({BROKEN})", platform.domain, lambda: playbook(broken(BROKEN, "cname_swap", watch=args.watch), expect_ok=False)
            )
        if "weighted" in wanted:
            platform.reset_weights()
            wait_until(lambda: platform.serving(platform.weighted_name), what="the weighted record")
            self.under_load(
                platform,
                "deploy route53_weighted (v3)",
                platform.weighted_name,
                lambda: playbook(platform.deploy("v3", "route53_weighted", bake=args.bake, watch=args.watch)),
            )
        if "kill" in wanted:
            record = platform.weighted_name if "weighted" in wanted else platform.domain

            def kill() -> str:
                live = platform.live(record)
                victim = platform.kill_instance(live)
                platform.wait_replaced(live, victim)
                return f"{victim['id']} of {live} killed, replaced, Green"

            self.under_load(platform, "instance killed", record, kill)

    def table(self) -> str:
        head = f"{'scenario':30} {'op s':>6} {'sent':>6} {'non-2xx':>8} {'conn err':>8} {'gap s':>6} {'p50 ms':>7} {'p99 ms':>7} {'lost':>5}  versions seen"
        lines = [head, "-" * len(head)]
        for f in self.figures:
            lines.append(
                f"{f.scenario:30} {f.operation_s:6.1f} {f.sent:6d} {f.non_2xx:8d} {f.connection_errors:8d} {f.longest_gap_s:6.2f} "
                f"{f.p50_ms or 0:7.1f} {f.p99_ms or 0:7.1f} {f.lost_writes:5d}  {f.versions_seen()}"
            )
        return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second in all (default 40)")
    parser.add_argument("--clients", type=int, default=8, help="client threads (default 8; half keep-alive)")
    parser.add_argument("--instances", type=int, default=2, help="instances per environment (MinSize, default 2)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per instance (default 2, the app_bundle role's for a t3.micro)")
    parser.add_argument("--bake", type=float, default=3.0, help="seconds per weight step of route53_weighted (default 3)")
    parser.add_argument("--watch", type=float, default=3.0, help="watch window after a switch, seconds (default 3)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of load before and after each operation (default 3)")
    parser.add_argument("--scenarios", nargs="+", default=["cname", "failed", "weighted", "kill"], choices=["cname", "failed", "weighted", "kill"])
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where the figures go (default {DEFAULT_JSON.relative_to(ROOT)})")
    args = parser.parse_args()

    ensure_collection()
    stack = acquire()
    bench = Bench(args)
    platform = Platform(stack, instances=args.instances, workers=args.workers)
    started = time.monotonic()
    try:
        platform.build()
        bench.run(platform)
    finally:
        if stack.owned:
            release(stack)
        else:
            platform.teardown()
    figures = {
        "bench": "deploy_under_load",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": host.python_version()},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "total_s": round(time.monotonic() - started, 1),
        "scenarios": [asdict(f) for f in bench.figures],
    }
    print()
    print(f"load: {args.rate:g} req/s from {args.clients} clients (half keep-alive), reads and writes; {args.instances} instances x {args.workers} workers")
    print(bench.table())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nfigures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
