"""The network role through ansible-playbook against the local AWS.

Four-step change test with flow logs enabled (check on an empty account, real,
check again, real again); between the real run and the second check the
db_access entry point opens the database to a migration source, so the second
check and real runs prove the converge keeps those temporary rules and leaves
the flow logs alone. Then every resource
and security setting read back with boto3 (and the facts entry point), the
lifecycle (db_access closes the temporary rules; one converge to NAT mode
single without flow logs or extra database sources; absent twice), and bad
inventory values refused before any AWS call.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.playbooks import ROOT, ensure_collection, run_playbook

PLAYBOOK = ROOT / "tests/integration/playbooks/role_network.yml"
# An endpoint nothing listens on: a run that reaches AWS fails with a connection error.
NO_AWS = "http://127.0.0.1:9"
MIGRATION_SOURCE = "198.51.100.7/32"
# Opened and closed by the db_access entry point (what playbooks/migrate.yml does).
DB_ACCESS_CIDR = "198.51.100.9/32"
DB_ACCESS_DESC = "TEMPORARY migration source (playbooks/migrate.yml)"
DB_GROUP_TASK = "Security group of the database - only the app servers (and temporary migration sources), no other egress"
FLOW_LOGS_TASK = "fastier.platform.network : Present | VPC flow logs to CloudWatch Logs (one CloudFormation stack; removed when disabled)"


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


def _name(tags: list[dict[str, str]] | None) -> str:
    return {t["Key"]: t["Value"] for t in tags or []}.get("Name", "")


def _vpcs(ec2: Any, prefix: str) -> list[dict[str, Any]]:
    return ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{prefix}-vpc"]}])["Vpcs"]


def _rules(permissions: list[dict[str, Any]]) -> set[tuple]:
    """Security group permissions as comparable (proto, from, to, source, description) rows."""
    rows = set()
    for p in permissions:
        key = (p["IpProtocol"], p.get("FromPort"), p.get("ToPort"))
        rows |= {(*key, r["CidrIp"], r.get("Description")) for r in p.get("IpRanges", [])}
        rows |= {(*key, g["GroupId"], g.get("Description")) for g in p.get("UserIdGroupPairs", [])}
        rows |= {(*key, r["CidrIpv6"], r.get("Description")) for r in p.get("Ipv6Ranges", [])}
    return rows


# Every knob explicit, so the local inventory's values do not matter here.
BASE = {
    "network_vpc_cidr": "10.0.0.0/16",
    "network_azs": [],
    "network_public_subnet_cidrs": ["10.0.0.0/24", "10.0.1.0/24"],
    "network_app_subnet_cidrs": ["10.0.16.0/20", "10.0.32.0/20"],
    "network_db_subnet_cidrs": ["10.0.64.0/24", "10.0.65.0/24"],
    "network_nat_mode": "per_az",
    "network_app_port": 80,
    "network_db_port": 5432,
    "network_alb_ingress_cidrs": ["0.0.0.0/0"],
    "network_alb_ports": [80, 443],
    "network_flow_logs_enabled": False,
    "network_flow_logs_traffic_type": "ALL",
    "network_flow_logs_retention_days": 90,
}


@pytest.fixture(scope="module")
def converged(stack) -> dict[str, Any]:
    """One environment (flow logs on) through the four steps, with the database opened to a
    migration source (entry point db_access, as playbooks/migrate.yml does) between the real
    run and the second check; the tests below read it, the last one tears it down."""
    env = f"n{uuid.uuid4().hex[:8]}"
    extra = {**BASE, "platform_env": env, "network_db_extra_ingress_cidrs": [MIGRATION_SOURCE], "network_flow_logs_enabled": True}
    ec2 = stack.client("ec2")
    prefix = f"fastier-{env}"
    runs = {"first_check": run_playbook(stack.env(), PLAYBOOK, extra, check=True)}
    runs["vpcs_after_check"] = _vpcs(ec2, prefix)
    runs["real"] = run_playbook(stack.env(), PLAYBOOK, extra)
    # (with the same inventory as the converges: the entry point keeps the database group's other rules as configured)
    runs["opened"] = run_playbook(stack.env(), PLAYBOOK, {**extra, "it_entry_point": "db_access", "network_db_access_cidrs": [DB_ACCESS_CIDR]})
    runs["second_check"] = run_playbook(stack.env(), PLAYBOOK, extra, check=True)
    runs["second"] = run_playbook(stack.env(), PLAYBOOK, extra)
    return {"env": env, "prefix": prefix, "extra": extra, **runs}


def test_network_four_step_change_test(converged):
    first_check = converged["first_check"]
    assert first_check.rc == 0, first_check.explain()
    assert first_check.task("fastier.platform.network : Present | VPC")["changed"] is True
    assert converged["vpcs_after_check"] == [], "check mode created a VPC"
    assert first_check.outputs("network_outputs")["vpc_id"] is None

    real = converged["real"]
    assert real.rc == 0, real.explain()
    assert real.changed > 0
    assert real.task(FLOW_LOGS_TASK)["changed"] is True

    # playbooks/migrate.yml opens the database to the legacy server (entry point db_access): only that group changes ...
    opened = converged["opened"]
    assert opened.rc == 0, opened.explain()
    assert opened.outputs("network_outputs")["db_migration_cidrs"] == [DB_ACCESS_CIDR]
    assert opened.outputs("network_outputs")["db_migration_egress"] == [{"cidr": DB_ACCESS_CIDR, "port": 5432}]
    assert opened.changed_tasks(without_role=True) == [DB_GROUP_TASK]

    # ... and a converge meanwhile (check, then real) keeps those rules and leaves the flow logs as they are.
    second_check = converged["second_check"]
    assert second_check.rc == 0, second_check.explain()
    # (the flow logs task checks through a CloudFormation change set: one without changes, as on AWS; local_aws fix 9)
    assert second_check.changed == 0, second_check.changed_tasks()

    second = converged["second"]
    assert second.rc == 0, second.explain()
    assert second.changed == 0, second.changed_tasks()
    assert second.outputs("network_outputs")["db_migration_cidrs"] == [DB_ACCESS_CIDR]
    assert second.outputs("network_outputs")["db_migration_egress"] == [{"cidr": DB_ACCESS_CIDR, "port": 5432}]


def test_network_resources_and_security_groups_are_exactly_as_designed(stack, converged):
    prefix, extra, second = converged["prefix"], converged["extra"], converged["second"]
    assert second.rc == 0, second.explain()
    ec2 = stack.client("ec2")

    # -- the VPC and its subnets ---------------------------------------------------------
    [vpc] = _vpcs(ec2, prefix)
    vpc_id = vpc["VpcId"]
    assert vpc["CidrBlock"] == "10.0.0.0/16"
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"] is True
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    by_name = {_name(s.get("Tags")): s for s in subnets}
    azs = sorted({s["AvailabilityZone"] for s in subnets})
    assert len(azs) == 2
    expected = {
        "public": ["10.0.0.0/24", "10.0.1.0/24"],
        "app": ["10.0.16.0/20", "10.0.32.0/20"],
        "db": ["10.0.64.0/24", "10.0.65.0/24"],
    }
    for tier, cidrs in expected.items():
        for az, cidr in zip(azs, cidrs, strict=True):
            subnet = by_name[f"{prefix}-{tier}-{az}"]
            assert subnet["CidrBlock"] == cidr
            assert subnet["MapPublicIpOnLaunch"] is False
    assert len(subnets) == 6

    # -- gateways and routes -----------------------------------------------------------------
    [igw] = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])["InternetGateways"]
    assert _name(igw.get("Tags")) == f"{prefix}-igw"
    nats = ec2.describe_nat_gateways(Filter=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "state", "Values": ["available"]}])["NatGateways"]
    nat_by_az = {}
    for nat in nats:
        subnet = next(s for s in subnets if s["SubnetId"] == nat["SubnetId"])
        assert _name(subnet.get("Tags")).startswith(f"{prefix}-public-"), "a NAT gateway outside the public subnets"
        assert _name(nat.get("Tags")) == f"{prefix}-nat-{subnet['AvailabilityZone']}"
        nat_by_az[subnet["AvailabilityZone"]] = nat["NatGatewayId"]
    assert sorted(nat_by_az) == azs, "per_az: one NAT gateway in each zone"

    tables = {_name(t.get("Tags")): t for t in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]}

    def routes(name: str) -> dict[str, str]:
        return {r["DestinationCidrBlock"]: r.get("GatewayId") or r.get("NatGatewayId") for r in tables[name]["Routes"]}

    def associated(name: str) -> set[str]:
        return {a["SubnetId"] for a in tables[name]["Associations"] if a.get("SubnetId")}

    assert routes(f"{prefix}-public") == {"10.0.0.0/16": "local", "0.0.0.0/0": igw["InternetGatewayId"]}
    assert associated(f"{prefix}-public") == {by_name[f"{prefix}-public-{az}"]["SubnetId"] for az in azs}
    for az in azs:
        assert routes(f"{prefix}-app-{az}") == {"10.0.0.0/16": "local", "0.0.0.0/0": nat_by_az[az]}
        assert associated(f"{prefix}-app-{az}") == {by_name[f"{prefix}-app-{az}"]["SubnetId"]}
    assert routes(f"{prefix}-db") == {"10.0.0.0/16": "local"}, "the db subnets must have no route out of the VPC"
    assert associated(f"{prefix}-db") == {by_name[f"{prefix}-db-{az}"]["SubnetId"] for az in azs}

    # -- security groups, exactly ----------------------------------------------------------
    groups = {g["GroupName"]: g for g in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]}
    alb, app, db = groups[f"{prefix}-alb"], groups[f"{prefix}-app"], groups[f"{prefix}-db"]
    assert _rules(alb["IpPermissions"]) == {
        ("tcp", 80, 80, "0.0.0.0/0", "clients of the load balancer"),
        ("tcp", 443, 443, "0.0.0.0/0", "clients of the load balancer"),
    }
    assert _rules(alb["IpPermissionsEgress"]) == {("tcp", 80, 80, "10.0.0.0/16", "to the application servers")}
    assert _rules(app["IpPermissions"]) == {("tcp", 80, 80, alb["GroupId"], "from the load balancer")}
    assert _rules(app["IpPermissionsEgress"]) == {("-1", None, None, "0.0.0.0/0", None)}
    # (the db_access rules opened in the fixture are still there; the lifecycle test checks the group without them)
    assert _rules(db["IpPermissions"]) == {
        ("tcp", 5432, 5432, app["GroupId"], "from the application servers"),
        ("tcp", 5432, 5432, MIGRATION_SOURCE, "TEMPORARY migration source (network_db_extra_ingress_cidrs)"),
        ("tcp", 5432, 5432, DB_ACCESS_CIDR, DB_ACCESS_DESC),
    }
    assert _rules(db["IpPermissionsEgress"]) == {("tcp", 5432, 5432, DB_ACCESS_CIDR, DB_ACCESS_DESC)}, (
        "the database's only egress: the open migration's replication connection"
    )
    assert _rules(groups["default"]["IpPermissions"]) == set()
    assert _rules(groups["default"]["IpPermissionsEgress"]) == set(), "the default security group must allow nothing [EC2.2]"
    for group in (alb, app, db):
        assert _name(group.get("Tags")) == group["GroupName"]

    # -- flow logs [EC2.6] ------------------------------------------------------------------
    [flow_log] = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])["FlowLogs"]
    assert flow_log["TrafficType"] == "ALL"
    assert flow_log["LogDestinationType"] == "cloud-watch-logs"
    assert flow_log["LogGroupName"] == f"/vpc/{prefix}/flow-logs"
    [log_group] = stack.client("logs").describe_log_groups(logGroupNamePrefix=f"/vpc/{prefix}/flow-logs")["logGroups"]
    assert log_group["retentionInDays"] == 90
    live_stacks = stack.client("cloudformation").list_stacks(StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE"])["StackSummaries"]
    assert f"{prefix}-flow-logs" in [summary["StackName"] for summary in live_stacks]

    # -- what the role publishes -----------------------------------------------------------
    out = second.outputs("network_outputs")
    assert out["vpc_id"] == vpc_id
    assert out["azs"] == azs
    for tier in ("public", "app", "db"):
        assert out[f"{tier}_subnet_ids"] == [by_name[f"{prefix}-{tier}-{az}"]["SubnetId"] for az in azs]
    assert (out["alb_security_group_id"], out["app_security_group_id"], out["db_security_group_id"]) == (alb["GroupId"], app["GroupId"], db["GroupId"])
    assert sorted(out["nat_gateway_ids"]) == sorted(nat_by_az.values())

    # the facts entry point alone finds the same network
    facts = run_playbook(stack.env(), PLAYBOOK, {**extra, "it_entry_point": "facts"})
    assert facts.rc == 0, facts.explain()
    assert facts.changed == 0
    assert facts.outputs("network_outputs") == out


def test_network_lifecycle_flow_logs_nat_mode_temporary_rule_and_absent(stack, converged):
    """Runs last: it changes the converged environment and removes it."""
    prefix = converged["prefix"]
    base = {**BASE, "platform_env": converged["env"]}
    ec2 = stack.client("ec2")
    cfn = stack.client("cloudformation")

    # The migration is over: playbooks/migrate.yml closes the database again (entry point db_access) ...
    # (with the same inventory as the converges: the entry point keeps the database group's other rules as configured)
    closed = run_playbook(
        stack.env(),
        PLAYBOOK,
        {**converged["extra"], "it_entry_point": "db_access", "network_db_access_cidrs": [DB_ACCESS_CIDR], "network_db_access_state": "closed"},
    )
    assert closed.rc == 0, closed.explain()
    assert closed.outputs("network_outputs")["db_migration_cidrs"] == [] and closed.outputs("network_outputs")["db_migration_egress"] == []
    assert closed.changed_tasks(without_role=True) == [DB_GROUP_TASK]
    [vpc] = _vpcs(ec2, prefix)
    vpc_id = vpc["VpcId"]
    out = closed.outputs("network_outputs")
    [db_group] = ec2.describe_security_groups(GroupIds=[out["db_security_group_id"]])["SecurityGroups"]
    assert _rules(db_group["IpPermissions"]) == {
        ("tcp", 5432, 5432, out["app_security_group_id"], "from the application servers"),
        ("tcp", 5432, 5432, MIGRATION_SOURCE, "TEMPORARY migration source (network_db_extra_ingress_cidrs)"),
    }
    assert _rules(db_group["IpPermissionsEgress"]) == set(), "the database needs no egress rule"

    # ... and one converge: one NAT gateway, no extra database source, no flow logs
    after = run_playbook(stack.env(), PLAYBOOK, {**base, "network_nat_mode": "single"})
    assert after.rc == 0, after.explain()
    assert after.task(FLOW_LOGS_TASK)["changed"] is True
    nats = ec2.describe_nat_gateways(Filter=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "state", "Values": ["available", "pending"]}])["NatGateways"]
    assert len(nats) == 1
    out = after.outputs("network_outputs")
    tables = {_name(t.get("Tags")): t for t in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]}
    for az in out["azs"]:
        nat_routes = {r.get("NatGatewayId") for r in tables[f"{prefix}-app-{az}"]["Routes"] if r["DestinationCidrBlock"] == "0.0.0.0/0"}
        assert nat_routes == {nats[0]["NatGatewayId"]}, "single: every app subnet leaves through the one gateway"
    [db_group] = ec2.describe_security_groups(GroupIds=[out["db_security_group_id"]])["SecurityGroups"]
    assert _rules(db_group["IpPermissions"]) == {("tcp", 5432, 5432, out["app_security_group_id"], "from the application servers")}
    assert _rules(db_group["IpPermissionsEgress"]) == set(), "the database needs no egress rule"
    # Disabled: the stack (log group, role, flow log) is deleted. (moto's CloudFormation
    # leaves the FlowLog resource behind on stack deletion; AWS deletes it.)
    live_stacks = cfn.list_stacks(StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE"])["StackSummaries"]
    assert f"{prefix}-flow-logs" not in [summary["StackName"] for summary in live_stacks]

    gone = run_playbook(stack.env(), PLAYBOOK, {**base, "network_state": "absent"})
    assert gone.rc == 0, gone.explain()
    assert _vpcs(ec2, prefix) == []
    assert ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"] == []
    live = ec2.describe_nat_gateways(Filter=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "state", "Values": ["available", "pending"]}])
    assert live["NatGateways"] == []
    assert gone.outputs("network_outputs")["vpc_id"] is None
    gone_again = run_playbook(stack.env(), PLAYBOOK, {**base, "network_state": "absent"})
    assert gone_again.rc == 0, gone_again.explain()
    assert gone_again.changed == 0, gone_again.changed_tasks()


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"network_nat_mode": "double"}, "network_nat_mode"),
        ({"network_flow_logs_enabled": "maybe"}, "network_flow_logs_enabled"),
        (
            {"network_public_subnet_cidrs": ["10.0.0.0/24"], "network_app_subnet_cidrs": ["10.0.16.0/20"], "network_db_subnet_cidrs": ["10.0.64.0/24"]},
            "network_public_subnet_cidrs",
        ),
        ({"network_app_subnet_cidrs": ["10.1.16.0/20", "10.0.32.0/20"]}, "network_app_subnet_cidrs[0] (10.1.16.0/20) is not inside network_vpc_cidr"),
        ({"network_db_subnet_cidrs": ["10.0.64.0/24", "10.0.0.128/25"]}, "overlaps network_db_subnet_cidrs[1]"),
        ({"network_vpc_cidr": "10.0.0.0/8"}, "network_vpc_cidr=10.0.0.0/8"),
        ({"network_public_subnet_cidrs": ["10.0.0.1/24", "10.0.1.0/24"]}, "network_public_subnet_cidrs[0]=10.0.0.1/24"),
        ({"network_db_extra_ingress_cidrs": ["0.0.0.0/0"]}, "network_db_extra_ingress_cidrs"),
        ({"network_db_port": 70000}, "network_db_port"),
    ],
)
def test_bad_network_values_are_refused_before_any_aws_call(stack, bad, named):
    env = {**stack.env(), "LOCAL_AWS_ENDPOINT": NO_AWS}
    run = run_playbook(env, PLAYBOOK, {**BASE, "platform_env": "refused", **bad})
    assert run.rc != 0
    failed = [t for t in run.tasks() if t.get("failed")]
    assert len(failed) == 1, run.explain()
    assert named in failed[0]["msg"], failed[0]["msg"]
    ran = [t["name"] for t in run.tasks() if not t.get("skipped")]
    assert all(name == "Network role" or " : Validat" in name for name in ran), ran
