"""UpdateEnvironment (versions, option settings, validation), RestartAppServer,
RebuildEnvironment, ValidateConfigurationSettings."""

from __future__ import annotations

from typing import Any

from tests.contract.ebkit import FAST, aws_error, describe, messages, option, wait_ready

ASG = "aws:autoscaling:asg"
INVALID = "Configuration validation exception: Invalid option value: '{value}' (Namespace: '{ns}', OptionName: '{name}'): {reason}"


def _settings(eb: Any, app: str, env: str) -> list[dict[str, str]]:
    return eb.describe_configuration_settings(ApplicationName=app, EnvironmentName=env)["ConfigurationSettings"][0]["OptionSettings"]


def test_deploy_a_new_version(eb: Any, app: str, bundle: dict[str, str], make_env: Any) -> None:
    env = make_env()
    name = env["EnvironmentName"]
    eb.create_application_version(ApplicationName=app, VersionLabel="v2", SourceBundle=bundle)
    updating = eb.update_environment(EnvironmentName=name, VersionLabel="v2")
    assert updating["Status"] == "Updating"
    assert updating["AbortableOperationInProgress"] is True
    eb.get_waiter("environment_updated").wait(EnvironmentNames=[name], WaiterConfig=FAST)
    ready = describe(eb, name)
    assert (ready["Status"], ready["VersionLabel"], ready["Health"]) == ("Ready", "v2", "Green")
    log = messages(eb, EnvironmentName=name, StartTime=updating["DateUpdated"])
    expected = [
        "Environment update is starting.",
        "Deploying new version to instance(s).",
        "New application version was deployed to running EC2 instances.",
        "Environment update completed successfully.",
    ]
    assert [m for m in log if m in expected] == expected
    assert messages(eb, EnvironmentName=name, VersionLabel="v2")  # deploy events carry the label


def test_operations_need_a_ready_environment(eb: Any, make_env: Any) -> None:
    env = make_env(wait=False)
    name = env["EnvironmentName"]
    must_be_ready = f"Environment named {name} is in an invalid state for this operation. Must be Ready."
    with aws_error("InvalidParameterValue", must_be_ready):
        eb.update_environment(EnvironmentName=name, VersionLabel="v1")
    with aws_error("InvalidParameterValue", must_be_ready):
        eb.restart_app_server(EnvironmentName=name)
    with aws_error("InvalidParameterValue", must_be_ready):
        eb.terminate_environment(EnvironmentName=name)
    wait_ready(eb, name)


def test_update_unknown_environment_or_version(eb: Any, make_env: Any, unique: str) -> None:
    with aws_error("InvalidParameterValue", f"No Environment found for EnvironmentName = 'ghost-{unique}'."):
        eb.update_environment(EnvironmentName=f"ghost-{unique}", VersionLabel="v1")
    with aws_error("InvalidParameterValue", "No Environment found for EnvironmentId = 'e-0000000000'."):
        eb.update_environment(EnvironmentId="e-0000000000", VersionLabel="v1")
    env = make_env()
    with aws_error("InvalidParameterValue", "No Application Version named 'v404' found."):
        eb.update_environment(EnvironmentId=env["EnvironmentId"], VersionLabel="v404")


def test_option_settings_update_scales_and_is_stored(eb: Any, app: str, make_env: Any) -> None:
    env = make_env()
    name = env["EnvironmentName"]
    changes = [
        {"Namespace": ASG, "OptionName": "MinSize", "Value": "2"},
        {"Namespace": ASG, "OptionName": "MaxSize", "Value": "6"},
        {"Namespace": "aws:elasticbeanstalk:application:environment", "OptionName": "DATABASE_HOST", "Value": "db.internal"},
    ]
    updating = eb.update_environment(EnvironmentName=name, OptionSettings=changes)
    assert updating["Status"] == "Updating"
    pending = eb.describe_configuration_settings(ApplicationName=app, EnvironmentName=name)["ConfigurationSettings"][0]
    assert pending["DeploymentStatus"] == "pending"
    wait_ready(eb, name)
    settings = _settings(eb, app, name)
    assert option(settings, ASG, "MinSize") == "2" and option(settings, ASG, "MaxSize") == "6"
    assert option(settings, "aws:elasticbeanstalk:application:environment", "DATABASE_HOST") == "db.internal"
    assert len(eb.describe_environment_resources(EnvironmentName=name)["EnvironmentResources"]["Instances"]) == 2
    log = messages(eb, EnvironmentName=name, StartTime=updating["DateUpdated"])
    assert f"Updating environment {name}'s configuration settings." in log
    assert "Successfully deployed new configuration to environment." in log
    assert sum(m.startswith("Added instance [i-") for m in log) == 1

    eb.update_environment(EnvironmentName=name, OptionsToRemove=[{"Namespace": ASG, "OptionName": "MinSize"}])
    wait_ready(eb, name)
    assert option(_settings(eb, app, name), ASG, "MinSize") == "1"  # back to the default
    assert len(eb.describe_environment_resources(EnvironmentName=name)["EnvironmentResources"]["Instances"]) == 1


def test_description_only_update_is_immediate(eb: Any, make_env: Any) -> None:
    env = make_env()
    answer = eb.update_environment(EnvironmentId=env["EnvironmentId"], Description="green side")
    assert (answer["Status"], answer["Description"]) == ("Ready", "green side")


# (namespace, option, bad value, AWS's reason)
BAD_VALUES = [
    (ASG, "MinSize", "two", "Value is not an integer."),
    (ASG, "MaxSize", "0", "Value is less than minimum allowed value: 1"),
    (ASG, "MaxSize", "10001", "Value is greater than maximum allowed value: 10000"),
    ("aws:elasticbeanstalk:environment", "EnvironmentType", "Cluster", "Value is not one of the allowed values: [SingleInstance, LoadBalanced]"),
    ("aws:autoscaling:launchconfiguration", "DisableIMDSv1", "yes", "Value is not a boolean (true or false)."),
    (
        "aws:elasticbeanstalk:environment:process:default",
        "MatcherHTTPCode",
        "2xx",
        "Value does not satisfy regex: '^((\\d{3}(-\\d{3})?)|(\\d{3}(,\\d{3})*))$' [The configured value for 'MatcherHTTPCode' is invalid. "
        "A valid value must be a single code of 3 digits, a comma separated list of codes (e.g 200,210), or a range of codes (e.g 200-210).]",
    ),
]


def test_invalid_option_values_are_refused(eb: Any, make_env: Any) -> None:
    name = make_env()["EnvironmentName"]
    for namespace, option_name, value, reason in BAD_VALUES:
        with aws_error("ConfigurationValidationException", INVALID.format(value=value, ns=namespace, name=option_name, reason=reason)):
            eb.update_environment(EnvironmentName=name, OptionSettings=[{"Namespace": namespace, "OptionName": option_name, "Value": value}])
    assert describe(eb, name)["Status"] == "Ready"


def test_unknown_options_and_namespaces_are_refused(eb: Any, app: str, version: str, unique: str) -> None:
    stack = "64bit Amazon Linux 2023 v4.6.0 running Python 3.11"
    for namespace, name in ((ASG, "MinimumSize"), ("aws:elasticbeanstalk:enviroment", "EnvironmentType")):
        message = (
            f"Configuration validation exception: Invalid option specification (Namespace: '{namespace}', OptionName: '{name}'): Unknown configuration setting."
        )
        with aws_error("ConfigurationValidationException", message):
            settings = [{"Namespace": namespace, "OptionName": name, "Value": "1"}]
            eb.create_environment(ApplicationName=app, EnvironmentName=f"opt-{unique}", VersionLabel=version, SolutionStackName=stack, OptionSettings=settings)
    assert eb.describe_environments(EnvironmentNames=[f"opt-{unique}"])["Environments"] == []


def test_min_size_above_max_size_is_refused(eb: Any, make_env: Any) -> None:
    env = make_env()
    message = INVALID.format(value="5", ns=ASG, name="MinSize", reason="MinSize must be less than or equal to MaxSize (4).")
    with aws_error("ConfigurationValidationException", message):
        eb.update_environment(EnvironmentName=env["EnvironmentName"], OptionSettings=[{"Namespace": ASG, "OptionName": "MinSize", "Value": "5"}])


def test_unmodelled_namespaces_are_accepted_as_is(eb: Any, app: str, make_env: Any) -> None:
    env = make_env(OptionSettings=[{"Namespace": "aws:elb:policies", "OptionName": "ConnectionDrainingEnabled", "Value": "true"}])
    assert option(_settings(eb, app, env["EnvironmentName"]), "aws:elb:policies", "ConnectionDrainingEnabled") == "true"


def test_validate_configuration_settings(eb: Any, app: str, make_env: Any) -> None:
    env = make_env()
    good = eb.validate_configuration_settings(
        ApplicationName=app, EnvironmentName=env["EnvironmentName"], OptionSettings=[{"Namespace": ASG, "OptionName": "MaxSize", "Value": "8"}]
    )
    assert good["Messages"] == []
    bad = eb.validate_configuration_settings(
        ApplicationName=app,
        EnvironmentName=env["EnvironmentName"],
        OptionSettings=[{"Namespace": ASG, "OptionName": "MaxSize", "Value": "x"}, {"Namespace": ASG, "OptionName": "Nope", "Value": "1"}],
    )
    assert [(m["Severity"], m["OptionName"]) for m in bad["Messages"]] == [("error", "MaxSize"), ("error", "Nope")]
    assert describe(eb, env["EnvironmentName"])["Status"] == "Ready"  # validation changes nothing


def test_restart_app_server(eb: Any, make_env: Any) -> None:
    env = make_env()
    eb.restart_app_server(EnvironmentName=env["EnvironmentName"])
    assert describe(eb, env["EnvironmentName"])["Status"] == "Updating"
    wait_ready(eb, env["EnvironmentName"])
    log = messages(eb, EnvironmentName=env["EnvironmentName"])
    assert log[-2:] == ["restartAppServer is starting.", "restartAppServer completed successfully."]


def test_rebuild_environment_replaces_instances(eb: Any, make_env: Any) -> None:
    env = make_env()
    before = eb.describe_environment_resources(EnvironmentName=env["EnvironmentName"])["EnvironmentResources"]["Instances"]
    eb.rebuild_environment(EnvironmentId=env["EnvironmentId"])
    wait_ready(eb, env["EnvironmentName"])
    after = eb.describe_environment_resources(EnvironmentName=env["EnvironmentName"])["EnvironmentResources"]["Instances"]
    assert len(after) == len(before) == 1 and after != before
    assert messages(eb, EnvironmentName=env["EnvironmentName"])[-1] == "rebuildEnvironment completed successfully."
