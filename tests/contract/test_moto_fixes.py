"""local_aws/moto_fixes.py: the local AWS behaves as the AWS API reference says
where moto 5.2 does not. One test per fix, through boto3 against the stack."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

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


def _tls_only_policy(bucket: str, *extra: dict[str, Any]) -> str:
    """The storage role's TLS-only statements (roles/storage/tasks/present.yml), plus ``extra``."""
    resources = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    statements = [
        {
            "Sid": "StorageDenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "StorageDenyOutdatedTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
        },
        *extra,
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _denied(call: Any) -> bool:
    try:
        call()
    except ClientError as err:
        assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        return True
    return False


@pytest.fixture
def policy_bucket(stack: Any, unique: str) -> Iterator[str]:
    s3 = stack.client("s3")
    name = f"fix-{unique}-tls"
    s3.create_bucket(Bucket=name)
    yield name
    s3.delete_bucket_policy(Bucket=name)
    for listed in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=listed["Key"])
    s3.delete_bucket(Bucket=name)


def test_s3_tls_only_bucket_policy_admits_requests_to_the_local_endpoint(stack: Any, policy_bucket: str) -> None:
    """A request to the local endpoint counts as one over TLS 1.2 (aws:SecureTransport true, s3:TlsVersion 1.2)."""
    s3 = stack.client("s3")
    s3.put_bucket_policy(Bucket=policy_bucket, Policy=_tls_only_policy(policy_bucket))
    s3.put_object(Bucket=policy_bucket, Key="a.txt", Body=b"over tls")
    assert s3.get_object(Bucket=policy_bucket, Key="a.txt")["Body"].read() == b"over tls"
    assert s3.head_object(Bucket=policy_bucket, Key="a.txt")["ContentLength"] == len(b"over tls")
    s3.put_object(Bucket=policy_bucket, Key="b.txt", Body=b"b")
    assert s3.delete_objects(Bucket=policy_bucket, Delete={"Objects": [{"Key": "b.txt"}]})["Deleted"] == [{"Key": "b.txt"}]
    s3.delete_object(Bucket=policy_bucket, Key="a.txt")

    # the keys are evaluated (as TLS), not ignored: a statement that holds over TLS applies
    over_tls = {"Sid": "DenyOverTls", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{policy_bucket}/tls/*"}
    s3.put_bucket_policy(
        Bucket=policy_bucket,
        Policy=_tls_only_policy(
            policy_bucket,
            {**over_tls, "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
            {**over_tls, "Sid": "DenyTls12", "Resource": f"arn:aws:s3:::{policy_bucket}/tls12/*", "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.3"}}},
        ),
    )
    assert _denied(lambda: s3.put_object(Bucket=policy_bucket, Key="tls/x", Body=b"x"))
    assert _denied(lambda: s3.put_object(Bucket=policy_bucket, Key="tls12/x", Body=b"x"))
    s3.put_object(Bucket=policy_bucket, Key="elsewhere/x", Body=b"x")


def test_s3_bucket_policy_without_transport_conditions_still_denies(stack: Any, policy_bucket: str) -> None:
    """Only the transport keys changed: an unconditional Deny of s3:PutObject to "*" still denies, other actions still work."""
    s3 = stack.client("s3")
    s3.put_object(Bucket=policy_bucket, Key="before.txt", Body=b"before")
    deny_put = {"Sid": "DenyPut", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{policy_bucket}/*"}
    s3.put_bucket_policy(Bucket=policy_bucket, Policy=_tls_only_policy(policy_bucket, deny_put))
    assert _denied(lambda: s3.put_object(Bucket=policy_bucket, Key="after.txt", Body=b"after"))
    assert s3.get_object(Bucket=policy_bucket, Key="before.txt")["Body"].read() == b"before"
    s3.put_bucket_policy(Bucket=policy_bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [deny_put]}))
    assert _denied(lambda: s3.put_object(Bucket=policy_bucket, Key="after.txt", Body=b"after"))


TEMPLATE = json.dumps(
    {
        "Parameters": {"Retention": {"Type": "Number"}},
        "Resources": {"Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": {"Ref": "Retention"}}}},
    }
)


def test_cloudformation_change_set_without_a_type_updates_the_existing_stack(stack: Any, unique: str) -> None:
    """CreateChangeSet's ChangeSetType defaults to UPDATE; a change set without changes is made, FAILED, as on AWS."""
    cfn = stack.client("cloudformation")
    name = f"fix-{unique}"
    seven = [{"ParameterKey": "Retention", "ParameterValue": "7"}]
    cfn.create_stack(StackName=name, TemplateBody=TEMPLATE, Parameters=seven)
    try:
        made = cfn.create_change_set(StackName=name, ChangeSetName="same", TemplateBody=TEMPLATE, Parameters=seven)
        change_set = cfn.describe_change_set(ChangeSetName=made["Id"])
        assert change_set["Changes"] == []
        assert change_set["Status"] == "FAILED" and "didn't contain changes" in change_set["StatusReason"]
        assert made["StackId"] == cfn.describe_stacks(StackName=name)["Stacks"][0]["StackId"]
        listed = [s for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == name and s["StackStatus"] != "DELETE_COMPLETE"]
        assert len(listed) == 1

        changed = json.loads(TEMPLATE)
        changed["Resources"]["Logs"]["Properties"]["LogGroupClass"] = "STANDARD"
        made = cfn.create_change_set(StackName=name, ChangeSetName="class", TemplateBody=json.dumps(changed), Parameters=seven)
        change_set = cfn.describe_change_set(ChangeSetName=made["Id"])
        assert change_set["Status"] == "CREATE_COMPLETE"
        [change] = change_set["Changes"]
        assert change["ResourceChange"]["Action"] == "Modify" and change["ResourceChange"]["LogicalResourceId"] == "Logs"

        # UPDATE (the default) of a stack that does not exist is refused; CREATE must be asked for.
        with pytest.raises(ClientError) as missing:
            cfn.create_change_set(StackName=f"{name}-missing", ChangeSetName="new", TemplateBody=TEMPLATE, Parameters=seven)
        assert missing.value.response["Error"]["Code"] == "ValidationError"
    finally:
        cfn.delete_stack(StackName=name)
