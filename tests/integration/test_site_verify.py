"""molecule/default/verify.yml fails when a security setting is missing.

The cheap tiers (network, storage) of ``playbooks/site.yml`` are converged once
for a unique ``platform_env``; verify.yml passes on them with the same tags.
Then one setting at a time is weakened behind the roles' back with boto3, as
a person in the console would, and verify.yml must fail on the assertion that
names that tier and setting; the setting is restored before the next case.
The database case converges that tier too (a real PostgreSQL on loopback) and
turns deletion protection off. At the end the database instance is deleted
(its server stops); ``playbooks/teardown.yml`` is tested by molecule's
default scenario.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from local_aws.postgres import free_port
from tests.playbooks import ROOT, PlaybookRun, ensure_collection, run_playbook

SITE = ROOT / "playbooks/site.yml"
VERIFY = ROOT / "molecule/default/verify.yml"
TIERS = ("network", "storage", "database", "beanstalk", "dns", "cdn", "pipeline", "observability")


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


@dataclass
class Platform:
    """One platform_env of the site, converged for the cheap tiers."""

    stack: Any
    env: str
    extra: dict[str, Any]

    @property
    def prefix(self) -> str:
        return f"fastier-{self.env}"

    def client(self, service: str) -> Any:
        return self.stack.client(service)

    def site(self, tags: list[str]) -> PlaybookRun:
        return run_playbook(self.stack.env(), SITE, self.extra, tags=tags)

    def verify(self, tags: list[str]) -> PlaybookRun:
        return run_playbook(self.stack.env(), VERIFY, self.extra, tags=tags)

    def bucket(self, kind: str) -> str:
        account = self.client("sts").get_caller_identity()["Account"]
        return f"{self.prefix}-{kind}-{account}"

    def tagged(self, describe: Callable[..., dict[str, Any]], key: str, name: str) -> dict[str, Any]:
        """The one resource ``describe`` finds by its Name tag (every resource of the roles has one)."""
        [found] = describe(Filters=[{"Name": "tag:Name", "Values": [name]}])[key]
        return found


@pytest.fixture(scope="module")
def platform(stack) -> Iterator[Platform]:
    env = f"sv{uuid.uuid4().hex[:6]}"
    port = free_port()
    extra = {
        "platform_env": env,
        # Local RDS runs each instance's PostgreSQL on 127.0.0.1 at this port:
        # one nobody else uses (the database case).
        "network_db_port": port,
        "database_port": port,
    }
    current = Platform(stack, env, extra)
    converge = current.site(["network", "storage"])
    assert converge.rc == 0, converge.explain()
    try:
        yield current
    finally:
        # playbooks/teardown.yml is molecule default's destroy step; here only the
        # database's server must go (the stack's state goes with the stack).
        stack.drop_db_instance(f"{current.prefix}-db")


def _ran(run: PlaybookRun) -> list[str]:
    return [t["name"] for t in run.tasks() if not t.get("skipped")]


def _failed(run: PlaybookRun) -> list[dict[str, Any]]:
    return [t for t in run.tasks() if t.get("failed")]


def test_verify_passes_on_the_converged_tiers_and_tags_select_them(platform):
    run = platform.verify(["network", "storage"])
    assert run.rc == 0, run.explain()
    ran = _ran(run)
    # Every assertion of the two tiers ran (and passed); no other tier was looked at.
    for name in (
        "Network | Route tables - public via the internet gateway, app via NAT, db without any route out of the VPC",
        "Network | Security groups - ALB from the world on 80/443 only; app from the ALB only; database from the app only",
        "Storage | Block public access on every bucket [S3.1, S3.8]",
        "Storage | Every bucket's policy denies requests without TLS [S3.5]",
        "Storage | Versioning on every bucket [S3.14]",
        "Storage | Lifecycle rules on the backups bucket - aging backups to cheaper classes, old versions expire [S3.13]",
    ):
        assert name in ran, ran
    others = [n for n in ran if n.split(" | ")[0].lower() in TIERS[2:]]
    assert others == [], others

    only_storage = _ran(platform.verify(["storage"]))
    assert [n for n in only_storage if n.startswith("Network |")] == []
    assert "Storage | Versioning on every bucket [S3.14]" in only_storage


# --- weakenings: (tier, failing task, words of its message, weaken -> undo) --------


def _public_access_block_deleted(p: Platform) -> Callable[[], None]:
    s3, bucket = p.client("s3"), p.bucket("static")
    before = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    s3.delete_public_access_block(Bucket=bucket)
    return lambda: s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=before)


def _versioning_suspended(p: Platform) -> Callable[[], None]:
    s3, bucket = p.client("s3"), p.bucket("backups")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    return lambda: s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def _tls_only_policy_deleted(p: Platform) -> Callable[[], None]:
    s3, bucket = p.client("s3"), p.bucket("artifacts")
    before = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    assert "aws:SecureTransport" in before
    s3.delete_bucket_policy(Bucket=bucket)
    return lambda: s3.put_bucket_policy(Bucket=bucket, Policy=before)


def _backups_lifecycle_deleted(p: Platform) -> Callable[[], None]:
    s3, bucket = p.client("s3"), p.bucket("backups")
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    s3.delete_bucket_lifecycle(Bucket=bucket)
    return lambda: s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})


def _app_open_to_the_world(p: Platform) -> Callable[[], None]:
    ec2 = p.client("ec2")
    group = p.tagged(ec2.describe_security_groups, "SecurityGroups", f"{p.prefix}-app")["GroupId"]
    rule = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=rule)
    return lambda: ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=rule)


def _db_subnets_routed_to_the_internet(p: Platform) -> Callable[[], None]:
    ec2 = p.client("ec2")
    table = p.tagged(ec2.describe_route_tables, "RouteTables", f"{p.prefix}-db")["RouteTableId"]
    vpc = p.tagged(ec2.describe_vpcs, "Vpcs", f"{p.prefix}-vpc")["VpcId"]
    [igw] = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])["InternetGateways"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw["InternetGatewayId"])
    return lambda: ec2.delete_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0")


WEAKENINGS = [
    pytest.param(
        "storage",
        "Storage | Block public access on every bucket [S3.1, S3.8]",
        "storage: block public access",
        _public_access_block_deleted,
        id="static-bucket-public-access-block-deleted",
    ),
    pytest.param(
        "storage",
        "Storage | Versioning on every bucket [S3.14]",
        "storage: versioning - not enabled",
        _versioning_suspended,
        id="backups-versioning-suspended",
    ),
    pytest.param(
        "storage",
        "Storage | Every bucket's policy denies requests without TLS [S3.5]",
        "storage: TLS-only policy",
        _tls_only_policy_deleted,
        id="artifacts-tls-only-policy-deleted",
    ),
    pytest.param(
        "storage",
        "Storage | Lifecycle rules on the backups bucket - aging backups to cheaper classes, old versions expire [S3.13]",
        "storage: lifecycle rules",
        _backups_lifecycle_deleted,
        id="backups-lifecycle-deleted",
    ),
    pytest.param(
        "network",
        "Network | Security groups - ALB from the world on 80/443 only; app from the ALB only; database from the app only",
        "network: security groups",
        _app_open_to_the_world,
        id="app-security-group-open-to-0.0.0.0/0",
    ),
    pytest.param(
        "network",
        "Network | Route tables - public via the internet gateway, app via NAT, db without any route out of the VPC",
        "network: route tables",
        _db_subnets_routed_to_the_internet,
        id="db-subnets-routed-to-the-internet-gateway",
    ),
]


@pytest.mark.parametrize(("tier", "failing_task", "message", "weaken"), WEAKENINGS)
def test_verify_fails_on_the_weakened_setting(platform, tier, failing_task, message, weaken):
    undo = weaken(platform)
    try:
        run = platform.verify([tier])
    finally:
        undo()
    assert run.rc != 0, f"verify passed with a weakened {tier} setting"
    failed = _failed(run)
    assert [t["name"] for t in failed] == [failing_task], run.explain()
    assert str(failed[0].get("msg", "")).startswith(message), failed[0].get("msg")


def test_verify_fails_when_database_deletion_protection_is_lifted(platform):
    converge = platform.site(["database"])
    assert converge.rc == 0, converge.explain()
    passed = platform.verify(["database"])
    assert passed.rc == 0, passed.explain()

    # The master password is in Secrets Manager and nowhere in what the runs printed.
    secret = json.loads(platform.client("secretsmanager").get_secret_value(SecretId=f"{platform.prefix}/database/master")["SecretString"])
    assert len(secret["password"]) >= 20
    for run in (converge, passed):
        assert secret["password"] not in run.stdout + run.stderr

    rds, instance = platform.client("rds"), f"{platform.prefix}-db"
    rds.modify_db_instance(DBInstanceIdentifier=instance, DeletionProtection=False, ApplyImmediately=True)
    try:
        run = platform.verify(["database"])
    finally:
        rds.modify_db_instance(DBInstanceIdentifier=instance, DeletionProtection=True, ApplyImmediately=True)
    failed = _failed(run)
    assert [t["name"] for t in failed] == [
        "Database | Private, encrypted, Multi-AZ, deletion-protected, backed up, minor upgrades, logs exported"
        " [RDS.2, RDS.3, RDS.5, RDS.8, RDS.9, RDS.11, RDS.13]"
    ], run.explain()
    assert "deletion_protection=False" in failed[0]["msg"], failed[0]["msg"]
