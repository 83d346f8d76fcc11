"""playbooks/deploy.yml and playbooks/rollback.yml against the local AWS.

Each test gets its own platform (``platform_env=it<unique>``): the live
environment ``fastier-it<unique>-blue`` on v1, holding the live CNAME, made
with boto3 the way the beanstalk role makes it, and a bucket for the bundles
and the deploy ledger. The playbooks run as a user (or the pipeline) runs
them, and every outcome is read back with boto3: which environment holds the
CNAME, what each runs, how the idle environment was made, what the ledger in
S3 says.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_blue_green_swap import ENHANCED, STACK, Answers, active, holder, make_app, ready, wait_until
from tests.playbooks import ROOT, PlaybookRun, run_playbook

DEPLOY = ROOT / "playbooks/deploy.yml"
ROLLBACK = ROOT / "playbooks/rollback.yml"
ENV_NS = "aws:elasticbeanstalk:application:environment"


@pytest.fixture
def platform(stack, unique) -> dict[str, Any]:
    env = f"it{unique}"
    app = f"fastier-{env}"
    bucket = f"bg-artifacts-{unique}"
    make_app(stack, app, bucket)
    eb = stack.client("elasticbeanstalk")
    blue, green = f"{app}-blue", f"{app}-green"
    eb.create_environment(
        ApplicationName=app,
        EnvironmentName=blue,
        SolutionStackName=STACK,
        VersionLabel="v1",
        CNAMEPrefix=app,
        OptionSettings=[
            *ENHANCED,
            {"Namespace": "aws:autoscaling:asg", "OptionName": "MaxSize", "Value": "3"},
            {"Namespace": "aws:autoscaling:launchconfiguration", "OptionName": "DisableIMDSv1", "Value": "true"},
            {"Namespace": ENV_NS, "OptionName": "FEATURE_FLAG", "Value": unique},
        ],
        Tags=[{"Key": "Name", "Value": blue}, {"Key": "fastier:color", "Value": "blue"}, {"Key": "team", "Value": "web"}],
    )
    ready(eb, blue)
    return {
        "eb": eb,
        "s3": stack.client("s3"),
        "app": app,
        "blue": blue,
        "green": green,
        "bucket": bucket,
        "live": f"{app}.us-east-1.elasticbeanstalk.com",
        "unique": unique,
        "extra": {
            "platform_env": env,
            "blue_green_ledger_bucket": bucket,
            "blue_green_watch_seconds": 1,
            "blue_green_poll_interval": 0.25,
        },
    }


@pytest.fixture
def http() -> Iterator[Answers]:
    """A local HTTP server standing in for the app's health endpoint (its answer is the test's)."""
    server = Answers()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def play(stack: Any, playbook: Any, extra: dict[str, Any], check: bool = False) -> PlaybookRun:
    return run_playbook(stack.env(), playbook, extra, check=check, diff=True)


def ledger(p: dict[str, Any]) -> dict[str, Any]:
    """{key: parsed JSON} of every ledger object of the application."""
    found = p["s3"].list_objects_v2(Bucket=p["bucket"], Prefix=f"ledger/{p['app']}/").get("Contents", [])
    return {o["Key"]: json.loads(p["s3"].get_object(Bucket=p["bucket"], Key=o["Key"])["Body"].read()) for o in found}


def current(p: dict[str, Any]) -> dict[str, Any]:
    return ledger(p)[f"ledger/{p['app']}/current.json"]


def entries(p: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-run entries, oldest first."""
    found = ledger(p)
    return [found[k] for k in sorted(found) if not k.endswith("/current.json")]


def settings_of(eb: Any, app: str, env: str) -> dict[str, dict[str, str]]:
    found = eb.describe_configuration_settings(ApplicationName=app, EnvironmentName=env)["ConfigurationSettings"][0]
    out: dict[str, dict[str, str]] = {}
    for setting in found["OptionSettings"]:
        out.setdefault(setting["Namespace"], {})[setting["OptionName"]] = setting.get("Value")
    return out


def tags_of(eb: Any, env: str) -> dict[str, str]:
    arn = active(eb, env)["EnvironmentArn"]
    return {t["Key"]: t["Value"] for t in eb.list_tags_for_resource(ResourceArn=arn)["ResourceTags"]}


def role_task(run: PlaybookRun, name: str) -> dict[str, Any]:
    """The result of a task of the blue_green role."""
    return run.task(f"fastier.platform.blue_green : {name}")


def outputs(run: PlaybookRun) -> dict[str, Any]:
    return run.task("Say what is live")["msg"]


def test_first_deploy_check_mode_then_green_made_from_blue_and_promoted_then_a_rerun_is_a_noop(stack, platform):
    p = platform
    eb, app, blue, green = p["eb"], p["app"], p["blue"], p["green"]
    extra = {**p["extra"], "deploy_version_label": "v2"}

    check = play(stack, DEPLOY, extra, check=True)
    assert check.rc == 0, check.explain()
    assert role_task(check, "Deploy the version to the idle environment")["changed"] is True
    planned = role_task(check, "Promote the idle environment")
    assert planned["changed"] is True
    assert planned["diff"]["after"] == {"live_environment": green, "live_version": "v2"}
    assert planned["blockers"] == [
        f"no environment of the pair runs version v2 (live {blue} runs v1, idle {green} does not exist); deploy it to the idle environment first"
    ]
    assert active(eb, green) is None  # check mode created nothing
    assert holder(eb, app, p["live"]) == blue
    assert ledger(p) == {}

    run = play(stack, DEPLOY, extra)
    assert run.rc == 0, run.explain()
    assert outputs(run)[:2] == [f"Live: {green} runs v2", f"Idle (kept for a rollback): {blue} runs v1"]
    # green was made from blue's settings and tags, and runs v2 behind the live CNAME
    assert holder(eb, app, p["live"]) == green
    green_env = active(eb, green)
    assert (green_env["Status"], green_env["Health"], green_env["VersionLabel"]) == ("Ready", "Green", "v2")
    assert green_env["SolutionStackName"] == STACK
    live_settings = settings_of(eb, app, green)
    assert live_settings["aws:autoscaling:asg"]["MaxSize"] == "3"
    assert live_settings["aws:autoscaling:launchconfiguration"]["DisableIMDSv1"] == "true"
    assert live_settings["aws:elasticbeanstalk:healthreporting:system"]["SystemType"] == "enhanced"
    assert live_settings[ENV_NS] == {"FEATURE_FLAG": p["unique"]}
    assert {k: v for k, v in tags_of(eb, green).items() if not k.startswith("elasticbeanstalk:")} == {"Name": green, "fastier:color": "green", "team": "web"}
    # blue is kept as it was, for a rollback
    blue_env = active(eb, blue)
    assert (blue_env["Status"], blue_env["VersionLabel"]) == ("Ready", "v1")
    # the ledger: one entry and the current pointer
    [entry] = entries(p)
    assert entry["key"].startswith(f"ledger/{app}/") and entry["key"].endswith("-v2.json")
    assert (entry["action"], entry["version"], entry["outcome"], entry["environment"]) == ("deploy", "v2", "succeeded", green)
    assert entry["previous"] == {"version": "v1", "environment": blue}
    assert entry["strategy"] == "cname_swap" and entry["started_by"]["user"]
    assert {"deploy_idle_s", "switch_s", "watch_s", "total_s"} <= set(entry["timings"])
    now = current(p)
    assert (now["version"], now["environment"], now["key"]) == ("v2", green, entry["key"])
    assert [(h["version"], h["environment"]) for h in now["history"]] == [("v2", green), ("v1", blue)]

    again = play(stack, DEPLOY, extra)
    assert again.rc == 0, again.explain()
    assert again.changed == 0, again.changed_tasks()
    assert role_task(again, "Say that there is nothing to do")["msg"] == f"{green} is live and runs v2: nothing to do."
    assert len(entries(p)) == 1
    assert holder(eb, app, p["live"]) == green


def test_pipeline_stage_then_promote_then_rollback_redeploys_to_a_new_environment(stack, platform, http):
    p = platform
    eb, s3, app, blue, green = p["eb"], p["s3"], p["app"], p["blue"], p["green"]
    s3.put_object(Bucket=p["bucket"], Key="bundles/r2.zip", Body=s3.get_object(Bucket=p["bucket"], Key="bundles/v2.zip")["Body"].read())
    smoke = {"blue_green_smoke_url": http.url + "/healthz?env={environment_name}", "blue_green_smoke_retries": 1, "blue_green_smoke_delay": 0.2}
    base = {**p["extra"], **smoke, "blue_green_started_by": "pipeline fastier-it release 42"}

    # the pipeline's Deploy stage: register r2 from its bundle, stage it on the idle environment
    stage = play(
        stack,
        DEPLOY,
        {**base, "deploy_version_label": "r2", "deploy_bundle_bucket": p["bucket"], "deploy_bundle_key": "bundles/r2.zip", "deploy_promote": False},
    )
    assert stage.rc == 0, stage.explain()
    assert eb.describe_application_versions(ApplicationName=app, VersionLabels=["r2"])["ApplicationVersions"][0]["Status"] == "Processed"
    assert active(eb, green)["VersionLabel"] == "r2"
    assert holder(eb, app, p["live"]) == blue  # staged, not promoted
    assert http.hits == [f"/healthz?env={green}"]  # the stage's smoke test hit green
    assert ledger(p) == {}

    # the pipeline's Promote stage: same playbook, promote
    promote = play(stack, DEPLOY, {**base, "deploy_version_label": "r2", "deploy_promote": True})
    assert promote.rc == 0, promote.explain()
    assert role_task(promote, "Deploy the version to the idle environment").get("changed") is False
    assert role_task(promote, "Promote the idle environment")["smoke_test"][0]["ok"] is True
    assert holder(eb, app, p["live"]) == green
    assert current(p)["version"] == "r2" and current(p)["started_by"]["note"] == "pipeline fastier-it release 42"

    # the previous environment is gone: rollback redeploys v1 to a new blue made from green, then promotes it
    eb.terminate_environment(EnvironmentName=blue)
    wait_until(lambda: active(eb, blue) is None, what=f"{blue} terminated")
    back = play(stack, ROLLBACK, base)
    assert back.rc == 0, back.explain()
    assert role_task(back, "Deploy the version to the idle environment")["changed"] is True
    assert holder(eb, app, p["live"]) == blue
    assert active(eb, blue)["VersionLabel"] == "v1" and active(eb, green)["VersionLabel"] == "r2"
    assert settings_of(eb, app, blue)[ENV_NS] == {"FEATURE_FLAG": p["unique"]}  # made from green's settings
    now = current(p)
    assert (now["action"], now["version"], now["rolled_back_from"], now["environment"]) == ("rollback", "v1", "r2", blue)
    assert [h["version"] for h in now["history"]] == ["v1"]

    # a second rollback does not walk further back
    again = play(stack, ROLLBACK, base)
    assert again.rc == 0, again.explain()
    assert again.changed == 0, again.changed_tasks()
    assert holder(eb, app, p["live"]) == blue

    assert [(e["action"], e["version"], e["outcome"]) for e in entries(p)] == [("deploy", "r2", "succeeded"), ("rollback", "v1", "succeeded")]
    # (deploy -> deploy -> rollback by swap back, with no redeploy, is the molecule scenario blue_green)


def test_a_failed_deploy_to_the_idle_environment_is_recorded_and_blue_stays_live(stack, platform):
    p = platform
    eb, app, blue, green = p["eb"], p["app"], p["blue"], p["green"]
    # green exists (idle, v1) and its next deploy fails
    eb.create_environment(ApplicationName=app, EnvironmentName=green, SolutionStackName=STACK, VersionLabel="v1", OptionSettings=ENHANCED)
    ready(eb, green)
    code, _ = stack.control("POST", f"/_local/eb/environments/{green}/fail-next-deploy", {"message": "ImportError: no module named app"})
    assert code == 200
    blue_before = active(eb, blue)
    started = time.monotonic()
    run = play(stack, DEPLOY, {**p["extra"], "deploy_version_label": "v2"})
    assert run.rc != 0
    assert time.monotonic() - started < 120
    message = role_task(run, "Fail with what went wrong")["msg"]
    assert 'The deploy of v2 failed at "Deploy the version to the idle environment"' in message, message
    assert "ImportError: no module named app" in message
    assert f"Live now: {blue}" in message
    # nothing moved: blue untouched, still live
    assert holder(eb, app, p["live"]) == blue
    blue_after = active(eb, blue)
    assert (blue_after["VersionLabel"], blue_after["DateUpdated"]) == ("v1", blue_before["DateUpdated"])
    # the ledger has the failure, and no current pointer (nothing good was deployed)
    [entry] = entries(p)
    assert (entry["action"], entry["version"], entry["outcome"], entry["environment"]) == ("deploy", "v2", "failed", blue)
    assert "ImportError: no module named app" in entry["message"]
    assert f"ledger/{app}/current.json" not in ledger(p)
    # and a rollback with nothing recorded says so
    nothing = play(stack, ROLLBACK, p["extra"])
    assert nothing.rc != 0
    assert "knows no version to roll back to (no entry yet)" in role_task(nothing, "Check that a previous good version is known")["msg"]
