"""playbooks/report.yml against the local AWS: the report of what exists, priced.

A few tiers are made cheaply with boto3 (a VPC with subnets and a NAT
gateway, two of the three buckets, a Multi-AZ PostgreSQL instance, a
Beanstalk application with its live environment, a backup vault in the DR
region); DNS, CDN, pipeline and alarms are not made. The report must draw
exactly what exists, write real SVG and PNG images, add its cost lines up to
its totals, change nothing on a second run, and halve the database instance
line when the inventory turns Multi-AZ off (check mode first: nothing
written).
"""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.playbooks import ROOT, ensure_collection, run_playbook

PLAYBOOK = ROOT / "playbooks/report.yml"
SOLUTION_STACK = "64bit Amazon Linux 2023 v4.6.0 running Python 3.11"


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


def _make_platform(stack: Any, env: str) -> dict[str, Any]:
    prefix = f"fastier-{env}"
    ec2 = stack.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.61.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": f"{prefix}-vpc"}]}])["Vpc"]
    subnets = {}
    for index, (tier, az) in enumerate((tier, az) for tier in ("public", "app", "db") for az in ("us-east-1a", "us-east-1b")):
        subnet = ec2.create_subnet(
            VpcId=vpc["VpcId"],
            CidrBlock=f"10.61.{index}.0/24",
            AvailabilityZone=az,
            TagSpecifications=[{"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": f"{prefix}-{tier}-{az[-1]}"}]}],
        )["Subnet"]
        subnets.setdefault(tier, []).append(subnet["SubnetId"])
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.create_nat_gateway(SubnetId=subnets["public"][0], AllocationId=eip)

    account = stack.client("sts").get_caller_identity()["Account"]
    s3 = stack.client("s3")
    for kind in ("artifacts", "backups"):  # no static bucket
        s3.create_bucket(Bucket=f"{prefix}-{kind}-{account}")

    stack.client("rds").create_db_instance(
        DBInstanceIdentifier=f"{prefix}-db",
        Engine="postgres",
        EngineVersion="15",
        DBInstanceClass="db.t4g.micro",
        AllocatedStorage=20,
        StorageType="gp3",
        MultiAZ=True,
        BackupRetentionPeriod=7,
        MasterUsername="fastier",
        MasterUserPassword="report-test-only-password",
    )

    eb = stack.client("elasticbeanstalk")
    eb.create_application(ApplicationName=prefix)
    eb.create_environment(
        ApplicationName=prefix,
        EnvironmentName=f"{prefix}-blue",
        CNAMEPrefix=prefix,
        SolutionStackName=SOLUTION_STACK,
        OptionSettings=[
            {"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "1"},
            {"Namespace": "aws:autoscaling:asg", "OptionName": "MaxSize", "Value": "3"},
            {"Namespace": "aws:ec2:instances", "OptionName": "InstanceTypes", "Value": "t3.micro"},
        ],
    )
    stack.client("backup", region="us-west-2").create_backup_vault(BackupVaultName=f"{prefix}-dr")
    deadline = time.monotonic() + 60
    while eb.describe_environments(EnvironmentNames=[f"{prefix}-blue"])["Environments"][0]["Status"] != "Ready":
        assert time.monotonic() < deadline, "the environment did not become Ready"
        time.sleep(0.5)
    return {"prefix": prefix, "account": account}


def _read(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _line(cost: dict[str, Any], tier: str, starts: str) -> dict[str, Any]:
    [line] = [entry for entry in cost["lines"] if entry["tier"] == tier and entry["item"].startswith(starts)]
    return line


@pytest.fixture(scope="module")
def report(stack, tmp_path_factory) -> dict[str, Any]:
    env = f"r{uuid.uuid4().hex[:8]}"
    made = _make_platform(stack, env)
    folder = tmp_path_factory.mktemp("report") / "out"
    extra = {
        "platform_env": env,
        "dns_domain": f"{env}.report.example",
        "report_dir": str(folder),
        "beanstalk_instance_type": "t3.micro",
        "beanstalk_min_size": 1,
        "beanstalk_max_size": 3,
        "database_instance_class": "db.t4g.micro",
        "database_multi_az": True,
        "database_allocated_storage": 20,
        "database_storage_type": "gp3",
        "database_backup_retention_days": 7,
    }
    runs = {"first": run_playbook(stack.env(), PLAYBOOK, extra)}
    runs["first_files"] = _read(folder) if folder.exists() else {}
    # Each tier read costs a few module runs: the later runs read the tiers that
    # were made, and the cdn one that was not (the first run read every tier).
    extra["report_tiers"] = ["network", "storage", "database", "beanstalk", "cdn"]
    runs["second"] = run_playbook(stack.env(), PLAYBOOK, extra)
    runs["second_files"] = _read(folder)
    single = {**extra, "database_multi_az": False}
    runs["single_check"] = run_playbook(stack.env(), PLAYBOOK, single, check=True)
    runs["single_check_files"] = _read(folder)
    runs["single"] = run_playbook(stack.env(), PLAYBOOK, single)
    runs["single_files"] = _read(folder)
    return {**made, "env": env, "folder": folder, **runs}


def test_report_runs_writes_real_images_and_changes_nothing_the_second_time(report):
    first = report["first"]
    assert first.rc == 0, first.explain()
    assert first.changed == 1, first.changed_tasks()  # the report's files; every read is read-only
    files = report["first_files"]
    assert sorted(files) == ["architecture.json", "architecture.png", "architecture.svg", "cost.json", "report.html", "report.md"]
    assert files["architecture.png"].startswith(b"\x89PNG\r\n\x1a\n")
    assert b"<svg" in files["architecture.svg"][:2000]
    assert b"data:image/png;base64," in files["architecture.svg"]  # icons inlined: the SVG stands alone
    assert b"/site-packages/" not in files["architecture.svg"]
    assert files["report.html"].startswith(b"<!DOCTYPE html>")
    assert b"data:image/png;base64," in files["report.html"]

    second = report["second"]
    assert second.rc == 0, second.explain()
    assert second.changed == 0, second.changed_tasks()
    assert report["second_files"] == files


def test_diagram_holds_every_tier_that_exists_and_none_that_does_not(report):
    model = json.loads(report["first_files"]["architecture.json"])
    assert model["tiers"] == ["network", "storage", "database", "app", "dr"]
    kinds = sorted(node["kind"] for node in model["nodes"])
    for absent in ("route53", "cloudfront", "codepipeline", "codebuild", "cloudwatch", "sns"):
        assert absent not in kinds
    assert kinds.count("s3_bucket") == 2
    buckets = {node["attrs"]["bucket_kind"] for node in model["nodes"] if node["kind"] == "s3_bucket"}
    assert buckets == {"artifacts", "backups"}
    assert {"rds_primary", "rds_standby", "nat_gateway", "backup_vault", "beanstalk_environment", "alb", "secret"} - set(kinds) == {"secret"}
    [env] = [node for node in model["nodes"] if node["kind"] == "beanstalk_environment"]
    assert env["attrs"] == {"role": "live", "name": f"fastier-{report['env']}-blue"}
    assert "1 running (min 1, max 3) x t3.micro" in env["label"]
    [primary] = [node for node in model["nodes"] if node["kind"] == "rds_primary"]
    assert "db.t4g.micro" in primary["label"]
    edges = {(edge["from"], edge["to"]) for edge in model["edges"]}
    assert ("db_primary", "db_standby") in edges
    assert ("users", "alb_0") in edges  # no DNS tier: users reach the load balancer
    assert {node["icon"] for node in model["nodes"]} >= {"aws.database.RDSPostgresqlInstance", "aws.compute.ElasticBeanstalk"}
    dr = [c for c in model["clusters"] if c["id"] == "dr"]
    assert dr and dr[0]["label"] == "DR region us-west-2"


def test_cost_totals_are_the_sum_of_their_lines_and_follow_the_inventory(report):
    cost = json.loads(report["first_files"]["cost.json"])
    names = [s["name"] for s in cost["scenarios"]]
    assert names == ["minimum", "typical", "maximum"]
    for name in names:
        lines = sum(Decimal(line["monthly"][name]) for line in cost["lines"] if line["priced"])
        assert Decimal(cost["totals"][name]) == lines
        assert sum(Decimal(tier[name]) for tier in cost["tiers"].values()) == lines
    assert {line["tier"] for line in cost["lines"]} == {"network", "storage", "database", "app", "dr"}
    ec2 = _line(cost, "app", "EC2 t3.micro")
    assert ec2["quantity"] == {"minimum": "730", "typical": "1460", "maximum": "2190"}  # min 1, typical 2, max 3
    assert (ec2["unit_price"], ec2["monthly"]) == ("0.0104", {"minimum": "7.59", "typical": "15.18", "maximum": "22.78"})
    multi = _line(cost, "database", "RDS postgres db.t4g.micro")
    assert multi["priced"] and "Multi-AZ" in multi["item"]

    check = report["single_check"]
    assert check.rc == 0, check.explain()
    assert check.changed == 1, check.changed_tasks()  # it would rewrite the cost files...
    assert report["single_check_files"] == report["second_files"]  # ...but check mode wrote nothing

    single = report["single"]
    assert single.rc == 0, single.explain()
    assert single.changed == 1, single.changed_tasks()
    after = json.loads(report["single_files"]["cost.json"])
    half = _line(after, "database", "RDS postgres db.t4g.micro")
    assert "Single-AZ" in half["item"]
    for name in names:
        assert Decimal(half["monthly"][name]) * 2 == Decimal(multi["monthly"][name])
        assert Decimal(after["totals"][name]) < Decimal(cost["totals"][name])
        assert Decimal(after["totals"][name]) == sum(Decimal(line["monthly"][name]) for line in after["lines"] if line["priced"])
    outputs = single.outputs("report_outputs")
    assert "database Multi-AZ: live True, inventory False" in outputs["differences"]
    assert report["single_files"]["architecture.png"] == report["first_files"]["architecture.png"]  # the live state did not change
    assert b"Multi-AZ: live True, inventory False" in report["single_files"]["report.md"]
