"""playbooks/restore.yml on the local stack: the application back on a restored database.

The platform is made the cheap way (boto3, named as the roles name things): the
live RDS instance (a real PostgreSQL) with its master secret as the database
role writes it, the sample app's schema and a few orders, a canary, a snapshot;
an Elastic Beanstalk environment really serving examples/fastier-app behind its
load balancer, reading the database from the secret. After the snapshot the app
takes one more order. Then the runbook: refused without its confirmation
(before any AWS call), a check-mode run that changes nothing, the real run, and
a re-run that changes nothing. What the user sees is asserted through the app:
it answers from the restored instance, the orders of the snapshot are there,
the one taken after it is not - and the report says that loss as the RPO.
"""

from __future__ import annotations

import http.client
import io
import json
import subprocess
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from local_aws.postgres import free_port
from tests.integration.test_blue_green_swap import wait_until
from tests.playbooks import ROOT, ensure_collection, run_playbook

PLAYBOOK = ROOT / "playbooks/restore.yml"
APP_DIR = ROOT / "examples/fastier-app"
STACK = "64bit Amazon Linux 2023 v4.6.0 running Python 3.11"
ENV_NS = "aws:elasticbeanstalk:application:environment"
PROCESS_NS = "aws:elasticbeanstalk:environment:process:default"
NO_AWS = "http://127.0.0.1:9"  # nothing listens there: an AWS call would fail to connect
PASSWORD = uuid.uuid4().hex


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


def _bundle() -> bytes:
    """The sample app as an Elastic Beanstalk bundle: its files and a Procfile (one gunicorn worker)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for path in sorted(APP_DIR.rglob("*")):
            rel = path.relative_to(APP_DIR)
            if path.is_file() and "__pycache__" not in rel.parts and rel.parts[0] != "tests":
                zf.write(path, str(rel))
        zf.writestr("Procfile", "web: gunicorn -c gunicorn.conf.py wsgi:application\n")
    return out.getvalue()


def _get(port: int, path: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Accept": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def _post(port: int, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json", "Accept": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def _app(stack: Any, env: dict[str, Any], *args: str) -> None:
    subprocess.run(
        [str(ROOT / ".venv/bin/python"), "-m", "fastier_app", *args],
        cwd=APP_DIR,
        env={**stack.env(), "DATABASE_URL": env["url"]},
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def platform(stack: Any) -> Iterator[dict[str, Any]]:
    env = f"r{uuid.uuid4().hex[:7]}"
    prefix = f"fastier-{env}"
    rds, eb, s3, ec2 = stack.client("rds"), stack.client("elasticbeanstalk"), stack.client("s3"), stack.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName=f"{prefix}-db", Description="database", VpcId=vpc)["GroupId"]
    port = free_port()
    live = rds.create_db_instance(
        DBInstanceIdentifier=f"{prefix}-db",
        Engine="postgres",
        DBInstanceClass="db.t4g.micro",
        AllocatedStorage=20,
        MasterUsername="fastier",
        MasterUserPassword=PASSWORD,
        DBName="fastier",
        Port=port,
        VpcSecurityGroupIds=[group],
        BackupRetentionPeriod=7,
        DeletionProtection=True,
        Tags=[{"Key": "Name", "Value": f"{prefix}-db"}],
    )["DBInstance"]
    # The master secret as the database role writes it (roles/database/tasks/present.yml).
    master = {"username": "fastier", "password": PASSWORD, "engine": "postgres", "host": "127.0.0.1", "port": port, "dbname": "fastier"}
    secret = stack.client("secretsmanager").create_secret(
        Name=f"{prefix}/database/master", SecretString=json.dumps({**master, "dbInstanceIdentifier": f"{prefix}-db"})
    )["ARN"]
    state = {
        "env": env,
        "prefix": prefix,
        "live_port": port,
        "live_arn": live["DBInstanceArn"],
        "url": f"postgresql://fastier:{PASSWORD}@127.0.0.1:{port}/fastier",
    }
    _app(stack, state, "migrate")
    _app(stack, state, "seed", "--customers", "5", "--orders", "12", "--products", "4")
    with psycopg.connect(state["url"], autocommit=True) as conn:
        conn.execute("CREATE SCHEMA fastier_dr")
        conn.execute("CREATE TABLE fastier_dr.canary (id bigserial PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT now(), note text)")
        conn.execute("INSERT INTO fastier_dr.canary (note) VALUES ('before the snapshot')")
        state["orders_before"] = [row[0] for row in conn.execute("SELECT id FROM orders ORDER BY id")]
    time.sleep(1.1)  # the snapshot's time is after every row above, by more than the check's boundary
    rds.create_db_snapshot(DBInstanceIdentifier=f"{prefix}-db", DBSnapshotIdentifier=f"{prefix}-nightly")

    # The application, served by the local Elastic Beanstalk behind its load balancer.
    s3.create_bucket(Bucket=f"{prefix}-artifacts")
    s3.put_object(Bucket=f"{prefix}-artifacts", Key="app.zip", Body=_bundle())
    eb.create_application(ApplicationName=prefix)
    eb.create_application_version(ApplicationName=prefix, VersionLabel="v1", SourceBundle={"S3Bucket": f"{prefix}-artifacts", "S3Key": "app.zip"})
    eb.create_environment(
        ApplicationName=prefix,
        EnvironmentName=f"{prefix}-blue",
        SolutionStackName=STACK,
        VersionLabel="v1",
        CNAMEPrefix=prefix,
        OptionSettings=[
            {"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "1"},
            {"Namespace": "aws:autoscaling:asg", "OptionName": "MaxSize", "Value": "1"},
            {"Namespace": PROCESS_NS, "OptionName": "HealthCheckPath", "Value": "/healthz"},
            {"Namespace": PROCESS_NS, "OptionName": "HealthCheckInterval", "Value": "6"},
            {"Namespace": ENV_NS, "OptionName": "DATABASE_SECRET_ARN", "Value": secret},
            {"Namespace": ENV_NS, "OptionName": "WEB_CONCURRENCY", "Value": "1"},
        ],
    )
    wait_until(
        lambda: (e := eb.describe_environments(EnvironmentNames=[f"{prefix}-blue"])["Environments"][0])["Status"] == "Ready" and e["Health"] == "Green",
        timeout=90,
        step=0.3,
        what="the application Green",
    )
    status, endpoint = stack.control("GET", f"/_local/eb/environments/{prefix}-blue/endpoint")
    assert status == 200, endpoint
    state["app_port"] = endpoint["port"]
    # A write after the snapshot: the restore cannot have it.
    products = _get(state["app_port"], "/api/products")[1]["products"]
    customers = _get(state["app_port"], "/api/customers?limit=1")[1]["customers"]
    status, created = _post(state["app_port"], "/api/orders", {"customer_id": customers[0]["id"], "items": [{"product_id": products[0]["id"], "quantity": 1}]})
    assert status == 201, created
    state["order_after"] = created["order"]["id"]
    state["extra"] = {
        "platform_env": env,
        "restore_recovery_point": "latest_snapshot",
        "restore_key_tables": [{"name": "orders", "timestamp_column": "created_at"}],
        "restore_canary_table": "fastier_dr.canary",
        "restore_wait_timeout": 300,
    }
    try:
        yield state
    finally:
        eb.delete_application(ApplicationName=prefix, TerminateEnvByForce=True)
        for found in rds.describe_db_instances()["DBInstances"]:
            if found["DBInstanceIdentifier"].startswith(f"{prefix}-"):
                stack.drop_db_instance(found["DBInstanceIdentifier"])


@pytest.fixture(scope="module")
def runs(stack: Any, platform: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    reports = tmp_path_factory.mktemp("restore-reports")
    extra = platform["extra"]
    confirmed = {**extra, "restore_confirm": platform["prefix"], "restore_report_dir": str(reports)}
    out: dict[str, Any] = {"reports": reports}
    out["refused"] = run_playbook({**stack.env(), "LOCAL_AWS_ENDPOINT": NO_AWS}, PLAYBOOK, extra)
    out["check"] = run_playbook(stack.env(), PLAYBOOK, extra, check=True)
    out["instances_after_check"] = _instances(stack, platform["prefix"])
    out["real"] = run_playbook(stack.env(), PLAYBOOK, confirmed)
    out["again"] = run_playbook(stack.env(), PLAYBOOK, confirmed)
    return out


def _instances(stack: Any, prefix: str) -> dict[str, dict[str, Any]]:
    return {i["DBInstanceIdentifier"]: i for i in stack.client("rds").describe_db_instances()["DBInstances"] if i["DBInstanceIdentifier"].startswith(prefix)}


def test_a_real_restore_without_its_confirmation_is_refused_before_any_aws_call(runs, platform):
    refused = runs["refused"]
    ran = [t for t in refused.tasks() if not t.get("skipped")]
    assert refused.rc != 0
    assert {t["action"] for t in ran} == {"ansible.builtin.assert"}, [t["name"] for t in ran]  # the input checks, no AWS call
    [failed] = [t for t in ran if t.get("failed")]
    assert f"restore_confirm={platform['prefix']}" in failed["msg"], failed["msg"]


def test_check_mode_finds_the_recovery_point_and_changes_nothing(runs, platform):
    check = runs["check"]
    assert check.rc == 0, check.explain()
    assert check.changed == 0, check.changed_tasks()
    assert list(runs["instances_after_check"]) == [f"{platform['prefix']}-db"]
    said = check.task("Say what this run does")["msg"]
    assert f"would restore snapshot {platform['prefix']}-nightly" in said, said


def test_the_app_is_back_on_the_restored_database_without_the_write_after_the_snapshot(stack, runs, platform):
    real = runs["real"]
    assert real.rc == 0, real.explain()
    prefix = platform["prefix"]
    instances = _instances(stack, prefix)
    live = instances[f"{prefix}-db"]
    [replaced] = [name for name in instances if name.startswith(f"{prefix}-db-replaced-")]
    assert sorted(instances) == sorted([f"{prefix}-db", replaced])  # no -restoring left
    assert live["Endpoint"]["Port"] != platform["live_port"]  # another server: the restored one
    assert live["DeletionProtection"] is True and live["StorageEncrypted"] is not None
    tags = {t["Key"]: t["Value"] for t in stack.client("rds").list_tags_for_resource(ResourceName=live["DBInstanceArn"])["TagList"]}
    assert tags["fastier:restored-from"] == f"latest_snapshot:{prefix}-nightly"
    # The replaced instance is kept, deletion-protected, with its data (never deleted by the runbook).
    assert instances[replaced]["DeletionProtection"] is True
    assert instances[replaced]["Endpoint"]["Port"] == platform["live_port"]

    # Through the app: it answers from the restored instance ...
    port = platform["app_port"]
    status, version = wait_until(
        lambda: (answer := _get(port, "/version"))[1].get("database", "").endswith(f":{live['Endpoint']['Port']}/fastier") and answer,
        timeout=90,
        step=0.3,
        what="the app on the restored database",
    )
    assert status == 200, version
    status, health = _get(port, "/healthz")
    assert (status, health["status"]) == (200, "ok"), health
    # ... the orders of the snapshot are there, the one taken after it is not.
    for order in platform["orders_before"]:
        assert _get(port, f"/api/orders/{order}")[0] == 200, order
    assert _get(port, f"/api/orders/{platform['order_after']}")[0] == 404
    secret = json.loads(stack.client("secretsmanager").get_secret_value(SecretId=f"{prefix}/database/master")["SecretString"])
    assert (secret["host"], secret["port"], secret["password"]) == ("127.0.0.1", live["Endpoint"]["Port"], PASSWORD)
    settings = stack.client("elasticbeanstalk").describe_configuration_settings(ApplicationName=prefix, EnvironmentName=f"{prefix}-blue")
    env_vars = {o["OptionName"]: o["Value"] for o in settings["ConfigurationSettings"][0]["OptionSettings"] if o["Namespace"] == ENV_NS}
    assert (env_vars["DB_HOST"], env_vars["DB_PORT"]) == ("127.0.0.1", str(live["Endpoint"]["Port"]))


def test_the_report_measures_the_rto_and_the_rpo_and_holds_no_secret(runs, platform):
    out = runs["real"].outputs("restore_outputs")
    assert out["verified"] is True
    assert out["recovery_point"]["snapshot"] == f"{platform['prefix']}-nightly"
    assert out["rto_s"] > 0 and out["restore_s"] > 0
    assert out["rpo_s"] > 1  # declared minus the newest row restored: the rows of the snapshot, not the later order
    [orders] = out["tables"]
    assert (orders["name"], orders["restored_rows"], orders["restored_after_recovery_point"]) == ("orders", len(platform["orders_before"]), 0)
    assert out["canary"]["verified"] is True
    assert out["application_environment"] == f"{platform['prefix']}-blue" and out["application_health"] == "Green"
    [report_json] = runs["reports"].glob("restore-*.json")
    [report_md] = runs["reports"].glob("restore-*.md")
    assert json.loads(report_json.read_text())["rpo_s"] == out["rpo_s"]
    markdown = report_md.read_text()
    assert f"RPO (declared minus the newest data restored, {out['newest_data']}) | {out['rpo_s']} s" in markdown
    for text in (report_json.read_text(), markdown, runs["real"].stdout):
        assert PASSWORD not in text


def test_a_second_run_changes_nothing(runs, platform):
    again = runs["again"]
    assert again.rc == 0, again.explain()
    assert again.changed == 0, again.changed_tasks()
    assert "already is the restore of" in again.task("Say what this run does")["msg"]
    assert len(list(Path(runs["reports"]).glob("restore-*.json"))) == 1
