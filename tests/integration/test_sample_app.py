"""The sample application (examples/fastier-app) on real PostgreSQL, run as the legacy server runs it.

A local PostgreSQL cluster stands in for the database on the t3.medium and a
local RDS instance (a real PostgreSQL server behind the local AWS) for the
target. The app runs under gunicorn through ``legacy_service.py``; the writer
writes through its HTTP API while the app is repointed at RDS by rewriting its
env file and reloading. Every check of the data is SQL of its own against the
tables, not the app's code. The tests run in file order and share one app.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
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
from psycopg import sql

from local_aws.postgres import Cluster, free_port
from local_aws.settings import ACCESS_KEY, SECRET_KEY
from tests.localstack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "examples/fastier-app"
SERVICE = APP_DIR / "legacy_service.py"
USER = "shopkeeper"  # distinctive, so "not in the answer" means something
RDS_USER = "dbmaster"
DBNAME = "fastier"
SEED = ["--customers", "300", "--orders", "3000", "--seed", "7"]


@dataclass
class Database:
    host: str
    port: int
    user: str
    password: str
    dbname: str = DBNAME

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}/{self.dbname}"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}"

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(host=self.host, port=self.port, dbname=self.dbname, user=self.user, password=self.password, autocommit=True, connect_timeout=10)


@dataclass
class App:
    port: int
    run_dir: Path
    env_file: Path
    started: str

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


# -- helpers -------------------------------------------------------------------------------------
def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that would pick a database or an app setting."""
    prefixes = ("PG", "DATABASE_", "DB_", "FASTIER_", "AWS_ENDPOINT_URL", "GUNICORN_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k not in ("APP_VERSION", "WEB_CONCURRENCY", "PORT", "BIND")}
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str], expect: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "fastier_app", *args], cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == expect, f"fastier_app {args[0]} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def service(command: str, run_dir: Path, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(SERVICE), command, "--dir", str(run_dir), *args], env=clean_env(), capture_output=True, text=True, timeout=120, check=False
    )
    if expect is not None:
        assert proc.returncode == expect, f"legacy_service {command} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def http(method: str, url: str, body: Any = None, timeout: float = 15) -> tuple[int, str, dict[str, str]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), dict(err.headers)


def get_json(url: str) -> tuple[int, Any]:
    status, text, _ = http("GET", url)
    return status, json.loads(text)


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """Replace the file in one step, as a deploy tool would (a new worker never reads half a file)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text("# fastier-app settings\n" + "".join(f"{k}={v}\n" for k, v in values.items()))
    tmp.chmod(0o600)
    os.replace(tmp, path)


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def start_writer(app: App, log: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fastier_app.writer", "--url", app.url(), "--log", str(log), *args],
        cwd=APP_DIR,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_lines(log: Path, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the writer logged fewer than {count} requests in {timeout}s")


def stop_writer(proc: subprocess.Popen[str]) -> dict[str, Any]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, f"writer exited {proc.returncode}: {err}"
    return json.loads(out.strip().splitlines()[-1])


def stored_orders(db: Database, refs: list[str]) -> dict[str, dict[str, Any]]:
    """The orders with these client_refs, read with SQL of this test (not the app's)."""
    with db.connect() as conn:
        rows = conn.execute(
            """SELECT o.client_ref::text, o.id, o.customer_id, o.total_cents, o.status,
                      array_agg(ARRAY[i.product_id, i.quantity] ORDER BY i.product_id, i.quantity),
                      sum(i.quantity * p.price_cents)
                 FROM orders o JOIN order_items i ON i.order_id = o.id JOIN products p ON p.id = i.product_id
                WHERE o.client_ref = ANY(%s::uuid[])
                GROUP BY o.id""",
            (refs,),
        ).fetchall()
    return {r[0]: {"id": r[1], "customer_id": r[2], "total_cents": r[3], "status": r[4], "items": [list(x) for x in r[5]], "priced": int(r[6])} for r in rows}


def assert_acknowledged_writes_stored(records: list[dict[str, Any]], db: Database) -> dict[str, dict[str, Any]]:
    creates = {r["client_ref"]: r for r in records if r["op"] == "create" and r["ok"]}
    stored = stored_orders(db, list(creates))
    assert set(stored) == set(creates), f"acknowledged but not stored: {sorted(set(creates) - set(stored))[:5]}"
    for ref, ack in creates.items():
        row = stored[ref]
        assert (row["id"], row["customer_id"], row["total_cents"]) == (ack["id"], ack["customer_id"], ack["total_cents"]), ref
        assert row["items"] == sorted([i["product_id"], i["quantity"]] for i in ack["items"]), ref
        assert row["total_cents"] == row["priced"], f"{ref}: total is not the sum of its items at catalogue prices"
    return stored


def pids_gone(pids: list[int]) -> bool:
    def gone(pid: int) -> bool:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        return stat[stat.rindex(")") + 2] in "ZX"  # a zombie runs nothing

    return all(gone(pid) for pid in pids)


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="sample-app-"))
    root.chmod(0o755)  # the postgres OS user must reach its cluster folder
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def legacy(workdir: Path) -> Iterator[Database]:
    """The t3.medium's PostgreSQL, with the app's own role and database."""
    cluster = Cluster("legacy", workdir, free_port(), logical=True)
    cluster.start()
    db = Database("127.0.0.1", cluster.port, USER, secrets.token_urlsafe(18))
    try:
        with cluster.connect() as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(USER), sql.Literal(db.password)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DBNAME), sql.Identifier(USER)))
        yield db
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def seeded(legacy: Database) -> Database:
    env = clean_env(DATABASE_URL=legacy.url)
    cli("migrate", env=env)
    out = cli("seed", *SEED, env=env).stdout
    assert "seeded 300 customers, 60 products, 3000 orders" in out
    return legacy


@pytest.fixture(scope="module")
def app(seeded: Database, workdir: Path) -> Iterator[App]:
    run_dir = workdir / "run"
    env_file = workdir / "app.env"
    write_env_file(env_file, {"DATABASE_URL": seeded.url, "LOG_LEVEL": "info"})
    port = free_port()
    started = service("start", run_dir, "--port", str(port), "--env-file", str(env_file), "--workers", "2").stdout
    try:
        yield App(port, run_dir, env_file, started)
    finally:
        service("stop", run_dir, expect=None)


@pytest.fixture(scope="module")
def rds(stack: LocalStack) -> Iterator[dict[str, Any]]:
    """A local RDS instance whose master password RDS keeps in Secrets Manager."""
    client = stack.client("rds")
    identifier = f"sample-app-{uuid.uuid4().hex[:8]}"
    created = client.create_db_instance(
        DBInstanceIdentifier=identifier,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername=RDS_USER,
        ManageMasterUserPassword=True,
        DBName=DBNAME,
    )["DBInstance"]
    try:
        arn = created["MasterUserSecret"]["SecretArn"]
        secret = json.loads(stack.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])
        endpoint = created["Endpoint"]
        db = Database(endpoint["Address"], int(endpoint["Port"]), secret["username"], secret["password"])
        yield {"identifier": identifier, "secret_arn": arn, "db": db}
    finally:
        client.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)


def aws_env(stack: LocalStack) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": stack.endpoint, "AWS_REGION": stack.region, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}


# -- tests -----------------------------------------------------------------------------------------
def test_migrations_apply_each_file_once_even_when_run_concurrently(legacy: Database) -> None:
    env = clean_env(DATABASE_URL=legacy.url)
    runs = [
        subprocess.Popen([sys.executable, "-m", "fastier_app", "migrate"], cwd=APP_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    applied = "".join(out for out, _ in outputs)
    assert applied.count("applied 0001_initial") == 1 and applied.count("applied 0002_order_numbers") == 1, applied

    again = cli("migrate", env=env).stdout
    assert "nothing to apply: all 2 migrations are applied" in again and "applied 0" not in again

    files = sorted((APP_DIR / "migrations").glob("*.sql"))
    with legacy.connect() as conn:
        recorded = conn.execute("SELECT version, name, checksum FROM schema_migrations ORDER BY version").fetchall()
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        standalone = conn.execute(
            """SELECT count(*) FROM pg_class s WHERE s.relkind = 'S' AND s.relname = 'order_number_seq'
                 AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = s.oid AND d.deptype IN ('a', 'i'))"""
        ).fetchone()[0]
    assert recorded == [(f.name[:4], f.stem[5:], hashlib.sha256(f.read_bytes()).hexdigest()) for f in files]
    assert {"customers", "products", "orders", "order_items", "page_views", "schema_migrations"} <= tables
    assert standalone == 1, "order numbers come from a sequence no column owns"


def test_seed_loads_consistent_data_once(seeded: Database) -> None:
    with seeded.connect() as conn:
        counts = conn.execute("SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM products), (SELECT count(*) FROM orders)").fetchone()
        wrong_totals = conn.execute(
            "SELECT count(*) FROM orders o WHERE total_cents <> (SELECT sum(quantity * unit_price_cents) FROM order_items WHERE order_id = o.id)"
        ).fetchone()[0]
        sequence, top = conn.execute("SELECT (SELECT last_value FROM orders_id_seq), (SELECT max(id) FROM orders)").fetchone()
    assert counts == (300, 60, 3000)
    assert wrong_totals == 0
    assert sequence == top == 3000, "the identity sequence continues after the seeded ids"

    refused = cli("seed", *SEED, env=clean_env(DATABASE_URL=seeded.url), expect=1)
    assert "not empty" in refused.stderr
    with seeded.connect() as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 3000


def test_libpq_variables_with_an_env_file_that_overrides_them(seeded: Database, workdir: Path) -> None:
    env_file = workdir / "pg.env"
    write_env_file(env_file, {"PGDATABASE": DBNAME, "PGPASSWORD": seeded.password, "DB_CONNECT_TIMEOUT": "soon"})
    env = clean_env(PGHOST=seeded.host, PGPORT=str(seeded.port), PGUSER=USER, PGDATABASE="elsewhere", PGPASSWORD="wrong", FASTIER_ENV_FILE=str(env_file))
    shown = json.loads(cli("show-config", env=env).stdout)
    assert shown["database"] == seeded.address and shown["database_config"] == "PG*"
    assert shown["problems"] == ["DB_CONNECT_TIMEOUT='soon' is not an integer (using 5)"]  # reported, not fatal
    out = cli("migrate", env=env).stdout
    assert "nothing to apply" in out and seeded.password not in out
    env_file.write_text("not an assignment\n")
    refused = cli("migrate", env=env, expect=1)
    assert "line 1 is not KEY=VALUE" in refused.stderr


def test_service_starts_once_and_reports_its_status(app: App) -> None:
    assert app.started.startswith("started (pid ")
    again = service("start", app.run_dir, "--port", str(app.port))
    assert "already running" in again.stdout
    status = json.loads(service("status", app.run_dir).stdout)
    assert status["running"] and status["port"] == app.port and status["since"]
    assert len(status["workers"]) == 2 and status["healthy"] is True


def test_healthz_and_version_name_the_database_but_no_credentials(app: App, seeded: Database) -> None:
    status, health = get_json(app.url("/healthz"))
    assert status == 200 and health["status"] == "ok", health
    assert health["migrations"] == {"applied": 2, "latest": "0002_order_numbers"} and health["writable"] is True

    status, text, _ = http("GET", app.url("/version"))
    version = json.loads(text)
    assert status == 200
    assert version["database"] == seeded.address and version["database_config"] == "DATABASE_URL"
    assert version["version"] == (APP_DIR / "VERSION").read_text().strip() and version["environment"] == "legacy"
    assert version["hostname"] == socket.gethostname()
    assert version["pid"] in json.loads(service("status", app.run_dir).stdout)["workers"]
    for body in (text, json.dumps(health)):
        assert seeded.password not in body and USER not in body


def test_pages_render_and_record_page_views(app: App, seeded: Database) -> None:
    with seeded.connect() as conn:
        before = conn.execute("SELECT count(*) FROM page_views").fetchone()[0]
        order_id, number, customer = conn.execute(
            "SELECT o.id, o.number, c.name FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.id DESC LIMIT 1"
        ).fetchone()

    status, page, headers = http("GET", app.url("/"))
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "Recent orders" in page and f"#{number}" in page and customer in page
    status, page, _ = http("GET", app.url(f"/orders/{order_id}"))
    assert status == 200 and f"Order #{number}" in page
    status, page, _ = http("GET", app.url("/orders/99999999"))
    assert status == 404 and "There is no order 99999999" in page

    with seeded.connect() as conn:
        after = conn.execute("SELECT count(*) FROM page_views").fetchone()[0]
        paths = sorted(r[0] for r in conn.execute("SELECT path FROM page_views ORDER BY id DESC LIMIT 3"))
    assert after == before + 3
    assert paths == sorted(["/", f"/orders/{order_id}", "/orders/99999999"])


def test_api_creates_and_updates_orders(app: App, seeded: Database) -> None:
    ref = str(uuid.uuid4())
    order = {"customer_id": 5, "items": [{"product_id": 3, "quantity": 2}, {"product_id": 11, "quantity": 1}], "client_ref": ref}
    status, text, headers = http("POST", app.url("/api/orders"), order)
    assert status == 201, text
    created = json.loads(text)["order"]
    assert headers["Location"] == f"/api/orders/{created['id']}" and created["status"] == "new"

    stored = stored_orders(seeded, [ref])[ref]
    assert stored["items"] == [[3, 2], [11, 1]] and stored["customer_id"] == 5
    assert stored["total_cents"] == stored["priced"] == created["total_cents"]

    status, text, _ = http("POST", app.url("/api/orders"), order)  # a retried POST
    assert status == 200 and json.loads(text)["order"]["id"] == created["id"]
    with seeded.connect() as conn:
        assert conn.execute("SELECT count(*) FROM orders WHERE client_ref = %s", (ref,)).fetchone()[0] == 1

    status, text, _ = http("PATCH", app.url(f"/api/orders/{created['id']}"), {"status": "paid"})
    assert status == 200 and json.loads(text)["order"]["status"] == "paid"
    status, text, _ = http("PATCH", app.url(f"/api/orders/{created['id']}"), {"status": "delivered"})
    assert status == 409 and "cannot become delivered" in text
    assert stored_orders(seeded, [ref])[ref]["status"] == "paid"

    assert http("PATCH", app.url("/api/orders/99999999"), {"status": "paid"})[0] == 404
    assert http("PATCH", app.url(f"/api/orders/{created['id']}"), {"status": "lost"})[0] == 400
    assert http("POST", app.url("/api/orders"), {"customer_id": 5, "items": [{"product_id": 9999, "quantity": 1}]})[0] == 422
    status, listed = get_json(app.url("/api/orders?limit=5"))
    assert status == 200 and len(listed["orders"]) == 5 and listed["orders"][0]["id"] == created["id"]


def test_writer_acknowledged_writes_are_in_the_database(app: App, seeded: Database, workdir: Path) -> None:
    log = workdir / "writer-legacy.jsonl"
    writer = start_writer(app, log, "--rate", "100", "--seed", "1")
    try:
        wait_for_lines(log, 60)
    finally:
        summary = stop_writer(writer)
    records = read_log(log)

    assert summary["sent"] == len(records) == summary["acknowledged"] + summary["failed"]
    assert summary["failed"] == 0, summary
    assert summary["acknowledged_creates"] >= 30 and summary["acknowledged_updates"] >= 3, summary
    assert {r["database"] for r in records} == {seeded.address}
    stored = assert_acknowledged_writes_stored(records, seeded)
    last_status = {r["client_ref"]: r["order_status"] for r in records if r["ok"]}
    assert {ref: stored[ref]["status"] for ref in last_status} == last_status

    env = clean_env(DATABASE_URL=seeded.url)
    report = json.loads(cli("verify-writes", "--log", str(log), env=env).stdout)
    assert report["ok"] and report["found"] == summary["acknowledged_creates"] and report["failed_requests"] == 0
    # the checker fails when an acknowledged write is missing
    gone = next(r for r in records if r["op"] == "create")
    with seeded.connect() as conn:
        conn.execute("DELETE FROM orders WHERE client_ref = %s", (gone["client_ref"],))
    report = json.loads(cli("verify-writes", "--log", str(log), env=env, expect=1).stdout)
    assert [m["client_ref"] for m in report["missing"]] == [gone["client_ref"]]


def test_reload_repoints_the_app_at_rds_without_a_failed_request(app: App, seeded: Database, rds: dict[str, Any], stack: LocalStack, workdir: Path) -> None:
    target: Database = rds["db"]
    # Elastic Beanstalk's shape: the secret holds the credentials, DB_* the address
    rds_settings = {
        "DATABASE_URL": "",  # an empty value unsets it
        "DATABASE_SECRET_ARN": rds["secret_arn"],
        "DB_HOST": target.host,
        "DB_PORT": str(target.port),
        "DB_NAME": DBNAME,
        "LOG_LEVEL": "info",
        **aws_env(stack),
    }
    staged = workdir / "rds.env"
    write_env_file(staged, rds_settings)
    outputs = [cli("migrate", env=clean_env(FASTIER_ENV_FILE=str(staged))).stdout]
    assert f"database {target.address}" in outputs[0] and "applied 0002_order_numbers" in outputs[0]
    # the database role's secret shape: no host, the instance is looked up in RDS
    role_secret = stack.client("secretsmanager").create_secret(
        Name=f"{rds['identifier']}-role",
        SecretString=json.dumps(
            {
                "username": target.user,
                "password": target.password,
                "engine": "postgres",
                "port": target.port,
                "dbname": DBNAME,
                "dbInstanceIdentifier": rds["identifier"],
            }
        ),
    )["ARN"]
    outputs.append(cli("seed", *SEED, env=clean_env(DATABASE_SECRET_ARN=role_secret, **aws_env(stack))).stdout)
    assert f"database {target.address}" in outputs[1]

    log = workdir / "writer-reload.jsonl"
    writer = start_writer(app, log, "--rate", "100", "--update-ratio", "0", "--seed", "2")
    try:
        wait_for_lines(log, 30)
        write_env_file(app.env_file, rds_settings)
        reload = service("reload", app.run_dir)
        before = len(read_log(log))
        wait_for_lines(log, before + 30)
    finally:
        summary = stop_writer(writer)
    assert f"database {target.address}" in reload.stdout

    records = read_log(log)
    assert summary["failed"] == 0, summary
    by_database: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_database.setdefault(record["database"], []).append(record)
    assert set(by_database) == {seeded.address, target.address}
    assert len(by_database[target.address]) >= 25
    assert_acknowledged_writes_stored(by_database[seeded.address], seeded)
    assert_acknowledged_writes_stored(by_database[target.address], target)
    assert not stored_orders(seeded, [r["client_ref"] for r in by_database[target.address]]), "a write acknowledged by RDS is in the legacy database"

    status, text, _ = http("GET", app.url("/version"))
    version = json.loads(text)
    assert status == 200 and version["database"] == target.address and version["database_config"] == "DATABASE_SECRET_ARN"
    status, health = get_json(app.url("/healthz"))
    assert status == 200 and health["database"] == target.address
    logs = (app.run_dir / "error.log").read_text() + (app.run_dir / "access.log").read_text()
    for shown in (text, json.dumps(health), reload.stdout, *outputs, logs):
        assert target.password not in shown and seeded.password not in shown
    for shown in (text, json.dumps(health), reload.stdout, *outputs):
        assert RDS_USER not in shown and USER not in shown


def test_a_rotated_master_password_is_picked_up(app: App, rds: dict[str, Any], stack: LocalStack) -> None:
    rds_client = stack.client("rds")
    rds_client.modify_db_instance(DBInstanceIdentifier=rds["identifier"], RotateMasterUserPassword=True, ApplyImmediately=True)
    secret = json.loads(stack.client("secretsmanager").get_secret_value(SecretId=rds["secret_arn"])["SecretString"])
    target: Database = rds["db"]
    assert secret["password"] != target.password
    rotated = Database(target.host, target.port, target.user, secret["password"])
    with rotated.connect() as conn:  # the app's sessions end (as on a failover); new ones need the new password
        ended = conn.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'fastier-app') t"
        ).fetchone()[0]
    assert ended >= 1

    deadline = time.monotonic() + 20
    while True:
        status, text, _ = http("GET", app.url("/api/orders?limit=1"))
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200, f"the app did not reconnect with the rotated password: {status} {text}"
    rds["db"] = rotated


def test_a_stopped_database_makes_healthz_503_until_it_is_back(app: App, rds: dict[str, Any], stack: LocalStack) -> None:
    rds_client = stack.client("rds")
    rds_client.stop_db_instance(DBInstanceIdentifier=rds["identifier"])
    deadline = time.monotonic() + 20
    status, health = get_json(app.url("/healthz"))
    while status != 503 and time.monotonic() < deadline:
        time.sleep(0.2)
        status, health = get_json(app.url("/healthz"))
    assert status == 503, health
    assert health["status"] == "error" and health["reason"].startswith("database unavailable") and "Connection refused" in health["reason"]
    assert health["database"] == rds["db"].address and rds["db"].password not in json.dumps(health)
    assert http("GET", app.url("/api/orders?limit=1"))[0] == 503

    rds_client.start_db_instance(DBInstanceIdentifier=rds["identifier"])
    deadline = time.monotonic() + 20
    while status != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        status, health = get_json(app.url("/healthz"))
    assert status == 200, health


def test_the_writer_counts_an_outage_and_keeps_going(app: App, rds: dict[str, Any], workdir: Path) -> None:
    log = workdir / "writer-outage.jsonl"
    writer = start_writer(app, log, "--rate", "50", "--seed", "3")
    try:
        wait_for_lines(log, 10)
        service("stop", app.run_dir)
        stopped_at = len(read_log(log))
        wait_for_lines(log, stopped_at + 5)  # refused connections, logged as failures
        service("start", app.run_dir, "--port", str(app.port), "--env-file", str(app.env_file), "--workers", "2")
        wait_for_lines(log, len(read_log(log)) + 10)
    finally:
        summary = stop_writer(writer)
    records = read_log(log)

    failures = [r for r in records if not r["ok"]]
    assert summary["sent"] == len(records) == summary["acknowledged"] + summary["failed"] and summary["failed"] == len(failures) >= 5
    # no HTTP answer: refused while down (a request queued when the listener closed is reset)
    assert all(r["http_status"] is None and ("refused" in r["error"] or "reset" in r["error"]) for r in failures), [r["error"] for r in failures]
    assert records[-1]["ok"], "the writer went on after the outage"
    assert summary["longest_gap_s"] >= failures[-1]["t"] - failures[0]["t"]
    assert_acknowledged_writes_stored(records, rds["db"])


def test_stop_leaves_no_process_behind(app: App) -> None:
    status = json.loads(service("status", app.run_dir).stdout)
    pids = [status["pid"], *status["workers"]]
    assert len(pids) == 3

    assert service("stop", app.run_dir).stdout.startswith("stopped")
    assert pids_gone(pids)
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", app.port)) != 0, "the port still accepts connections"
    assert "not running" in service("stop", app.run_dir).stdout
    assert json.loads(service("status", app.run_dir, expect=3).stdout)["running"] is False
