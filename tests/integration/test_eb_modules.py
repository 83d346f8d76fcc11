"""The Elastic Beanstalk modules through ansible-playbook against the local AWS.

Each module gets the four-step change test (check mode reports a change and
makes none, real run, check again and real again report no change), then
the behaviours a user relies on: waiting for a busy environment instead of
failing, clear failures (invalid option, same label with other content,
unknown version, taken CNAME, failed deploy), diffs limited to what changes,
and the events of the operation in the result. Every outcome is checked
with boto3 against the endpoint, not only from the module's own answer.
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.playbooks import ROOT, PlaybookRun, ensure_collection, run_playbook

PLAYBOOKS = ROOT / "tests/integration/playbooks"
VERSION = PLAYBOOKS / "eb_application_version.yml"
ENVIRONMENT = PLAYBOOKS / "eb_environment.yml"
INFO = PLAYBOOKS / "eb_environment_info.yml"
STACK = "64bit Amazon Linux 2023 v4.6.0 running Python 3.11"
ENV_NS = "aws:elasticbeanstalk:application:environment"


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


def bundle(path: Path, marker: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("application.py", f"def application(env, start):\n    start('200 OK', [])\n    return [b'{marker}']\n")
        archive.writestr("Procfile", "web: gunicorn application:application\n")
    return path


def zip_bytes(marker: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("application.py", f"# {marker}\n")
    return buf.getvalue()


@pytest.fixture
def app(stack, unique) -> dict[str, Any]:
    """An application and a bucket of bundles, with one processed version ``v1``."""
    eb, s3 = stack.client("elasticbeanstalk"), stack.client("s3")
    name, bucket = f"it-app-{unique}", f"it-bundles-{unique}"
    s3.create_bucket(Bucket=bucket)
    eb.create_application(ApplicationName=name)
    for label in ("v1", "v2"):
        s3.put_object(Bucket=bucket, Key=f"{label}.zip", Body=zip_bytes(label))
        eb.create_application_version(ApplicationName=name, VersionLabel=label, SourceBundle={"S3Bucket": bucket, "S3Key": f"{label}.zip"}, Process=True)
    for _ in range(100):
        statuses = {v["Status"] for v in eb.describe_application_versions(ApplicationName=name)["ApplicationVersions"]}
        if statuses == {"Processed"}:
            break
        time.sleep(0.1)
    return {"name": name, "bucket": bucket, "eb": eb, "s3": s3}


def result(run: PlaybookRun, task: str) -> dict[str, Any]:
    return run.task(task)


def live_settings(eb: Any, app: str, env: str) -> dict[str, dict[str, str]]:
    found = eb.describe_configuration_settings(ApplicationName=app, EnvironmentName=env)["ConfigurationSettings"]
    out: dict[str, dict[str, str]] = {}
    for setting in found[0]["OptionSettings"]:
        out.setdefault(setting["Namespace"], {})[setting["OptionName"]] = setting.get("Value")
    return out


def active(eb: Any, env: str) -> list[dict[str, Any]]:
    return [e for e in eb.describe_environments(EnvironmentNames=[env])["Environments"] if e["Status"] != "Terminated"]


def four_steps(stack, playbook: Path, extra: dict[str, Any], task: str, before_real=None) -> tuple[PlaybookRun, PlaybookRun]:
    """check (changed), real (changed), check (ok), real (ok); returns (check, real)."""
    check = run_playbook(stack.env(), playbook, extra, check=True, diff=True)
    assert check.rc == 0, check.explain()
    assert check.changed_tasks() == [task]
    if before_real:
        before_real()
    real = run_playbook(stack.env(), playbook, extra, diff=True)
    assert real.rc == 0, real.explain()
    assert real.changed_tasks() == [task]
    again_check = run_playbook(stack.env(), playbook, extra, check=True, diff=True)
    assert again_check.rc == 0, again_check.explain()
    assert again_check.changed == 0, again_check.task(task)
    again = run_playbook(stack.env(), playbook, extra, diff=True)
    assert again.rc == 0, again.explain()
    assert again.changed == 0, again.task(task)
    return check, real


# -- eb_application_version ------------------------------------------------------------------------


def test_version_upload_four_steps_then_immutable_label_then_delete(stack, app, unique, tmp_path):
    eb, s3 = app["eb"], app["s3"]
    src = bundle(tmp_path / "bundle.zip", "one")
    extra = {"it_app": app["name"], "it_label": "r1", "it_bucket": app["bucket"], "it_src": str(src), "it_tags": {"commit": "abc123"}}

    def nothing_yet() -> None:
        assert eb.describe_application_versions(ApplicationName=app["name"], VersionLabels=["r1"])["ApplicationVersions"] == []
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=app["bucket"]).get("Contents", [])]
        assert f"{app['name']}/r1.zip" not in keys  # check mode uploaded nothing

    check, real = four_steps(stack, VERSION, extra, "Application version", before_real=nothing_yet)
    assert check.task("Application version")["would_upload"] is True
    created = real.task("Application version")
    assert created["uploaded"] is True
    assert created["application_version"]["status"] == "Processed"
    assert created["application_version"]["tags"] == {"commit": "abc123"}
    assert created["diff"]["after"]["source_bundle"] == f"s3://{app['bucket']}/{app['name']}/r1.zip"
    version = eb.describe_application_versions(ApplicationName=app["name"], VersionLabels=["r1"])["ApplicationVersions"][0]
    assert version["Status"] == "Processed"
    assert version["SourceBundle"] == {"S3Bucket": app["bucket"], "S3Key": f"{app['name']}/r1.zip"}
    head = s3.head_object(Bucket=app["bucket"], Key=f"{app['name']}/r1.zip")
    assert head["Metadata"]["sha256"] == created["content_sha256"]

    # the same label with other content is refused, and nothing is overwritten
    other = bundle(tmp_path / "other.zip", "two")
    clash = run_playbook(stack.env(), VERSION, {**extra, "it_src": str(other)})
    assert clash.rc != 0
    message = clash.task("Application version")["msg"]
    assert "Application version r1 already exists with other content" in message
    assert "register the new content under a new label" in message
    assert s3.head_object(Bucket=app["bucket"], Key=f"{app['name']}/r1.zip")["Metadata"]["sha256"] == created["content_sha256"]
    moved = run_playbook(stack.env(), VERSION, {**extra, "it_src": None, "it_key": "elsewhere.zip"} | {"it_src": str(src)})
    assert moved.rc != 0
    assert (
        f"already exists with the bundle s3://{app['bucket']}/{app['name']}/r1.zip, not s3://{app['bucket']}/elsewhere.zip"
        in moved.task("Application version")["msg"]
    )

    # the description is the one thing that may change
    described = run_playbook(stack.env(), VERSION, {**extra, "it_description": "release one"}, diff=True)
    assert described.rc == 0, described.explain()
    assert described.task("Application version")["diff"]["after"]["description"] == "release one"
    assert eb.describe_application_versions(ApplicationName=app["name"], VersionLabels=["r1"])["ApplicationVersions"][0]["Description"] == "release one"

    # deletion: four steps again
    gone = {"it_app": app["name"], "it_label": "r1", "it_state": "absent", "it_delete_source_bundle": True}
    four_steps(stack, VERSION, gone, "Application version")
    assert eb.describe_application_versions(ApplicationName=app["name"], VersionLabels=["r1"])["ApplicationVersions"] == []
    assert "Contents" not in s3.list_objects_v2(Bucket=app["bucket"], Prefix=f"{app['name']}/r1.zip")


def test_version_from_s3_and_a_failed_processing_fails_clearly(stack, app):
    eb, s3 = app["eb"], app["s3"]
    ok = {"it_app": app["name"], "it_label": "s3-one", "it_bucket": app["bucket"], "it_key": "v1.zip"}
    four_steps(stack, VERSION, ok, "Application version")
    # A bundle that is not a ZIP archive: AWS marks the version Failed.
    s3.put_object(Bucket=app["bucket"], Key="broken.zip", Body=b"this is not a zip archive")
    failed = run_playbook(stack.env(), VERSION, {**ok, "it_label": "broken", "it_key": "broken.zip"})
    assert failed.rc != 0
    message = failed.task("Application version")["msg"]
    assert "application version broken of" in message and "is Failed" in message, message
    assert "fix it and register it under a new label" in message
    assert eb.describe_application_versions(ApplicationName=app["name"], VersionLabels=["broken"])["ApplicationVersions"][0]["Status"] == "Failed"
    missing = run_playbook(stack.env(), VERSION, {**ok, "it_label": "nothing", "it_key": "missing.zip"})
    assert missing.rc != 0
    assert f"Source bundle s3://{app['bucket']}/missing.zip not found" in missing.task("Application version")["msg"]


def test_a_version_in_use_is_not_deleted_and_the_message_says_where(stack, app, unique):
    eb = app["eb"]
    env = f"it-use-{unique}"
    eb.create_environment(ApplicationName=app["name"], EnvironmentName=env, VersionLabel="v1", SolutionStackName=STACK)
    refused = run_playbook(stack.env(), VERSION, {"it_app": app["name"], "it_label": "v1", "it_state": "absent"})
    assert refused.rc != 0
    message = refused.task("Application version")["msg"]
    assert f"Cannot delete application version v1: it runs in {env}" in message
    assert "deploy another version" in message
    assert eb.describe_application_versions(ApplicationName=app["name"], VersionLabels=["v1"])["ApplicationVersions"]


# -- eb_environment -------------------------------------------------------------------------------------


def settings(unique: str, max_size: int = 2, flag: str = "on") -> dict[str, Any]:
    return {
        "aws:autoscaling:asg": {"MinSize": 1, "MaxSize": max_size},
        "aws:autoscaling:launchconfiguration": {"DisableIMDSv1": True},
        "aws:elasticbeanstalk:healthreporting:system": {"SystemType": "enhanced"},
        "aws:elasticbeanstalk:environment:process:default": {"HealthCheckPath": "/healthz"},
        ENV_NS: {"FEATURE_FLAG": flag, "RUN_ID": unique},
    }


def test_environment_four_steps_create_with_settings_events_and_tags(stack, app, unique):
    eb = app["eb"]
    env = f"it-env-{unique}"
    extra = {
        "it_app": app["name"],
        "it_env": env,
        "it_stack": STACK,
        "it_version": "v1",
        "it_cname_prefix": f"it-live-{unique}",
        "it_settings": settings(unique),
        "it_tags": {"Name": env, "tier": "web"},
    }
    check, real = four_steps(stack, ENVIRONMENT, extra, "Environment", before_real=lambda: assert_no_env(eb, env))
    planned = check.task("Environment")
    assert planned["operations"] == ["create"]
    assert planned["diff"]["after"]["option_settings"]["aws:autoscaling:asg"] == {"MinSize": "1", "MaxSize": "2"}

    created = real.task("Environment")
    assert created["environment"]["status"] == "Ready" and created["environment"]["health"] == "Green"
    assert created["environment"]["cname"] == f"it-live-{unique}.us-east-1.elasticbeanstalk.com"
    assert created["environment"]["tags"] == {"Name": env, "tier": "web"}
    assert created["option_settings"]["aws:autoscaling:launchconfiguration"]["DisableIMDSv1"] == "true"
    messages = [e["message"] for e in created["events"]]
    assert "createEnvironment is starting." in messages
    assert messages[-1] == f"Successfully launched environment: {env}"
    assert created["timings"]["create_s"] > 0

    described = active(eb, env)[0]
    assert (described["Status"], described["Health"], described["VersionLabel"]) == ("Ready", "Green", "v1")
    live = live_settings(eb, app["name"], env)
    assert live["aws:autoscaling:asg"]["MaxSize"] == "2"
    assert live["aws:autoscaling:launchconfiguration"]["DisableIMDSv1"] == "true"
    assert live["aws:elasticbeanstalk:environment:process:default"]["HealthCheckPath"] == "/healthz"
    assert live[ENV_NS] == {"FEATURE_FLAG": "on", "RUN_ID": unique}


def assert_no_env(eb: Any, env: str) -> None:
    assert active(eb, env) == [], "check mode created the environment"


@pytest.fixture
def running(stack, app, unique) -> dict[str, Any]:
    """A Ready, Green environment (settings(unique), version v1, tag Name) made with boto3.

    The module made the same in the four-step test above; boto3 is faster,
    and the module's first run against it must report no change.
    """
    eb, env = app["eb"], f"it-run-{unique}"
    extra = {"it_app": app["name"], "it_env": env, "it_stack": STACK, "it_version": "v1", "it_settings": settings(unique), "it_tags": {"Name": env}}
    option_settings = [
        {"Namespace": ns, "OptionName": opt, "Value": str(value).lower() if isinstance(value, bool) else str(value)}
        for ns, options in settings(unique).items()
        for opt, value in options.items()
    ]
    eb.create_environment(
        ApplicationName=app["name"],
        EnvironmentName=env,
        SolutionStackName=STACK,
        VersionLabel="v1",
        OptionSettings=option_settings,
        Tags=[{"Key": "Name", "Value": env}],
    )
    for _ in range(300):
        found = active(eb, env)[0]
        if (found["Status"], found["Health"]) == ("Ready", "Green"):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"{env} did not become Ready/Green: {found}")
    return {**app, "env": env, "extra": extra}


def test_update_diff_shows_only_changed_keys_and_applies_settings_then_version(stack, running):
    eb, env = running["eb"], running["env"]
    extra = {
        **running["extra"],
        "it_version": "v2",
        "it_settings": settings(running["extra"]["it_settings"][ENV_NS]["RUN_ID"], max_size=3, flag="off"),
        "it_remove": [f"{ENV_NS}:RUN_ID"],
        "it_tags": {"Name": env, "release": "two"},
    }
    del extra["it_settings"][ENV_NS]["RUN_ID"]
    check, real = four_steps(stack, ENVIRONMENT, extra, "Environment")
    diff = check.task("Environment")["diff"]
    assert diff["before"] == {
        "option_settings": {
            "aws:autoscaling:asg": {"MaxSize": "2"},
            ENV_NS: {"FEATURE_FLAG": "on", "RUN_ID": running["extra"]["it_settings"][ENV_NS]["RUN_ID"]},
        },
        "version_label": "v1",
        "tags": {},
    }
    assert diff["after"] == {
        "option_settings": {"aws:autoscaling:asg": {"MaxSize": "3"}, ENV_NS: {"FEATURE_FLAG": "off", "RUN_ID": None}},
        "version_label": "v2",
        "tags": {"release": "two"},
    }
    assert check.task("Environment")["operations"] == ["update_tags", "update_configuration", "deploy_version"]
    updated = real.task("Environment")
    assert updated["operations"] == ["update_tags", "update_configuration", "deploy_version"]
    assert updated["environment"]["version_label"] == "v2"
    assert {"configuration_s", "deploy_s", "total_s"} <= set(updated["timings"])
    messages = [e["message"] for e in updated["events"]]
    assert messages.index("Successfully deployed new configuration to environment.") < messages.index(
        "New application version was deployed to running EC2 instances."
    ), messages
    assert any(e.get("version_label") == "v2" for e in updated["events"])
    described = active(eb, env)[0]
    assert (described["Status"], described["Health"], described["VersionLabel"]) == ("Ready", "Green", "v2")
    live = live_settings(eb, running["name"], env)
    assert live["aws:autoscaling:asg"]["MaxSize"] == "3"
    assert live[ENV_NS] == {"FEATURE_FLAG": "off"}
    tags = {t["Key"]: t["Value"] for t in eb.list_tags_for_resource(ResourceArn=described["EnvironmentArn"])["ResourceTags"]}
    assert tags["release"] == "two" and tags["Name"] == env


def test_busy_environment_is_waited_for_instead_of_failing(stack, running):
    eb, env = running["eb"], running["env"]
    # an update that takes longer than ansible-playbook needs to start
    stack.control("POST", "/_local/eb/settings", {"delay_s": 6.0})
    try:
        eb.update_environment(EnvironmentName=env, OptionSettings=[{"Namespace": ENV_NS, "OptionName": "OTHER", "Value": "1"}])
        assert active(eb, env)[0]["Status"] == "Updating"
        # straight boto3 is refused now
        with pytest.raises(eb.exceptions.ClientError, match="invalid state for this operation. Must be Ready"):
            eb.update_environment(EnvironmentName=env, Description="refused")
        stack.control("POST", "/_local/eb/settings", {"delay_s": 0.5})
        extra = {**running["extra"], "it_description": "after the busy wait"}
        run = run_playbook(stack.env(), ENVIRONMENT, extra)
    finally:
        stack.control("POST", "/_local/eb/settings", {"delay_s": 0.5})
    assert run.rc == 0, run.explain()
    task = run.task("Environment")
    assert task["changed"] is True
    assert task["timings"]["busy_wait_s"] > 0.5
    assert any("waiting for it before changing it" in line for line in task["progress"]), task["progress"]
    described = active(eb, env)[0]
    assert described["Description"] == "after the busy wait" and described["Status"] == "Ready"
    assert live_settings(eb, running["name"], env)[ENV_NS]["OTHER"] == "1"  # the other update was not lost


def test_invalid_option_fails_with_the_aws_message_and_the_option(stack, running):
    bad = {**running["extra"], "it_settings": {"aws:autoscaling:asg": {"MinSize": "lots"}}}
    for check in (True, False):
        run = run_playbook(stack.env(), ENVIRONMENT, bad, check=check)
        assert run.rc != 0
        message = run.task("Environment")["msg"]
        assert "Elastic Beanstalk rejected the option settings of" in message, message
        assert "aws:autoscaling:asg/MinSize" in message, message
        assert "Fix option_settings" in message
    assert live_settings(running["eb"], running["name"], running["env"])["aws:autoscaling:asg"]["MinSize"] == "1"


def test_invalid_option_at_creation_names_the_option(stack, app, unique):
    extra = {"it_app": app["name"], "it_env": f"it-bad-{unique}", "it_stack": STACK, "it_settings": {"aws:autoscaling:asg": {"MaxSize": 0}}}
    run = run_playbook(stack.env(), ENVIRONMENT, extra)
    assert run.rc != 0
    task = run.task("Environment")
    assert "aws:autoscaling:asg/MaxSize (you set '0')" in task["msg"], task["msg"]
    assert task["option"] == {"namespace": "aws:autoscaling:asg", "option_name": "MaxSize"}
    assert active(app["eb"], f"it-bad-{unique}") == []


def test_unknown_version_and_taken_cname_fail_clearly_before_any_change(stack, running, unique):
    missing = run_playbook(stack.env(), ENVIRONMENT, {**running["extra"], "it_version": "v404"})
    assert missing.rc != 0
    assert f"Application version v404 not found in application {running['name']}" in missing.task("Environment")["msg"]
    assert active(running["eb"], running["env"])[0]["VersionLabel"] == "v1"
    taken_prefix = f"it-taken-{unique}"

    running["eb"].create_environment(ApplicationName=running["name"], EnvironmentName=f"it-cn-{unique}", SolutionStackName=STACK, CNAMEPrefix=taken_prefix)
    taken = run_playbook(
        stack.env(), ENVIRONMENT, {"it_app": running["name"], "it_env": f"it-cn2-{unique}", "it_stack": STACK, "it_cname_prefix": taken_prefix}
    )
    assert taken.rc != 0
    task = taken.task("Environment")
    assert f"CNAME prefix it-taken-{unique} is not available" in task["msg"]
    assert task["suggested_cname_prefix"].startswith(f"it-taken-{unique}-")
    assert running["eb"].check_dns_availability(CNAMEPrefix=task["suggested_cname_prefix"])["Available"] is True
    assert active(running["eb"], f"it-cn2-{unique}") == []


def test_failed_deploy_fails_fast_with_the_error_event(stack, running):
    status, _ = stack.control("POST", f"/_local/eb/environments/{running['env']}/fail-next-deploy", {"message": "Gunicorn failed to start: ImportError"})
    assert status == 200
    started = time.monotonic()
    run = run_playbook(stack.env(), ENVIRONMENT, {**running["extra"], "it_version": "v2", "it_wait_timeout": 300})
    assert run.rc != 0
    assert time.monotonic() - started < 60  # failed fast, not at the 300 s timeout
    task = run.task("Environment")
    assert "reported an error" in task["msg"], task["msg"]
    assert "Gunicorn failed to start: ImportError" in task["msg"]
    assert any(e["severity"] == "ERROR" for e in task["events"])


def test_health_turning_red_fails_fast(stack, running):
    eb, env = running["eb"], running["env"]
    stack.control("POST", "/_local/eb/settings", {"delay_s": 3.0})

    def turn_red_once_updating() -> None:
        for _ in range(600):
            if active(eb, env)[0]["Status"] == "Updating":
                stack.control(
                    "POST", f"/_local/eb/environments/{env}/health", {"color": "Red", "health_status": "Severe", "causes": ["100 % of requests are 5xx"]}
                )
                return
            time.sleep(0.05)

    injector = threading.Thread(target=turn_red_once_updating)
    try:
        injector.start()
        started = time.monotonic()
        changed = settings(running["extra"]["it_settings"][ENV_NS]["RUN_ID"], flag="red")
        run = run_playbook(stack.env(), ENVIRONMENT, {**running["extra"], "it_settings": changed, "it_wait_timeout": 300})
        took = time.monotonic() - started
    finally:
        injector.join()
        stack.control("POST", "/_local/eb/settings", {"delay_s": 0.5})
        stack.control("POST", f"/_local/eb/environments/{env}/health", {"color": "Green"})
    assert run.rc != 0
    message = run.task("Environment")["msg"]
    assert f"environment {env} turned Updating / Red (Severe)" in message, message
    assert took < 60


def test_restart_and_terminate(stack, running):
    eb, env = running["eb"], running["env"]
    # an environment made outside the module, with the same settings, is already converged
    converged = run_playbook(stack.env(), ENVIRONMENT, running["extra"], check=True)
    assert converged.rc == 0, converged.explain()
    assert converged.changed == 0, converged.task("Environment")
    restarted = run_playbook(stack.env(), ENVIRONMENT, {**running["extra"], "it_state": "restarted"})
    assert restarted.rc == 0, restarted.explain()
    assert restarted.task("Environment")["operations"] == ["restart_app_server"]
    assert active(eb, env)[0]["Status"] == "Ready"

    gone = {"it_app": running["name"], "it_env": env, "it_state": "absent"}
    four_steps(stack, ENVIRONMENT, gone, "Environment")
    assert active(eb, env) == []
    terminated = eb.describe_environments(EnvironmentNames=[env], IncludeDeleted=True)["Environments"]
    assert terminated and terminated[0]["Status"] == "Terminated"


# -- eb_environment_info --------------------------------------------------------------------------------


def test_info_lists_environments_with_settings_and_health(stack, running):
    base = {"it_app": running["name"]}
    brief = run_playbook(stack.env(), INFO, base)
    assert brief.rc == 0, brief.explain()
    envs = brief.task("Environments")["environments"]
    assert [e["environment_name"] for e in envs] == [running["env"]]
    assert envs[0]["tags"] == {"Name": running["env"]}
    assert "option_settings" not in envs[0] and "health_details" not in envs[0]

    full = run_playbook(stack.env(), INFO, {"it_names": [running["env"]], "it_include_settings": True, "it_include_health": True}, check=True)
    assert full.rc == 0, full.explain()
    env = full.task("Environments")["environments"][0]
    assert env["option_settings"]["aws:autoscaling:asg"]["MaxSize"] == "2"
    assert env["health_details"]["health_status"] == "Ok" and env["health_details"]["color"] == "Green"

    running["eb"].terminate_environment(EnvironmentName=running["env"])
    deleted = run_playbook(stack.env(), INFO, {**base, "it_include_deleted": True})
    assert [e["environment_name"] for e in deleted.task("Environments")["environments"]] == [running["env"]]
    by_id = run_playbook(stack.env(), INFO, {"it_ids": [deleted.task("Environments")["environments"][0]["environment_id"]], "it_include_deleted": True})
    assert by_id.task("Environments")["environments"][0]["status"] in ("Terminating", "Terminated")
