"""DescribeEnvironmentHealth and the control interface (health, failed deploys, settings, state)."""

from __future__ import annotations

from typing import Any

from tests.contract.ebkit import ENHANCED, FAST, aws_error, describe, messages, wait_ready

FAILED_DEPLOY = "Application failed to start: ImportError"


def test_environment_health_attributes(eb: Any, make_env: Any) -> None:
    env = make_env(OptionSettings=[ENHANCED, {"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "2"}])
    everything = eb.describe_environment_health(EnvironmentName=env["EnvironmentName"], AttributeNames=["All"])
    assert (everything["Status"], everything["Color"], everything["HealthStatus"]) == ("Ready", "Green", "Ok")
    assert everything["InstancesHealth"]["Ok"] == 2 and everything["InstancesHealth"]["Severe"] == 0
    assert everything["Causes"] == [] and "RefreshedAt" in everything and "RequestCount" in everything["ApplicationMetrics"]
    some = eb.describe_environment_health(EnvironmentId=env["EnvironmentId"], AttributeNames=["Color", "HealthStatus"])
    assert {k for k in some if k != "ResponseMetadata"} == {"EnvironmentName", "Color", "HealthStatus"}
    bare = eb.describe_environment_health(EnvironmentName=env["EnvironmentName"])
    assert {k for k in bare if k != "ResponseMetadata"} == {"EnvironmentName"}


def test_environment_health_needs_enhanced_reporting(eb: Any, make_env: Any, unique: str) -> None:
    env = make_env()
    with aws_error("InvalidRequestException", contains="does not have enhanced health reporting enabled"):
        eb.describe_environment_health(EnvironmentName=env["EnvironmentName"], AttributeNames=["All"])
    with aws_error("InvalidRequestException", f"No Environment found for EnvironmentName = 'ghost-{unique}'."):
        eb.describe_environment_health(EnvironmentName=f"ghost-{unique}", AttributeNames=["All"])


def test_injected_health_turns_the_environment_red_then_green(eb: Any, stack: Any, make_env: Any) -> None:
    env = make_env(OptionSettings=[ENHANCED])
    name = env["EnvironmentName"]
    status, state = stack.control(
        "POST",
        f"/_local/eb/environments/{name}/health",
        {"color": "Red", "health_status": "Severe", "causes": ["100.0 % of the requests are failing with HTTP 5xx."]},
    )
    assert status == 200 and state["description"]["Health"] == "Red"
    red = describe(eb, name)
    assert (red["Status"], red["Health"], red["HealthStatus"]) == ("Ready", "Red", "Severe")
    health = eb.describe_environment_health(EnvironmentName=name, AttributeNames=["All"])
    assert health["Causes"] == ["100.0 % of the requests are failing with HTTP 5xx."]
    assert health["InstancesHealth"]["Severe"] == 1
    [warning] = eb.describe_events(EnvironmentName=name, Severity="WARN")["Events"]
    assert warning["Message"] == "Environment health has transitioned from Ok to Severe. 100.0 % of the requests are failing with HTTP 5xx."

    stack.control("POST", f"/_local/eb/environments/{name}/health", {"color": "Green"})
    green = describe(eb, name)
    assert (green["Health"], green["HealthStatus"]) == ("Green", "Ok")
    assert messages(eb, EnvironmentName=name)[-1] == "Environment health has transitioned from Severe to Ok."


def test_injected_health_persists_through_operations(eb: Any, stack: Any, make_env: Any) -> None:
    env = make_env()
    stack.control("POST", f"/_local/eb/environments/{env['EnvironmentName']}/health", {"color": "Yellow"})
    eb.restart_app_server(EnvironmentName=env["EnvironmentName"])
    after = wait_ready(eb, env["EnvironmentName"])
    assert (after["Health"], after["HealthStatus"]) == ("Yellow", "Warning")


def test_health_control_errors(stack: Any, make_env: Any, unique: str) -> None:
    env = make_env(wait=False)
    assert stack.control("POST", f"/_local/eb/environments/ghost-{unique}/health", {"color": "Red"})[0] == 404
    assert stack.control("POST", f"/_local/eb/environments/{env['EnvironmentName']}/health", {"color": "Purple"})[0] == 400
    assert stack.control("POST", f"/_local/eb/environments/{env['EnvironmentName']}/health", {"color": "Green", "health_status": "Severe"})[0] == 400


def test_failed_deploy_all_at_once_keeps_the_new_label_and_turns_red(eb: Any, stack: Any, app: str, bundle: dict[str, str], make_env: Any) -> None:
    env = make_env()
    name = env["EnvironmentName"]
    eb.create_application_version(ApplicationName=app, VersionLabel="v2", SourceBundle=bundle)
    assert stack.control("POST", f"/_local/eb/environments/{name}/fail-next-deploy", {"message": FAILED_DEPLOY})[0] == 200
    eb.update_environment(EnvironmentName=name, VersionLabel="v2")
    eb.get_waiter("environment_updated").wait(EnvironmentNames=[name], WaiterConfig=FAST)
    failed = describe(eb, name)
    assert (failed["Status"], failed["Health"], failed["HealthStatus"], failed["VersionLabel"]) == ("Ready", "Red", "Degraded", "v2")
    errors = [e["Message"] for e in eb.describe_events(EnvironmentName=name, Severity="ERROR")["Events"]]
    assert "Failed to deploy application." in errors
    assert any(FAILED_DEPLOY in m for m in errors)
    assert "Environment update completed successfully." not in messages(eb, EnvironmentName=name)

    eb.update_environment(EnvironmentName=name, VersionLabel="v2")  # the failure was for one deploy only
    eb.get_waiter("environment_updated").wait(EnvironmentNames=[name], WaiterConfig=FAST)
    fixed = describe(eb, name)
    assert (fixed["Health"], fixed["HealthStatus"], fixed["VersionLabel"]) == ("Green", "Ok", "v2")


def test_failed_immutable_deploy_rolls_back_the_version(eb: Any, stack: Any, app: str, bundle: dict[str, str], make_env: Any) -> None:
    env = make_env(OptionSettings=[{"Namespace": "aws:elasticbeanstalk:command", "OptionName": "DeploymentPolicy", "Value": "Immutable"}])
    name = env["EnvironmentName"]
    eb.create_application_version(ApplicationName=app, VersionLabel="v2", SourceBundle=bundle)
    stack.control("POST", f"/_local/eb/environments/{name}/fail-next-deploy", {"message": FAILED_DEPLOY})
    eb.update_environment(EnvironmentName=name, VersionLabel="v2")
    eb.get_waiter("environment_updated").wait(EnvironmentNames=[name], WaiterConfig=FAST)
    failed = describe(eb, name)
    assert (failed["Status"], failed["Health"], failed["VersionLabel"]) == ("Ready", "Red", "v1")
    assert "Failed to deploy application." in messages(eb, EnvironmentName=name)


def test_control_state_and_settings(eb: Any, stack: Any, make_env: Any) -> None:
    env = make_env(wait=False)
    status, body = stack.control("GET", f"/_local/eb/environments/{env['EnvironmentName']}")
    assert status == 200
    [state] = body["environments"]
    assert state["description"]["Status"] == "Launching" and [s["step"] for s in state["pending_steps"]][-1] == "launched"
    listed = stack.control("GET", "/_local/eb/environments")[1]["environments"]
    assert env["EnvironmentId"] in {row["id"] for row in listed}

    original = stack.control("GET", "/_local/eb/settings")[1]["delay_s"]  # the contract suite's
    assert stack.control("POST", "/_local/eb/settings", {"delay_s": -1})[0] == 400
    try:
        assert stack.control("POST", "/_local/eb/settings", {"delay_s": 0.05})[1] == {"delay_s": 0.05}
        wait_ready(eb, env["EnvironmentName"])
        eb.restart_app_server(EnvironmentName=env["EnvironmentName"])
        due = stack.control("GET", f"/_local/eb/environments/{env['EnvironmentName']}")[1]["environments"][0]["pending_steps"]
        assert len(due) == 1
        wait_ready(eb, env["EnvironmentName"])
    finally:
        stack.control("POST", "/_local/eb/settings", {"delay_s": original})


def test_failed_rolling_deploy_warns_about_mixed_versions(eb: Any, stack: Any, app: str, bundle: dict[str, str], make_env: Any) -> None:
    env = make_env(OptionSettings=[{"Namespace": "aws:elasticbeanstalk:command", "OptionName": "DeploymentPolicy", "Value": "Rolling"}])
    name = env["EnvironmentName"]
    eb.create_application_version(ApplicationName=app, VersionLabel="v2", SourceBundle=bundle)
    stack.control("POST", f"/_local/eb/environments/{name}/fail-next-deploy", {"message": FAILED_DEPLOY})
    eb.update_environment(EnvironmentName=name, VersionLabel="v2")
    eb.get_waiter("environment_updated").wait(EnvironmentNames=[name], WaiterConfig=FAST)
    failed = describe(eb, name)
    assert (failed["Health"], failed["VersionLabel"]) == ("Red", "v2")
    warnings = [e["Message"] for e in eb.describe_events(EnvironmentName=name, Severity="WARN")["Events"]]
    assert any(m.startswith("During an aborted deployment, some instances may have deployed the new application version.") for m in warnings)


def test_failure_armed_while_launching_fails_the_launch(eb: Any, stack: Any, make_env: Any) -> None:
    env = make_env(wait=False)
    name = env["EnvironmentName"]
    assert stack.control("POST", f"/_local/eb/environments/{name}/fail-next-deploy", {"message": FAILED_DEPLOY})[0] == 200
    launched = wait_ready(eb, name)
    assert (launched["Health"], launched["HealthStatus"]) == ("Red", "Severe")
    log = messages(eb, EnvironmentName=name)
    assert log[-1] == "Create environment operation is complete, but with errors. For more information, see troubleshooting documentation."
    assert f"Successfully launched environment: {name}" not in log
