"""Local RDS: every postgres DB instance is a real PostgreSQL server of its own.

Each test talks to the endpoint with boto3 and to the instance's server with
psycopg over TCP at the endpoint RDS reports, as an application would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from local_aws.cli import client_env, endpoint_answers
from local_aws.postgres import free_port
from local_aws.rds import stop_leftovers_in
from local_aws.settings import Settings
from tests.localstack import LocalStack

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "initial-pass-1"
MASTER = "master"

CreateInstance = Callable[..., dict[str, Any]]


@pytest.fixture
def rds(stack: LocalStack) -> Any:
    return stack.client("rds")


@pytest.fixture
def create_instance(rds: Any, unique: str) -> Iterator[CreateInstance]:
    """Create postgres DB instances; delete whatever is left after the test."""
    created: list[str] = []

    def create(suffix: str = "a", **params: Any) -> dict[str, Any]:
        identifier = f"t-{unique}-{suffix}"
        args = {
            "DBInstanceIdentifier": identifier,
            "Engine": "postgres",
            "DBInstanceClass": "db.t3.micro",
            "AllocatedStorage": 20,
            "MasterUsername": MASTER,
            "MasterUserPassword": PASSWORD,
            **params,
        }
        if params.get("ManageMasterUserPassword"):
            del args["MasterUserPassword"]
        created.append(identifier)
        return rds.create_db_instance(**args)["DBInstance"]

    yield create
    for identifier in created:
        try:
            rds.modify_db_instance(DBInstanceIdentifier=identifier, DeletionProtection=False, ApplyImmediately=True)
            rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)
        except ClientError as err:
            assert err.response["Error"]["Code"] == "DBInstanceNotFound"


def connect(db: dict[str, Any], password: str = PASSWORD, user: str = MASTER, dbname: str = "postgres") -> psycopg.Connection:
    endpoint = db["Endpoint"]
    return psycopg.connect(host=endpoint["Address"], port=endpoint["Port"], user=user, password=password, dbname=dbname, autocommit=True, connect_timeout=5)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def server(stack: LocalStack, identifier: str) -> dict[str, Any]:
    status, body = stack.control("GET", f"/_local/rds/instances/{identifier}")
    assert status == 200, body
    return body


def describe(rds: Any, identifier: str) -> dict[str, Any]:
    return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]


def error_code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def test_instance_is_a_real_server_at_the_reported_endpoint(rds: Any, create_instance: CreateInstance) -> None:
    started = time.monotonic()
    db = create_instance(DBName="fastier")
    create_s = time.monotonic() - started

    assert db["Endpoint"]["Address"] == "127.0.0.1"
    assert describe(rds, db["DBInstanceIdentifier"])["Endpoint"] == db["Endpoint"]
    assert db["DBInstanceStatus"] == "available"
    with connect(db, dbname="fastier") as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, item text)")
        conn.execute("INSERT INTO orders VALUES (1, 'espresso')")
        assert conn.execute("SELECT item FROM orders WHERE id = 1").fetchone() == ("espresso",)
        # Without EngineVersion, the version reported is the one that really runs.
        assert conn.execute("SHOW server_version").fetchone()[0].split()[0] == db["EngineVersion"]
        assert conn.pgconn.ssl_in_use  # TLS is offered, as RDS does
    assert create_s < 15, f"CreateDBInstance took {create_s:.1f}s"


def test_wrong_password_is_refused(create_instance: CreateInstance) -> None:
    db = create_instance()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(db, password="not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(db, user="rdsadmin", password=PASSWORD)


def test_database_is_owned_by_the_master_who_is_superuser(create_instance: CreateInstance) -> None:
    with_db = create_instance("a", DBName="fastier")
    without_db = create_instance("b")

    with connect(with_db) as conn:
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'fastier'").fetchone()
        assert owner == (MASTER,)
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (True,)
        assert conn.execute("SELECT pg_has_role(current_user, 'rds_superuser', 'MEMBER')").fetchone() == (True,)
    with connect(without_db) as conn:
        names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        assert names == {"postgres", "template0", "template1"}  # RDS creates only postgres without DBName


def test_instances_with_the_same_database_name_are_independent(stack: LocalStack, create_instance: CreateInstance) -> None:
    first = create_instance("a", DBName="fastier")
    second = create_instance("b", DBName="fastier", MasterUsername="postgres", MasterUserPassword="other-pass-2")

    assert first["Endpoint"]["Port"] != second["Endpoint"]["Port"]
    assert server(stack, first["DBInstanceIdentifier"])["data_dir"] != server(stack, second["DBInstanceIdentifier"])["data_dir"]
    with connect(first, dbname="fastier") as conn:
        conn.execute("CREATE TABLE only_here (id int)")
    with connect(second, user="postgres", password="other-pass-2", dbname="fastier") as conn:
        assert conn.execute("SELECT to_regclass('only_here')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (MASTER,)).fetchone() == (0,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(second, password=PASSWORD)  # the first instance's master does not exist here


def test_modify_master_password(rds: Any, create_instance: CreateInstance) -> None:
    db = create_instance()
    modified = rds.modify_db_instance(DBInstanceIdentifier=db["DBInstanceIdentifier"], MasterUserPassword="changed-pass-2", ApplyImmediately=True)

    assert modified["DBInstance"]["Endpoint"] == db["Endpoint"]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(db)
    with connect(db, password="changed-pass-2") as conn:
        assert conn.execute("SELECT current_user").fetchone() == (MASTER,)


def test_delete_refused_when_protected_or_final_snapshot_unsaid(rds: Any, create_instance: CreateInstance) -> None:
    db = create_instance(DeletionProtection=True)
    identifier = db["DBInstanceIdentifier"]

    assert error_code(lambda: rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)) == "InvalidParameterCombination"
    rds.modify_db_instance(DBInstanceIdentifier=identifier, DeletionProtection=False, ApplyImmediately=True)
    assert error_code(lambda: rds.delete_db_instance(DBInstanceIdentifier=identifier)) == "InvalidParameterCombination"
    assert describe(rds, identifier)["DBInstanceStatus"] == "available"
    with connect(db) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_delete_stops_the_server_and_removes_its_data(stack: LocalStack, rds: Any, create_instance: CreateInstance) -> None:
    db = create_instance()
    identifier = db["DBInstanceIdentifier"]
    data_dir = Path(server(stack, identifier)["data_dir"])
    assert data_dir.is_dir() and listening(db["Endpoint"]["Port"])

    rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)

    assert not listening(db["Endpoint"]["Port"])
    assert not data_dir.parent.exists()
    assert error_code(lambda: describe(rds, identifier)) == "DBInstanceNotFound"
    assert stack.control("GET", f"/_local/rds/instances/{identifier}")[0] == 404


def test_reboot_restarts_the_server_and_keeps_data(stack: LocalStack, rds: Any, create_instance: CreateInstance) -> None:
    db = create_instance()
    identifier = db["DBInstanceIdentifier"]
    with connect(db) as conn:
        conn.execute("CREATE TABLE kept AS SELECT 42 AS answer")
    pid_before = server(stack, identifier)["pid"]

    rebooted = rds.reboot_db_instance(DBInstanceIdentifier=identifier)["DBInstance"]

    assert rebooted["DBInstanceStatus"] == "available"
    assert server(stack, identifier)["pid"] not in (None, pid_before)
    with connect(db) as conn:
        assert conn.execute("SELECT answer FROM kept").fetchone() == (42,)


def test_stop_and_start(rds: Any, create_instance: CreateInstance) -> None:
    db = create_instance()
    identifier = db["DBInstanceIdentifier"]
    with connect(db) as conn:
        conn.execute("CREATE TABLE kept AS SELECT 7 AS n")

    assert rds.stop_db_instance(DBInstanceIdentifier=identifier)["DBInstance"]["DBInstanceStatus"] == "stopped"
    assert not listening(db["Endpoint"]["Port"])
    assert error_code(lambda: rds.reboot_db_instance(DBInstanceIdentifier=identifier)) == "InvalidDBInstanceState"

    assert rds.start_db_instance(DBInstanceIdentifier=identifier)["DBInstance"]["DBInstanceStatus"] == "available"
    assert describe(rds, identifier)["Endpoint"] == db["Endpoint"]
    with connect(db) as conn:
        assert conn.execute("SELECT n FROM kept").fetchone() == (7,)


def secret_credentials(stack: LocalStack, arn: str) -> dict[str, str]:
    return json.loads(stack.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])


def test_managed_master_password_is_in_secrets_manager_and_rotates(stack: LocalStack, rds: Any, create_instance: CreateInstance) -> None:
    db = create_instance(ManageMasterUserPassword=True)
    arn = db["MasterUserSecret"]["SecretArn"]
    credentials = secret_credentials(stack, arn)

    assert set(credentials) == {"username", "password"} and credentials["username"] == MASTER
    with connect(db, password=credentials["password"]) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (MASTER,)

    rds.modify_db_instance(DBInstanceIdentifier=db["DBInstanceIdentifier"], RotateMasterUserPassword=True, ApplyImmediately=True)
    rotated = secret_credentials(stack, arn)
    assert rotated["password"] != credentials["password"]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(db, password=credentials["password"])
    connect(db, password=rotated["password"]).close()


def test_kill_drops_connections_and_start_recovers(stack: LocalStack, rds: Any, create_instance: CreateInstance) -> None:
    db = create_instance()
    identifier = db["DBInstanceIdentifier"]
    conn = connect(db)
    conn.execute("CREATE TABLE committed AS SELECT 1 AS n")

    status, killed = stack.control("POST", f"/_local/rds/instances/{identifier}/kill")

    assert status == 200 and killed["killed"] and not killed["running"]
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()
    assert not listening(db["Endpoint"]["Port"])
    assert describe(rds, identifier)["DBInstanceStatus"] == "available"  # a crash RDS has not noticed yet

    status, started = stack.control("POST", f"/_local/rds/instances/{identifier}/start")

    assert status == 200 and started["running"]
    with connect(db) as conn:
        assert conn.execute("SELECT n FROM committed").fetchone() == (1,)


def test_requested_port_is_honoured_or_refused_when_taken(stack: LocalStack, rds: Any, create_instance: CreateInstance) -> None:
    wanted = free_port()
    db = create_instance("a", Port=wanted)
    assert db["Endpoint"]["Port"] == wanted and listening(wanted)

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert error_code(lambda: create_instance("b", Port=taken)) == "InvalidParameterValue"
    refused = f"{db['DBInstanceIdentifier'][:-1]}b"
    assert error_code(lambda: describe(rds, refused)) == "DBInstanceNotFound"
    assert refused not in {i["id"] for i in stack.control("GET", "/_local/rds/instances")[1]["instances"]}


def test_invalid_master_credentials_create_nothing(rds: Any, create_instance: CreateInstance, unique: str) -> None:
    assert error_code(lambda: create_instance("a", MasterUserPassword="short")) == "InvalidParameterValue"
    assert error_code(lambda: create_instance("b", MasterUsername="rdsadmin")) == "InvalidParameterValue"
    for suffix in "ab":
        assert error_code(lambda suffix=suffix: describe(rds, f"t-{unique}-{suffix}")) == "DBInstanceNotFound"


def postmaster_alive(data_dir: Path) -> bool:
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


class Endpoint:
    """``python -m local_aws serve`` (the process ``local_aws up`` starts) on a private state dir."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.stack = LocalStack(settings, owned=True)
        env = {**os.environ, **client_env(settings)}
        log = (settings.state_dir / "server.log").open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "local_aws", "serve"], env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not endpoint_answers(settings):
            assert self.process.poll() is None and time.monotonic() < deadline, f"the endpoint did not start; see {settings.state_dir}"
            time.sleep(0.1)

    def create(self, identifier: str) -> Path:
        rds = self.stack.client("rds")
        rds.create_db_instance(
            DBInstanceIdentifier=identifier, Engine="postgres", DBInstanceClass="db.t3.micro", MasterUsername=MASTER, MasterUserPassword=PASSWORD
        )
        return Path(server(self.stack, identifier)["data_dir"])

    def end(self, sig: int) -> None:
        self.process.send_signal(sig)
        self.process.wait(timeout=30)


def reuse_template(source: Settings, target: Settings) -> None:
    """Spare a new state dir the template's initdb: copy a built one (it never changes once READY)."""
    template = source.pg_dir / "template"
    if (template / "READY").exists():
        target.pg_dir.mkdir(parents=True)
        subprocess.run(["cp", "-a", str(template), str(target.pg_dir / "template")], check=True)


@pytest.mark.slow
def test_servers_end_with_the_endpoint_and_a_crash_is_cleaned_up(stack: LocalStack) -> None:
    """SIGTERM (``local_aws down``) stops instance servers; the next start stops a crashed run's."""
    state_dir = Path(tempfile.mkdtemp(prefix="fastier-rds-life-"))
    state_dir.chmod(0o755)
    settings = Settings(port=free_port(), state_dir=state_dir)
    reuse_template(stack.settings, settings)
    try:
        crashed = Endpoint(settings)
        orphan = crashed.create("orphan")
        crashed.end(signal.SIGKILL)
        assert postmaster_alive(orphan)  # nothing stopped it

        endpoint = Endpoint(settings)
        assert not postmaster_alive(orphan) and not orphan.exists()
        survivor = endpoint.create("survivor")
        assert postmaster_alive(survivor)
        endpoint.end(signal.SIGTERM)
        assert not postmaster_alive(survivor) and not survivor.exists()
    finally:
        stop_leftovers_in(settings)  # only matters when an assertion above failed
        shutil.rmtree(state_dir, ignore_errors=True)
