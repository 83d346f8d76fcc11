"""DescribeConfigurationSettings and DescribeConfigurationOptions."""

from __future__ import annotations

from typing import Any

from tests.contract.ebkit import STACK, aws_error, option

# The namespaces and options the project's roles set (each must be described).
ROLE_OPTIONS = {
    "aws:autoscaling:asg": ("MinSize", "MaxSize", "Availability Zones"),
    "aws:autoscaling:launchconfiguration": (
        "InstanceType",
        "IamInstanceProfile",
        "DisableIMDSv1",
        "SecurityGroups",
        "EC2KeyName",
        "RootVolumeType",
        "RootVolumeSize",
    ),
    "aws:autoscaling:trigger": (
        "MeasureName",
        "Statistic",
        "Unit",
        "Period",
        "BreachDuration",
        "LowerThreshold",
        "UpperThreshold",
        "LowerBreachScaleIncrement",
        "UpperBreachScaleIncrement",
    ),  # fmt: skip
    "aws:autoscaling:updatepolicy:rollingupdate": ("RollingUpdateEnabled", "RollingUpdateType", "MaxBatchSize", "MinInstancesInService"),
    "aws:ec2:vpc": ("VPCId", "Subnets", "ELBSubnets", "ELBScheme", "AssociatePublicIpAddress"),
    "aws:ec2:instances": ("InstanceTypes",),
    "aws:elasticbeanstalk:environment": ("EnvironmentType", "LoadBalancerType", "ServiceRole"),
    "aws:elasticbeanstalk:environment:process:default": (
        "HealthCheckPath",
        "Port",
        "Protocol",
        "MatcherHTTPCode",
        "HealthCheckInterval",
        "HealthyThresholdCount",
        "UnhealthyThresholdCount",
        "DeregistrationDelay",
    ),  # fmt: skip
    "aws:elasticbeanstalk:environment:proxy": ("ProxyServer",),
    "aws:elasticbeanstalk:healthreporting:system": ("SystemType", "EnhancedHealthAuthEnabled"),
    "aws:elasticbeanstalk:cloudwatch:logs": ("StreamLogs", "DeleteOnTerminate", "RetentionInDays"),
    "aws:elasticbeanstalk:cloudwatch:logs:health": ("HealthStreamingEnabled", "DeleteOnTerminate", "RetentionInDays"),
    "aws:elasticbeanstalk:managedactions": ("ManagedActionsEnabled", "PreferredStartTime", "ServiceRoleForManagedUpdates"),
    "aws:elasticbeanstalk:managedactions:platformupdate": ("UpdateLevel", "InstanceRefreshEnabled"),
    "aws:elasticbeanstalk:command": ("DeploymentPolicy", "BatchSizeType", "BatchSize", "Timeout", "IgnoreHealthCheck"),
    "aws:elasticbeanstalk:application": ("Application Healthcheck URL",),
    "aws:elasticbeanstalk:sns:topics": ("Notification Topic ARN",),
    "aws:elbv2:listener:default": ("ListenerEnabled", "Protocol", "DefaultProcess"),
    "aws:elbv2:loadbalancer": ("SecurityGroups", "ManagedSecurityGroup", "IdleTimeout", "AccessLogsS3Enabled", "AccessLogsS3Bucket"),
    "aws:elasticbeanstalk:xray": ("XRayEnabled",),
}


def _by_key(options: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["Namespace"], o["Name"]): o for o in options}


def test_configuration_options_cover_the_roles_namespaces(eb: Any) -> None:
    answer = eb.describe_configuration_options(SolutionStackName=STACK)
    assert answer["SolutionStackName"] == STACK
    assert answer["PlatformArn"].endswith("platform/Python 3.11 running on 64bit Amazon Linux 2023/4.6.0")
    described = _by_key(answer["Options"])
    missing = [(ns, name) for ns, names in ROLE_OPTIONS.items() for name in names if (ns, name) not in described]
    assert missing == []
    min_size = described[("aws:autoscaling:asg", "MinSize")]
    assert (min_size["DefaultValue"], min_size["MinValue"], min_size["MaxValue"], min_size["ValueType"]) == ("1", 1, 10000, "Scalar")
    assert described[("aws:autoscaling:asg", "MaxSize")]["DefaultValue"] == "4"
    policy = described[("aws:elasticbeanstalk:command", "DeploymentPolicy")]
    assert policy["ValueOptions"] == ["AllAtOnce", "Rolling", "RollingWithAdditionalBatch", "Immutable", "TrafficSplitting"]
    assert policy["DefaultValue"] == "AllAtOnce"
    assert described[("aws:elasticbeanstalk:healthreporting:system", "SystemType")]["ValueOptions"] == ["basic", "enhanced"]
    assert described[("aws:autoscaling:launchconfiguration", "DisableIMDSv1")]["ValueType"] == "Boolean"
    assert described[("aws:autoscaling:launchconfiguration", "InstanceType")]["ChangeSeverity"] == "RestartEnvironment"
    assert described[("aws:elasticbeanstalk:environment:process:default", "MatcherHTTPCode")]["Regex"]["Pattern"].startswith("^((\\d{3}")
    assert described[("aws:elasticbeanstalk:container:python", "WSGIPath")]["DefaultValue"] == "application"


def test_configuration_options_filter_and_listener_ports(eb: Any) -> None:
    wanted = [{"Namespace": "aws:elbv2:listener:443", "OptionName": "SSLCertificateArns"}, {"Namespace": "aws:elbv2:listener:443", "OptionName": "SSLPolicy"}]
    answer = eb.describe_configuration_options(SolutionStackName=STACK, Options=wanted)
    assert sorted(o["Name"] for o in answer["Options"]) == ["SSLCertificateArns", "SSLPolicy"]
    assert {o["Namespace"] for o in answer["Options"]} == {"aws:elbv2:listener:443"}


def test_configuration_options_of_an_environment_list_its_custom_options(eb: Any, app: str, make_env: Any) -> None:
    env = make_env(OptionSettings=[{"Namespace": "aws:elasticbeanstalk:application:environment", "OptionName": "FLASK_ENV", "Value": "production"}])
    described = _by_key(eb.describe_configuration_options(ApplicationName=app, EnvironmentName=env["EnvironmentName"])["Options"])
    assert described[("aws:elasticbeanstalk:application:environment", "FLASK_ENV")]["UserDefined"] is True


def test_configuration_options_of_an_unknown_stack(eb: Any) -> None:
    with aws_error("InvalidParameterValue", "No Solution Stack named 'Amiga 500' found."):
        eb.describe_configuration_options(SolutionStackName="Amiga 500")


def test_configuration_settings_are_defaults_plus_set_ones(eb: Any, app: str, make_env: Any) -> None:
    env = make_env(OptionSettings=[{"Namespace": "aws:ec2:instances", "OptionName": "InstanceTypes", "Value": "t3.small"}])
    [described] = eb.describe_configuration_settings(ApplicationName=app, EnvironmentName=env["EnvironmentName"])["ConfigurationSettings"]
    assert (described["EnvironmentName"], described["ApplicationName"], described["SolutionStackName"]) == (env["EnvironmentName"], app, STACK)
    assert described["DeploymentStatus"] == "deployed"
    settings = described["OptionSettings"]
    assert option(settings, "aws:ec2:instances", "InstanceTypes") == "t3.small"
    assert option(settings, "aws:autoscaling:asg", "MaxSize") == "4"
    assert option(settings, "aws:elasticbeanstalk:command", "DeploymentPolicy") == "AllAtOnce"
    assert option(settings, "aws:autoscaling:launchconfiguration", "EC2KeyName") is None  # listed, no value


def test_configuration_settings_errors(eb: Any, app: str, make_env: Any, unique: str) -> None:
    env = make_env()
    with aws_error("InvalidParameterCombination"):
        eb.describe_configuration_settings(ApplicationName=app, EnvironmentName=env["EnvironmentName"], TemplateName="t1")
    with aws_error("MissingRequiredParameter"):
        eb.describe_configuration_settings(ApplicationName=app)
    with aws_error("InvalidParameterValue", f"No Configuration Template named '{app}/t1' found."):
        eb.describe_configuration_settings(ApplicationName=app, TemplateName="t1")
    with aws_error("InvalidParameterValue", f"No Environment found for EnvironmentName = 'ghost-{unique}'."):
        eb.describe_configuration_settings(ApplicationName=app, EnvironmentName=f"ghost-{unique}")


def test_unsupported_operations_fail_with_a_parsable_error(eb: Any, app: str) -> None:
    with aws_error("InvalidAction", contains="CreateConfigurationTemplate is not supported by the local Elastic Beanstalk endpoint"):
        eb.create_configuration_template(ApplicationName=app, TemplateName="t1", SolutionStackName=STACK)
