"""local_aws/moto_fixes.py, fixes 6 and 7: AWS Backup selections and plan updates, S3 replication
read back as stored - as the AWS API references say, through boto3 against the stack."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::123456789012:role/backup"


def _plan(backup: Any, name: str) -> str:
    rule = {"RuleName": "daily", "TargetBackupVaultName": "vault", "ScheduleExpression": "cron(0 5 ? * * *)"}
    return backup.create_backup_plan(BackupPlan={"BackupPlanName": name, "Rules": [rule]})["BackupPlanId"]


def test_backup_selections_exist_and_block_the_deletion_of_their_plan(stack: Any, unique: str) -> None:
    backup = stack.client("backup")
    plan_id = _plan(backup, f"fix-{unique}")
    tags = [{"ConditionType": "STRINGEQUALS", "ConditionKey": "Name", "ConditionValue": f"db-{unique}"}]
    made = backup.create_backup_selection(BackupPlanId=plan_id, BackupSelection={"SelectionName": "tiers", "IamRoleArn": ROLE, "ListOfTags": tags})
    assert made["BackupPlanId"] == plan_id

    [listed] = backup.list_backup_selections(BackupPlanId=plan_id)["BackupSelectionsList"]
    assert (listed["SelectionId"], listed["SelectionName"], listed["IamRoleArn"]) == (made["SelectionId"], "tiers", ROLE)
    selection = backup.get_backup_selection(BackupPlanId=plan_id, SelectionId=made["SelectionId"])["BackupSelection"]
    # Every list is answered, empty when not given (what amazon.aws.backup_selection compares against).
    assert selection == {
        "SelectionName": "tiers",
        "IamRoleArn": ROLE,
        "ListOfTags": tags,
        "Resources": [],
        "NotResources": [],
        "Conditions": {"StringEquals": [], "StringLike": [], "StringNotEquals": [], "StringNotLike": []},
    }

    with pytest.raises(ClientError) as refused:
        backup.delete_backup_plan(BackupPlanId=plan_id)
    assert refused.value.response["Error"]["Code"] == "InvalidRequestException"

    backup.delete_backup_selection(BackupPlanId=plan_id, SelectionId=made["SelectionId"])
    assert backup.list_backup_selections(BackupPlanId=plan_id)["BackupSelectionsList"] == []
    with pytest.raises(ClientError) as gone:
        backup.get_backup_selection(BackupPlanId=plan_id, SelectionId=made["SelectionId"])
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
    backup.delete_backup_plan(BackupPlanId=plan_id)
    # The name of a deleted plan can be used again.
    backup.delete_backup_plan(BackupPlanId=_plan(backup, f"fix-{unique}"))


def test_update_backup_plan_replaces_the_rules_with_a_new_version(stack: Any, unique: str) -> None:
    backup = stack.client("backup")
    plan_id = _plan(backup, f"fix-{unique}")
    before = backup.get_backup_plan(BackupPlanId=plan_id)
    rules = [
        {"RuleName": "hourly", "TargetBackupVaultName": "vault", "ScheduleExpression": "cron(0 * ? * * *)", "Lifecycle": {"DeleteAfterDays": 2}},
    ]
    updated = backup.update_backup_plan(BackupPlanId=plan_id, BackupPlan={"BackupPlanName": f"fix-{unique}", "Rules": rules})
    try:
        assert updated["BackupPlanId"] == plan_id
        assert updated["VersionId"] != before["VersionId"]
        [rule] = backup.get_backup_plan(BackupPlanId=plan_id)["BackupPlan"]["Rules"]
        assert (rule["RuleName"], rule["ScheduleExpression"], rule["Lifecycle"]) == ("hourly", "cron(0 * ? * * *)", {"DeleteAfterDays": 2})
        assert rule["RuleId"]
    finally:
        backup.delete_backup_plan(BackupPlanId=plan_id)


def test_backup_vault_counts_its_recovery_points_and_an_unknown_vault_is_not_deleted(stack: Any, unique: str) -> None:
    backup = stack.client("backup")
    backup.create_backup_vault(BackupVaultName=f"fix-{unique}")
    assert backup.describe_backup_vault(BackupVaultName=f"fix-{unique}")["NumberOfRecoveryPoints"] == 0
    backup.delete_backup_vault(BackupVaultName=f"fix-{unique}")
    with pytest.raises(ClientError) as unknown:
        backup.delete_backup_vault(BackupVaultName=f"fix-{unique}")
    assert unknown.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_s3_replication_is_read_back_as_put_and_needs_a_versioned_destination(stack: Any, unique: str) -> None:
    s3 = stack.client("s3")
    source, target = f"fix-{unique}-source", f"fix-{unique}-target"
    s3.create_bucket(Bucket=source)
    s3.create_bucket(Bucket=target, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_bucket_versioning(Bucket=source, VersioningConfiguration={"Status": "Enabled"})
    rule = {
        "ID": "dr",
        "Priority": 1,
        "Status": "Enabled",
        "Filter": {"Prefix": "db/"},
        "DeleteMarkerReplication": {"Status": "Enabled"},
        "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}},
        "Destination": {
            "Bucket": f"arn:aws:s3:::{target}",
            "StorageClass": "STANDARD_IA",
            "EncryptionConfiguration": {"ReplicaKmsKeyID": "arn:aws:kms:us-west-2:123456789012:key/k"},
        },
    }
    config = {"Role": ROLE, "Rules": [rule]}
    with pytest.raises(ClientError) as unversioned:
        s3.put_bucket_replication(Bucket=source, ReplicationConfiguration=config)
    assert unversioned.value.response["Error"]["Code"] == "InvalidRequest"
    assert "versioning" in unversioned.value.response["Error"]["Message"]

    s3.put_bucket_versioning(Bucket=target, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_replication(Bucket=source, ReplicationConfiguration=config)
    assert s3.get_bucket_replication(Bucket=source)["ReplicationConfiguration"] == config

    whole = {**rule, "Filter": {"Prefix": ""}, "DeleteMarkerReplication": {"Status": "Disabled"}}
    s3.put_bucket_replication(Bucket=source, ReplicationConfiguration={"Role": ROLE, "Rules": [whole]})
    assert s3.get_bucket_replication(Bucket=source)["ReplicationConfiguration"]["Rules"] == [whole]
