"""Environments: CheckDNSAvailability, CreateEnvironment, DescribeEnvironments,
DescribeEnvironmentResources."""

from __future__ import annotations

import re
from typing import Any

from tests.contract.ebkit import FAST, STACK, aws_error, describe, messages, wait_ready

CHARSET = "Member must contain only letters, digits, and the dash character and may not start or end with a dash"


def test_check_dns_availability(eb: Any, unique: str) -> None:
    answer = eb.check_dns_availability(CNAMEPrefix=f"free-{unique}")
    assert answer["Available"] is True
    assert answer["FullyQualifiedCNAME"] == f"free-{unique}.us-east-1.elasticbeanstalk.com"


def test_check_dns_availability_prefix_rules(eb: Any) -> None:
    for bad in ("-lead", "trail-", "under_score", "dot.ted"):
        with aws_error("InvalidParameterValue", f"Value {bad} at 'CNAMEPrefix' failed to satisfy constraint: {CHARSET}"):
            eb.check_dns_availability(CNAMEPrefix=bad)
    too_long = "a" * 64
    with aws_error("ValidationError", contains="Member must have length less than or equal to 63"):
        eb.check_dns_availability(CNAMEPrefix=too_long)
    assert eb.check_dns_availability(CNAMEPrefix="a" * 63)["Available"] is True


def test_create_environment_launches_then_ready(eb: Any, app: str, version: str, unique: str) -> None:
    name = f"web-{unique}"
    created = eb.create_environment(
        ApplicationName=app, EnvironmentName=name, VersionLabel=version, SolutionStackName=STACK, CNAMEPrefix=f"live-{unique}",
        Description="blue", Tags=[{"Key": "role", "Value": "blue"}],
    )  # fmt: skip
    assert created["Status"] == "Launching"
    assert created["Health"] == "Grey"
    assert re.fullmatch(r"e-[a-z0-9]{10}", created["EnvironmentId"])
    assert created["CNAME"] == f"live-{unique}.us-east-1.elasticbeanstalk.com"
    assert re.fullmatch(r"awseb-.+\.us-east-1\.elb\.amazonaws\.com", created["EndpointURL"])
    assert created["PlatformArn"] == "arn:aws:elasticbeanstalk:us-east-1::platform/Python 3.11 running on 64bit Amazon Linux 2023/4.6.0"
    assert created["EnvironmentArn"] == f"arn:aws:elasticbeanstalk:us-east-1:123456789012:environment/{app}/{name}"
    assert created["Tier"] == {"Name": "WebServer", "Type": "Standard", "Version": "1.0"}
    assert eb.check_dns_availability(CNAMEPrefix=f"live-{unique}")["Available"] is False

    eb.get_waiter("environment_exists").wait(EnvironmentNames=[name], WaiterConfig=FAST)
    ready = describe(eb, name)
    assert (ready["Status"], ready["Health"], ready["HealthStatus"]) == ("Ready", "Green", "Ok")
    assert ready["VersionLabel"] == version and ready["Description"] == "blue"
    log = messages(eb, EnvironmentName=name)
    for expected in ("createEnvironment is starting.", "Environment health has transitioned from Pending to Ok.", f"Successfully launched environment: {name}"):
        assert expected in log
    assert log.index("createEnvironment is starting.") < log.index(f"Successfully launched environment: {name}")
    assert log[-1] == f"Successfully launched environment: {name}"


def test_default_cname_appends_a_random_token_to_the_name(make_env: Any) -> None:
    env = make_env()
    assert re.fullmatch(rf"{env['EnvironmentName']}\.eba-[a-z0-9]{{8}}\.us-east-1\.elasticbeanstalk\.com", env["CNAME"])


def test_environment_name_rules(eb: Any, app: str, version: str) -> None:
    for bad in ("bad_name", "-bad-start", "bad-end-"):
        with aws_error("InvalidParameterValue", f"Value {bad} at 'EnvironmentName' failed to satisfy constraint: {CHARSET}"):
            eb.create_environment(ApplicationName=app, EnvironmentName=bad, VersionLabel=version, SolutionStackName=STACK)
    with aws_error("ValidationError", contains="Member must have length less than or equal to 40"):
        eb.create_environment(ApplicationName=app, EnvironmentName="x" * 41, VersionLabel=version, SolutionStackName=STACK)


def test_environment_names_are_unique_across_applications(eb: Any, app: str, make_env: Any, unique: str) -> None:
    env = make_env()
    other = f"other-{unique}"
    eb.create_application(ApplicationName=other)
    try:
        with aws_error("InvalidParameterValue", f"Environment {env['EnvironmentName']} already exists."):
            eb.create_environment(ApplicationName=other, EnvironmentName=env["EnvironmentName"], SolutionStackName=STACK)
    finally:
        eb.delete_application(ApplicationName=other)


def test_taken_cname_prefix_is_refused(eb: Any, app: str, version: str, make_env: Any, unique: str) -> None:
    make_env(CNAMEPrefix=f"taken-{unique}")
    with aws_error("InvalidParameterValue", f"DNS name (taken-{unique}.us-east-1.elasticbeanstalk.com) is not available."):
        eb.create_environment(
            ApplicationName=app, EnvironmentName=f"second-{unique}", VersionLabel=version, SolutionStackName=STACK, CNAMEPrefix=f"TAKEN-{unique}"
        )


def test_create_environment_reference_errors(eb: Any, app: str, version: str, unique: str) -> None:
    name = f"ref-{unique}"
    with aws_error("InvalidParameterValue", f"No Application named 'missing-{unique}' found."):
        eb.create_environment(ApplicationName=f"missing-{unique}", EnvironmentName=name, SolutionStackName=STACK)
    with aws_error("InvalidParameterValue", "No Application Version named 'v404' found."):
        eb.create_environment(ApplicationName=app, EnvironmentName=name, VersionLabel="v404", SolutionStackName=STACK)
    with aws_error("InvalidParameterValue", "No Solution Stack named 'Commodore 64' found."):
        eb.create_environment(ApplicationName=app, EnvironmentName=name, VersionLabel=version, SolutionStackName="Commodore 64")
    with aws_error("InvalidParameterCombination"):
        platform = "arn:aws:elasticbeanstalk:us-east-1::platform/Python 3.11 running on 64bit Amazon Linux 2023/4.6.0"
        eb.create_environment(ApplicationName=app, EnvironmentName=name, SolutionStackName=STACK, PlatformArn=platform)
    assert eb.describe_environments(EnvironmentNames=[name])["Environments"] == []


def test_create_environment_with_platform_arn(eb: Any, app: str, version: str, unique: str) -> None:
    platform = "arn:aws:elasticbeanstalk:us-east-1::platform/Python 3.12 running on 64bit Amazon Linux 2023/4.6.0"
    created = eb.create_environment(ApplicationName=app, EnvironmentName=f"arn-{unique}", VersionLabel=version, PlatformArn=platform)
    assert created["SolutionStackName"] == "64bit Amazon Linux 2023 v4.6.0 running Python 3.12"
    assert created["PlatformArn"] == platform
    unknown = "arn:aws:elasticbeanstalk:us-east-1::platform/Python 2.7 running on 64bit Amazon Linux/2.9.0"
    with aws_error("InvalidParameterValue", f"No Platform named '{unknown}' found."):
        eb.create_environment(ApplicationName=app, EnvironmentName=f"arn2-{unique}", VersionLabel=version, PlatformArn=unknown)


def test_single_instance_environment_has_no_load_balancer(eb: Any, make_env: Any) -> None:
    env = make_env(OptionSettings=[{"Namespace": "aws:elasticbeanstalk:environment", "OptionName": "EnvironmentType", "Value": "SingleInstance"}])
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", env["EndpointURL"])
    assert "Resources" not in env
    resources = eb.describe_environment_resources(EnvironmentId=env["EnvironmentId"])["EnvironmentResources"]
    assert resources["LoadBalancers"] == [] and len(resources["Instances"]) == 1


def test_worker_tier_has_a_queue_and_no_cname(eb: Any, app: str, version: str, unique: str) -> None:
    tier = {"Name": "Worker", "Type": "SQS/HTTP"}
    with aws_error("InvalidParameterValue"):
        eb.create_environment(
            ApplicationName=app, EnvironmentName=f"wk-{unique}", VersionLabel=version, SolutionStackName=STACK, Tier=tier, CNAMEPrefix=f"wk-{unique}"
        )
    created = eb.create_environment(ApplicationName=app, EnvironmentName=f"wk-{unique}", VersionLabel=version, SolutionStackName=STACK, Tier=tier)
    assert "CNAME" not in created and created["Tier"]["Name"] == "Worker"
    wait_ready(eb, f"wk-{unique}")
    resources = eb.describe_environment_resources(EnvironmentName=f"wk-{unique}")["EnvironmentResources"]
    assert resources["Queues"][0]["URL"].startswith("https://sqs.us-east-1.amazonaws.com/123456789012/awseb-")


def test_resources_follow_min_size(eb: Any, make_env: Any) -> None:
    env = make_env(OptionSettings=[{"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "3"}])
    resources = eb.describe_environment_resources(EnvironmentName=env["EnvironmentName"])["EnvironmentResources"]
    assert len(resources["Instances"]) == 3
    assert all(re.fullmatch(r"i-[0-9a-f]{17}", i["Id"]) for i in resources["Instances"])
    assert resources["AutoScalingGroups"][0]["Name"].startswith(f"awseb-{env['EnvironmentId']}-stack-AWSEBAutoScalingGroup-")
    assert resources["LoadBalancers"][0]["Name"] == env["Resources"]["LoadBalancer"]["LoadBalancerName"]
    assert resources["LaunchTemplates"][0]["Id"].startswith("lt-")


def test_application_load_balancer_resources(eb: Any, make_env: Any) -> None:
    env = make_env(OptionSettings=[{"Namespace": "aws:elasticbeanstalk:environment", "OptionName": "LoadBalancerType", "Value": "application"}])
    [balancer] = eb.describe_environment_resources(EnvironmentName=env["EnvironmentName"])["EnvironmentResources"]["LoadBalancers"]
    assert re.fullmatch(r"arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/awseb-AWSEB-[A-Z0-9]+/[0-9a-f]{16}", balancer["Name"])
    assert env["EndpointURL"].startswith("awseb-AWSEB-")


def test_describe_environments_filters(eb: Any, app: str, bundle: dict[str, str], make_env: Any) -> None:
    first = make_env(wait=False)
    eb.create_application_version(ApplicationName=app, VersionLabel="v2", SourceBundle=bundle)
    second = make_env(VersionLabel="v2")
    ids = {first["EnvironmentId"], second["EnvironmentId"]}
    assert {e["EnvironmentId"] for e in eb.describe_environments(ApplicationName=app)["Environments"]} == ids
    assert [e["EnvironmentId"] for e in eb.describe_environments(ApplicationName=app, VersionLabel="v2")["Environments"]] == [second["EnvironmentId"]]
    assert [e["EnvironmentName"] for e in eb.describe_environments(EnvironmentIds=[first["EnvironmentId"]])["Environments"]] == [first["EnvironmentName"]]
    page = eb.describe_environments(ApplicationName=app, MaxRecords=1)
    rest = eb.describe_environments(ApplicationName=app, MaxRecords=1, NextToken=page["NextToken"])
    assert {page["Environments"][0]["EnvironmentId"], rest["Environments"][0]["EnvironmentId"]} == ids
    assert "NextToken" not in rest


def test_describe_environment_resources_of_unknown_environment(eb: Any, unique: str) -> None:
    with aws_error("InvalidParameterValue", f"No Environment found for EnvironmentName = 'ghost-{unique}'."):
        eb.describe_environment_resources(EnvironmentName=f"ghost-{unique}")
