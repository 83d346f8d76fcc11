"""local_aws/moto_fixes.py: the local AWS behaves as the AWS API reference says
where moto 5.2 does not. One test per fix, through boto3 against the stack."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

ACCOUNT = "123456789012"  # moto's account


def test_cloudfront_origin_keeps_its_origin_access_control_and_s3_origin_config(stack: Any, unique: str) -> None:
    """CloudFront Origin: OriginAccessControlId and S3OriginConfig are stored and returned."""
    cloudfront = stack.client("cloudfront")
    oac = cloudfront.create_origin_access_control(
        OriginAccessControlConfig={
            "Name": f"fix-{unique}-oac",
            "Description": "",
            "OriginAccessControlOriginType": "s3",
            "SigningBehavior": "always",
            "SigningProtocol": "sigv4",
        }
    )["OriginAccessControl"]
    origin = {
        "Id": "static",
        "DomainName": f"fix-{unique}.s3.us-east-1.amazonaws.com",
        "OriginPath": "",
        "OriginAccessControlId": oac["Id"],
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    created = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": f"fix-{unique}",
            "Comment": f"fix-{unique}",
            "Enabled": False,
            "Origins": {"Quantity": 1, "Items": [origin]},
            "DefaultCacheBehavior": {
                "TargetOriginId": "static",
                "ViewerProtocolPolicy": "redirect-to-https",
                "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
            },
        }
    )["Distribution"]
    try:
        for config in (
            created["DistributionConfig"],
            cloudfront.get_distribution(Id=created["Id"])["Distribution"]["DistributionConfig"],
            cloudfront.get_distribution_config(Id=created["Id"])["DistributionConfig"],
        ):
            [stored] = config["Origins"]["Items"]
            assert stored["OriginAccessControlId"] == oac["Id"]
            assert stored["S3OriginConfig"]["OriginAccessIdentity"] == ""
    finally:
        etag = cloudfront.get_distribution(Id=created["Id"])["ETag"]
        cloudfront.delete_distribution(Id=created["Id"], IfMatch=etag)


def test_codebuild_codepipeline_project_needs_no_location_and_can_be_updated(stack: Any, unique: str) -> None:
    """CreateProject: no location for CODEPIPELINE source/artifacts (nor NO_SOURCE); UpdateProject exists."""
    codebuild = stack.client("codebuild")
    role = f"arn:aws:iam::{ACCOUNT}:role/fix-{unique}-codebuild"
    environment = {"type": "LINUX_CONTAINER", "image": "aws/codebuild/amazonlinux-x86_64-standard:5.0", "computeType": "BUILD_GENERAL1_SMALL"}
    project = codebuild.create_project(
        name=f"fix-{unique}-build",
        source={"type": "CODEPIPELINE", "buildspec": "buildspec.yml"},
        artifacts={"type": "CODEPIPELINE"},
        environment=environment,
        serviceRole=role,
    )["project"]
    assert (project["source"]["type"], project["artifacts"]["type"]) == ("CODEPIPELINE", "CODEPIPELINE")
    assert "location" not in project["source"]
    codebuild.create_project(
        name=f"fix-{unique}-nosource",
        source={"type": "NO_SOURCE", "buildspec": "version: 0.2"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment=environment,
        serviceRole=role,
    )
    # what moto already checked stays checked
    with pytest.raises(codebuild.exceptions.InvalidInputException):
        codebuild.create_project(name=f"fix-{unique}-s3", source={"type": "S3"}, artifacts={"type": "NO_ARTIFACTS"}, environment=environment, serviceRole=role)

    logs = {"cloudWatchLogs": {"status": "ENABLED", "groupName": f"/aws/codebuild/fix-{unique}-build"}}
    updated = codebuild.update_project(name=f"fix-{unique}-build", logsConfig=logs, timeoutInMinutes=45, tags=[{"key": "Name", "value": "fix"}])["project"]
    assert (updated["logsConfig"], updated["timeoutInMinutes"], updated["tags"]) == (logs, 45, [{"key": "Name", "value": "fix"}])
    assert updated["source"]["type"] == "CODEPIPELINE"  # what was not given is kept
    [read] = codebuild.batch_get_projects(names=[f"fix-{unique}-build"])["projects"]
    assert (read["logsConfig"], read["timeoutInMinutes"]) == (logs, 45)
    with pytest.raises(codebuild.exceptions.ResourceNotFoundException):
        codebuild.update_project(name=f"fix-{unique}-ghost", timeoutInMinutes=45)


def test_kms_key_deletion_by_key_arn(stack: Any) -> None:
    """ScheduleKeyDeletion/CancelKeyDeletion take "the key ID or key ARN" and answer with the key ARN."""
    kms = stack.client("kms")
    key = kms.create_key(Description="moto_fixes contract test")["KeyMetadata"]
    scheduled = kms.schedule_key_deletion(KeyId=key["Arn"], PendingWindowInDays=7)
    assert scheduled["KeyId"] == key["Arn"]
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert kms.cancel_key_deletion(KeyId=key["Arn"])["KeyId"] == key["Arn"]
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
    # a key id works as before
    assert kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)["KeyId"] == key["Arn"]


def test_rds_instance_without_subnet_group_is_in_the_default_vpc_default_group(stack: Any, unique: str) -> None:
    """CreateDBInstance without DBSubnetGroupName: the instance is in the ``default`` DB subnet group (default VPC)."""
    rds = stack.client("rds")
    ec2 = stack.client("ec2")
    [vpc] = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    vpc_subnets = {s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]}
    identifier = f"fix-{unique}"
    rds.create_db_instance(
        DBInstanceIdentifier=identifier,
        Engine="mysql",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="fastier",
        MasterUserPassword=secrets.token_urlsafe(12),
    )
    try:
        [db] = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
        group = db["DBSubnetGroup"]
        assert (group["DBSubnetGroupName"], group["VpcId"], group["SubnetGroupStatus"]) == ("default", vpc["VpcId"], "Complete")
        assert {s["SubnetIdentifier"] for s in group["Subnets"]} == vpc_subnets
        [listed] = rds.describe_db_subnet_groups(DBSubnetGroupName="default")["DBSubnetGroups"]
        assert (listed["DBSubnetGroupDescription"], listed["VpcId"]) == ("default", vpc["VpcId"])
    finally:
        rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)
