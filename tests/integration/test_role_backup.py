"""The backup role through ansible-playbook against the local AWS.

The storage tier's buckets and the database tier's instance are made the cheap
way (boto3, named and tagged as those roles name and tag them; storage_outputs
passed as site.yml hands it over after the storage tier), then one
environment goes through the four-step change test (check on an empty account,
real, check again, real again) and every resource is read back with boto3: the
vaults and their keys, the plan's rules and copy action, the selection and the
service role, the DR bucket's protections, the replication and its
least-privilege role, the database's point-in-time recovery window. One
refusal run shows a bad inventory value stopped before any AWS call.

The role's deletion path runs in molecule's default scenario (teardown.yml).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_aws.postgres import free_port
from tests.integration.test_role_storage import assert_bucket_protected
from tests.playbooks import ROOT, ensure_collection, run_playbook

PLAYBOOK = ROOT / "tests/integration/playbooks/role_backup.yml"
SELECTION_TASK = "Present | Selection - the database instance and buckets by their Name tags, and the opt-in tag"
PLAN_TASK = "Present | Plan - daily rule copied to the DR vault, hourly rule kept in the primary region"
DR_BUCKET_TASK = "Present | DR bucket in the DR region - private, encrypted, versioned, TLS only, owner-enforced [S3.1 S3.5 S3.8 S3.14]"
NO_AWS = "http://127.0.0.1:9"  # nothing listens there: an AWS call would fail to connect
PRIMARY, DR = "us-east-1", "us-west-2"
KINDS = ("artifacts", "backups", "static")
# Every knob explicit (not the role's defaults), so neither the defaults nor the local inventory hide a bug.
BASE = {
    "aws_region": PRIMARY,
    "aws_dr_region": DR,
    "backup_selection_enabled": True,
    "backup_daily_schedule": "cron(30 4 ? * * *)",
    "backup_daily_retention_days": 30,
    "backup_daily_start_window_minutes": 60,
    "backup_daily_completion_window_minutes": 720,
    "backup_hourly_enabled": True,
    "backup_hourly_schedule": "cron(15 * ? * * *)",
    "backup_hourly_retention_days": 3,
    "backup_hourly_start_window_minutes": 60,
    "backup_hourly_completion_window_minutes": 150,
    "backup_hourly_copy_to_dr": False,
    "backup_dr_copy_retention_days": 21,
    "backup_schedule_timezone": "Europe/Paris",
    "backup_selection_bucket_kinds": ["artifacts", "backups"],
    "backup_rds_retention_days_min": 7,
    "backup_replication_storage_class": "GLACIER_IR",
    "backup_dr_bucket_transitions": [{"days": 60, "storage_class": "deep_archive"}],
    "backup_dr_bucket_noncurrent_expiration_days": 45,
    "backup_dr_bucket_abort_incomplete_multipart_days": 3,
    "backup_tags": {"cost-centre": "dr"},
}


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


def _tiers(stack: Any, env: str) -> dict[str, Any]:
    """The storage role's three buckets and the database role's instance, as those roles name and tag them."""
    s3 = stack.client("s3")
    account = stack.client("sts").get_caller_identity()["Account"]
    buckets = {kind: f"fastier-{env}-{kind}-{account}" for kind in KINDS}
    for kind, bucket in buckets.items():
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(
            Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
        )
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "Name", "Value": bucket}, {"Key": "fastier:bucket-kind", "Value": kind}]})
    db = f"fastier-{env}-db"
    stack.client("rds").create_db_instance(
        DBInstanceIdentifier=db,
        Engine="postgres",
        EngineVersion="15",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="fastier",
        MasterUserPassword=uuid.uuid4().hex,
        DBName="fastier",
        Port=free_port(),
        BackupRetentionPeriod=7,
        Tags=[{"Key": "Name", "Value": db}],
    )
    # What the storage role publishes (its facts entry point) and site.yml hands to this role.
    storage_outputs = {
        kind: {"name": name, "arn": f"arn:aws:s3:::{name}", "regional_domain_name": f"{name}.s3.{PRIMARY}.amazonaws.com", "exists": True}
        for kind, name in buckets.items()
    }
    storage_outputs = {**storage_outputs, "buckets": dict(storage_outputs), "account_id": account}
    return {"account": account, "buckets": buckets, "db": db, "storage_outputs": storage_outputs}


def _backup_state(stack: Any, prefix: str, account: str) -> dict[str, Any]:
    """What exists of the role's resources (to show that check mode made nothing)."""
    found: dict[str, Any] = {}
    for region in (PRIMARY, DR):
        vaults = stack.client("backup", region).list_backup_vaults()["BackupVaultList"]
        found[f"vaults {region}"] = sorted(v["BackupVaultName"] for v in vaults if v["BackupVaultName"].startswith(prefix + "-"))
        aliases = stack.client("kms", region).list_aliases()["Aliases"]
        found[f"keys {region}"] = sorted(a["AliasName"] for a in aliases if a["AliasName"] == f"alias/{prefix}-backup")
    plans = stack.client("backup").list_backup_plans()["BackupPlansList"]
    found["plans"] = sorted(p["BackupPlanName"] for p in plans if p["BackupPlanName"].startswith(prefix + "-"))
    roles = stack.client("iam").list_roles()["Roles"]
    found["roles"] = sorted(r["RoleName"] for r in roles if r["RoleName"].startswith(prefix + "-"))
    found["dr bucket"] = [b["Name"] for b in stack.client("s3").list_buckets()["Buckets"] if b["Name"] == f"{prefix}-backups-dr-{account}"]
    try:
        stack.client("s3").get_bucket_replication(Bucket=f"{prefix}-backups-{account}")
        found["replication"] = True
    except ClientError:
        found["replication"] = False
    return found


def _key_arn(stack: Any, region: str, alias: str) -> str:
    return stack.client("kms", region).describe_key(KeyId=alias)["KeyMetadata"]["Arn"]


@pytest.fixture(scope="module")
def converged(stack) -> Any:
    """One environment through the four steps; the tests below read it."""
    env = f"b{uuid.uuid4().hex[:8]}"
    prefix = f"fastier-{env}"
    tiers = _tiers(stack, env)
    extra = {**BASE, "platform_env": env, "storage_outputs": tiers["storage_outputs"]}
    runs: dict[str, Any] = {"first_check": run_playbook(stack.env(), PLAYBOOK, extra, check=True, diff=True)}
    runs["after_check"] = _backup_state(stack, prefix, tiers["account"])
    runs["real"] = run_playbook(stack.env(), PLAYBOOK, extra)
    runs["second_check"] = run_playbook(stack.env(), PLAYBOOK, extra, check=True)
    runs["second"] = run_playbook(stack.env(), PLAYBOOK, extra)
    try:
        yield {"env": env, "prefix": prefix, "extra": extra, **tiers, **runs}
    finally:
        stack.drop_db_instance(tiers["db"])


def _changed(run: Any) -> set[str]:
    return set(run.changed_tasks(without_role=True))


def test_backup_four_step_change_test(stack, converged):
    prefix, account = converged["prefix"], converged["account"]
    first_check = converged["first_check"]
    assert first_check.rc == 0, first_check.explain()
    made = {
        "Present | KMS key of each vault, rotated yearly [Backup.1, KMS.4]",
        "Present | Vault in each region, encrypted with its key",
        f"Present | AWS Backup service role {prefix}-backup",
        f"{PLAN_TASK} {prefix}-backup",
        f"Present | Replication role {prefix}-backup-replication",
        f"Present | Replication of the backups bucket to {prefix}-backups-dr-{account}",
    }
    assert _changed(first_check) == made
    # The selection needs the plan's id, which check mode on an empty account cannot have.
    assert first_check.task(f"fastier.platform.backup : {SELECTION_TASK} {prefix}-tiers")["skipped"]
    # amazon.aws.s3_bucket and community.aws.s3_lifecycle have no check mode: skipped.
    assert first_check.task(f"fastier.platform.backup : {DR_BUCKET_TASK} {prefix}-backups-dr-{account}")["skipped"]
    # check mode made nothing
    assert converged["after_check"] == {
        f"vaults {PRIMARY}": [],
        f"keys {PRIMARY}": [],
        f"vaults {DR}": [],
        f"keys {DR}": [],
        "plans": [],
        "roles": [],
        "dr bucket": [],
        "replication": False,
    }
    # ... and showed the plan it would make
    plan_diff = first_check.task(f"fastier.platform.backup : {PLAN_TASK} {prefix}-backup")["diff"]
    assert [rule["RuleName"] for rule in plan_diff["after"]["Rules"]] == ["daily", "hourly"]

    real = converged["real"]
    assert real.rc == 0, real.explain()
    assert _changed(real) == made | {
        f"{DR_BUCKET_TASK} {prefix}-backups-dr-{account}",
        "Present | DR bucket lifecycle - aging replicas to cheaper classes, old versions expire",
        "Present | Least-privilege policy of the replication role",
        f"{SELECTION_TASK} {prefix}-tiers",
    }
    for step in ("second_check", "second"):
        run = converged[step]
        assert run.rc == 0, run.explain()
        assert run.changed == 0, (step, run.changed_tasks())


def test_vaults_are_encrypted_with_the_roles_keys_in_both_regions(stack, converged):
    prefix = converged["prefix"]
    out = converged["second"].outputs("backup_outputs")
    for region, vault, key in ((PRIMARY, f"{prefix}-backup", "vault"), (DR, f"{prefix}-backup-dr", "dr_vault")):
        backup = stack.client("backup", region)
        described = backup.describe_backup_vault(BackupVaultName=vault)
        key_arn = _key_arn(stack, region, f"alias/{prefix}-backup")
        assert key_arn.startswith(f"arn:aws:kms:{region}:")
        assert described["EncryptionKeyArn"] == key_arn
        kms = stack.client("kms", region)
        assert kms.get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"] is True
        policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
        assert [s["Principal"] for s in policy["Statement"]] == [{"AWS": f"arn:aws:iam::{converged['account']}:root"}]
        tags = backup.list_tags(ResourceArn=described["BackupVaultArn"])["Tags"]
        assert tags["Name"] == vault
        assert tags["managed-by"] == "fastier.platform"
        assert tags["cost-centre"] == "dr"
        assert out[key] == {
            "name": vault,
            "region": region,
            "arn": described["BackupVaultArn"],
            "exists": True,
            "kms_key_arn": key_arn,
            "recovery_points": 0,  # no backup job runs locally
        }


def test_plan_rules_retentions_and_copy_to_the_dr_vault(stack, converged):
    prefix, account = converged["prefix"], converged["account"]
    backup = stack.client("backup")
    [plan] = [p for p in backup.list_backup_plans()["BackupPlansList"] if p["BackupPlanName"] == f"{prefix}-backup"]
    body = backup.get_backup_plan(BackupPlanId=plan["BackupPlanId"])["BackupPlan"]
    rules = {rule["RuleName"]: rule for rule in body["Rules"]}
    assert sorted(rules) == ["daily", "hourly"]
    dr_vault_arn = f"arn:aws:backup:{DR}:{account}:backup-vault:{prefix}-backup-dr"
    daily, hourly = rules["daily"], rules["hourly"]
    assert daily["TargetBackupVaultName"] == hourly["TargetBackupVaultName"] == f"{prefix}-backup"
    assert (daily["ScheduleExpression"], hourly["ScheduleExpression"]) == ("cron(30 4 ? * * *)", "cron(15 * ? * * *)")
    assert daily["ScheduleExpressionTimezone"] == hourly["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert (daily["StartWindowMinutes"], daily["CompletionWindowMinutes"]) == (60, 720)
    assert (hourly["StartWindowMinutes"], hourly["CompletionWindowMinutes"]) == (60, 150)
    assert daily["Lifecycle"] == {"DeleteAfterDays": 30}
    assert hourly["Lifecycle"] == {"DeleteAfterDays": 3}
    assert daily["CopyActions"] == [{"DestinationBackupVaultArn": dr_vault_arn, "Lifecycle": {"DeleteAfterDays": 21}}]
    assert hourly.get("CopyActions", []) == []
    assert daily["EnableContinuousBackup"] is False  # continuous RDS backups would take over the database role's retention
    for rule in (daily, hourly):
        assert rule["RecoveryPointTags"]["Name"] == f"{prefix}-backup"
        assert rule["RecoveryPointTags"]["cost-centre"] == "dr"
    assert backup.list_tags(ResourceArn=plan["BackupPlanArn"])["Tags"]["Name"] == f"{prefix}-backup"

    out = converged["second"].outputs("backup_outputs")["plan"]
    assert out["id"] == plan["BackupPlanId"] and out["exists"] is True
    assert [(r["name"], r["retention_days"], r["copies"], r["copy_retention_days"]) for r in out["rules"]] == [
        ("daily", 30, [dr_vault_arn], [21]),
        ("hourly", 3, [], []),
    ]


def test_service_role_and_what_the_selection_picks(stack, converged):
    prefix, account = converged["prefix"], converged["account"]
    iam = stack.client("iam")
    role = iam.get_role(RoleName=f"{prefix}-backup")["Role"]
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    assert (statement["Principal"], statement["Action"], statement.get("Condition")) == ({"Service": "backup.amazonaws.com"}, "sts:AssumeRole", None)
    attached = sorted(p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=f"{prefix}-backup")["AttachedPolicies"])
    assert attached == ["AWSBackupServiceRolePolicyForBackup", "AWSBackupServiceRolePolicyForS3Backup"]
    assert iam.list_role_policies(RoleName=f"{prefix}-backup")["PolicyNames"] == []

    selection = converged["second"].outputs("backup_outputs")["selection"]
    assert selection["conditions"] == [
        f"Name = {prefix}-db",
        f"Name = {prefix}-artifacts-{account}",
        f"Name = {prefix}-backups-{account}",
        f"backup-plan = {prefix}-backup",
    ]
    backup = stack.client("backup")
    plan_id = converged["second"].outputs("backup_outputs")["plan"]["id"]
    [listed] = backup.list_backup_selections(BackupPlanId=plan_id)["BackupSelectionsList"]
    assert (selection["managed"], selection["id"], selection["iam_role_arn"]) == (True, listed["SelectionId"], role["Arn"])
    stored = backup.get_backup_selection(BackupPlanId=plan_id, SelectionId=listed["SelectionId"])["BackupSelection"]
    assert (stored["SelectionName"], stored["IamRoleArn"], stored["Resources"]) == (f"{prefix}-tiers", role["Arn"], [])
    # AWS Backup selects a resource that has any one of these tags.
    assert [(c["ConditionType"], c["ConditionKey"], c["ConditionValue"]) for c in stored["ListOfTags"]] == [
        ("STRINGEQUALS", "Name", f"{prefix}-db"),
        ("STRINGEQUALS", "Name", f"{prefix}-artifacts-{account}"),
        ("STRINGEQUALS", "Name", f"{prefix}-backups-{account}"),
        ("STRINGEQUALS", "backup-plan", f"{prefix}-backup"),
    ]


def test_database_point_in_time_recovery_window_is_checked(stack, converged):
    out = converged["second"].outputs("backup_outputs")["rds"]
    described = stack.client("rds").describe_db_instances(DBInstanceIdentifier=converged["db"])["DBInstances"][0]
    assert (out["instance_id"], out["backup_retention_days"], out["minimum_days"], out["meets_minimum"]) == (converged["db"], 7, 7, True)
    assert described["BackupRetentionPeriod"] == 7


def test_a_dr_region_equal_to_the_primary_is_refused_before_any_aws_call(stack):
    env = {**stack.env(), "LOCAL_AWS_ENDPOINT": NO_AWS}
    run = run_playbook(env, PLAYBOOK, {**BASE, "platform_env": "refused", "aws_dr_region": PRIMARY})
    message = run.refusal()
    assert "aws_dr_region" in message and "another region" in message, message


def test_dr_bucket_has_the_storage_roles_protections_in_the_dr_region(stack, converged):
    prefix, account = converged["prefix"], converged["account"]
    bucket = f"{prefix}-backups-dr-{account}"
    s3 = stack.client("s3", DR)
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == DR
    tags = assert_bucket_protected(s3, bucket)
    assert (tags["Name"], tags["managed-by"], tags["cost-centre"]) == (bucket, "fastier.platform", "dr")
    statements = {s["Sid"]: s for s in json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]}
    assert sorted(statements) == ["BackupDenyInsecureTransport", "BackupDenyOutdatedTls"]
    resources = sorted([f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"])
    for sid, condition in (
        ("BackupDenyInsecureTransport", {"Bool": {"aws:SecureTransport": "false"}}),
        ("BackupDenyOutdatedTls", {"NumericLessThan": {"s3:TlsVersion": "1.2"}}),
    ):
        statement = statements[sid]
        assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Deny", "*", "s3:*")
        assert sorted(statement["Resource"]) == resources
        assert statement["Condition"] == condition
    [lifecycle] = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert lifecycle["Status"] == "Enabled"
    assert lifecycle["Transitions"] == [{"Days": 60, "StorageClass": "DEEP_ARCHIVE"}]
    assert lifecycle["NoncurrentVersionExpiration"] == {"NoncurrentDays": 45}
    assert lifecycle["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 3}
    assert "Expiration" not in lifecycle
    assert converged["second"].outputs("backup_outputs")["dr_bucket"] == {
        "name": bucket,
        "arn": f"arn:aws:s3:::{bucket}",
        "region": DR,
        "exists": True,
    }


def test_backups_bucket_replicates_to_the_dr_bucket_with_a_least_privilege_role(stack, converged):
    prefix, account = converged["prefix"], converged["account"]
    source, target = f"{prefix}-backups-{account}", f"{prefix}-backups-dr-{account}"
    role_arn = f"arn:aws:iam::{account}:role/{prefix}-backup-replication"
    config = stack.client("s3").get_bucket_replication(Bucket=source)["ReplicationConfiguration"]
    assert config["Role"] == role_arn
    [rule] = config["Rules"]
    assert (rule["ID"], rule["Priority"], rule["Status"]) == (f"{prefix}-dr", 1, "Enabled")
    assert rule["Destination"] == {"Bucket": f"arn:aws:s3:::{target}", "StorageClass": "GLACIER_IR"}
    assert rule["DeleteMarkerReplication"] == {"Status": "Disabled"}  # a delete in the primary region keeps the DR copy
    assert converged["second"].outputs("backup_outputs")["replication"] == {
        "source_bucket": source,
        "status": "Enabled",
        "rule_id": f"{prefix}-dr",
        "role_arn": role_arn,
        "destination_bucket": f"arn:aws:s3:::{target}",
        "storage_class": "GLACIER_IR",
    }

    iam = stack.client("iam")
    role = f"{prefix}-backup-replication"
    [trust] = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]["Statement"]
    assert (trust["Principal"], trust["Action"], trust.get("Condition")) == ({"Service": "s3.amazonaws.com"}, "sts:AssumeRole", None)
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    [name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
    statements = {s["Sid"]: s for s in iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]["Statement"]}
    # Objects are SSE-S3 (AES256): no KMS permission at all; no ReplicateDelete (delete markers are not replicated).
    assert {sid: (s["Effect"], sorted(s["Action"]), s["Resource"]) for sid, s in statements.items()} == {
        "ReadTheSourceConfiguration": ("Allow", ["s3:GetReplicationConfiguration", "s3:ListBucket"], f"arn:aws:s3:::{source}"),
        "ReadTheSourceVersions": (
            "Allow",
            ["s3:GetObjectVersionAcl", "s3:GetObjectVersionForReplication", "s3:GetObjectVersionTagging"],
            f"arn:aws:s3:::{source}/*",
        ),
        "WriteTheReplicas": ("Allow", ["s3:ReplicateObject", "s3:ReplicateTags"], f"arn:aws:s3:::{target}/*"),
    }
