"""UpdateTagsForResource and ListTagsForResource (environments, applications, versions)."""

from __future__ import annotations

from typing import Any

from tests.contract.ebkit import aws_error, describe, wait_ready


def _tags(eb: Any, resource_arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in eb.list_tags_for_resource(ResourceArn=resource_arn)["ResourceTags"]}


def test_environment_tags(eb: Any, make_env: Any) -> None:
    env = make_env(Tags=[{"Key": "color", "Value": "blue"}])
    resource = env["EnvironmentArn"]
    assert _tags(eb, resource) == {
        "elasticbeanstalk:environment-name": env["EnvironmentName"],
        "elasticbeanstalk:environment-id": env["EnvironmentId"],
        "Name": env["EnvironmentName"],
        "color": "blue",
    }
    eb.update_tags_for_resource(ResourceArn=resource, TagsToAdd=[{"Key": "color", "Value": "green"}, {"Key": "owner", "Value": "web"}])
    assert describe(eb, env["EnvironmentName"])["Status"] == "Updating"  # tags propagate with an environment update
    with aws_error("OperationInProgressFailure"):
        eb.update_tags_for_resource(ResourceArn=resource, TagsToRemove=["owner"])
    wait_ready(eb, env["EnvironmentName"])
    eb.update_tags_for_resource(ResourceArn=resource, TagsToRemove=["owner", "not-there"])
    wait_ready(eb, env["EnvironmentName"])
    tags = _tags(eb, resource)
    assert tags["color"] == "green" and "owner" not in tags


def test_application_and_version_tags(eb: Any, app: str, version: str) -> None:
    app_arn = eb.describe_applications(ApplicationNames=[app])["Applications"][0]["ApplicationArn"]
    version_arn = f"arn:aws:elasticbeanstalk:us-east-1:123456789012:applicationversion/{app}/{version}"
    for resource in (app_arn, version_arn):
        eb.update_tags_for_resource(ResourceArn=resource, TagsToAdd=[{"Key": "k", "Value": "v"}])
        assert _tags(eb, resource) == {"k": "v"}
        eb.update_tags_for_resource(ResourceArn=resource, TagsToRemove=["k"])
        assert _tags(eb, resource) == {}


def test_tag_errors(eb: Any, app: str, unique: str) -> None:
    app_arn = f"arn:aws:elasticbeanstalk:us-east-1:123456789012:application/{app}"
    with aws_error("InvalidParameterValue", contains="reserved"):
        eb.update_tags_for_resource(ResourceArn=app_arn, TagsToAdd=[{"Key": "elasticbeanstalk:environment-name", "Value": "x"}])
    missing = f"arn:aws:elasticbeanstalk:us-east-1:123456789012:environment/{app}/ghost-{unique}"
    with aws_error("ResourceNotFoundException", f"Resource not found for ARN '{missing}'."):
        eb.list_tags_for_resource(ResourceArn=missing)
    with aws_error("ResourceTypeNotSupportedException"):
        eb.list_tags_for_resource(ResourceArn="arn:aws:elasticbeanstalk:us-east-1:123456789012:solutionstack/x")
    with aws_error("TooManyTagsException"):
        eb.update_tags_for_resource(ResourceArn=app_arn, TagsToAdd=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
    with aws_error("MissingRequiredParameter"):
        eb.update_tags_for_resource(ResourceArn=app_arn)
