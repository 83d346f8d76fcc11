"""Applications: CreateApplication, DescribeApplications, UpdateApplication,
UpdateApplicationResourceLifecycle, DeleteApplication."""

from __future__ import annotations

from typing import Any

from tests.contract.ebkit import FAST, aws_error, describe


def test_create_describe_update_application(eb: Any, unique: str) -> None:
    name = f"app-{unique}"
    created = eb.create_application(ApplicationName=name, Description="first", Tags=[{"Key": "team", "Value": "web"}])["Application"]
    assert created["ApplicationArn"] == f"arn:aws:elasticbeanstalk:us-east-1:123456789012:application/{name}"
    assert created["Description"] == "first"
    assert created["ResourceLifecycleConfig"]["VersionLifecycleConfig"]["MaxCountRule"] == {"Enabled": False, "MaxCount": 200, "DeleteSourceFromS3": False}

    updated = eb.update_application(ApplicationName=name, Description="second")["Application"]
    assert updated["Description"] == "second"
    assert updated["DateUpdated"] >= created["DateUpdated"]

    [listed] = eb.describe_applications(ApplicationNames=[name])["Applications"]
    assert listed["Description"] == "second"
    assert listed["Versions"] == []
    assert eb.list_tags_for_resource(ResourceArn=created["ApplicationArn"])["ResourceTags"] == [{"Key": "team", "Value": "web"}]
    eb.delete_application(ApplicationName=name)
    assert eb.describe_applications(ApplicationNames=[name])["Applications"] == []


def test_duplicate_application_is_refused(eb: Any, app: str) -> None:
    with aws_error("InvalidParameterValue", f"Application {app} already exists."):
        eb.create_application(ApplicationName=app)


def test_unknown_application_errors(eb: Any, unique: str) -> None:
    missing = f"missing-{unique}"
    with aws_error("InvalidParameterValue", f"No Application named '{missing}' found."):
        eb.update_application(ApplicationName=missing, Description="x")
    with aws_error("InvalidParameterValue", f"No Application named '{missing}' found."):
        eb.delete_application(ApplicationName=missing)


def test_resource_lifecycle_update(eb: Any, app: str) -> None:
    config = {
        "ServiceRole": "arn:aws:iam::123456789012:role/eb",
        "VersionLifecycleConfig": {"MaxCountRule": {"Enabled": True, "MaxCount": 20, "DeleteSourceFromS3": True}},
    }
    answer = eb.update_application_resource_lifecycle(ApplicationName=app, ResourceLifecycleConfig=config)
    assert answer["ResourceLifecycleConfig"]["VersionLifecycleConfig"]["MaxCountRule"]["MaxCount"] == 20
    [listed] = eb.describe_applications(ApplicationNames=[app])["Applications"]
    assert listed["ResourceLifecycleConfig"]["ServiceRole"] == "arn:aws:iam::123456789012:role/eb"


def test_delete_application_refused_while_environments_run(eb: Any, app: str, make_env: Any) -> None:
    env = make_env()
    with aws_error("InvalidParameterValue", contains=f"because it has running environments: {env['EnvironmentName']}"):
        eb.delete_application(ApplicationName=app)
    assert describe(eb, env["EnvironmentName"])["Status"] == "Ready"


def test_delete_application_by_force_terminates_environments(eb: Any, app: str, make_env: Any) -> None:
    env = make_env()
    eb.delete_application(ApplicationName=app, TerminateEnvByForce=True)
    assert eb.describe_applications(ApplicationNames=[app])["Applications"] == []
    [terminating] = eb.describe_environments(EnvironmentIds=[env["EnvironmentId"]])["Environments"]
    assert terminating["Status"] == "Terminating"
    eb.get_waiter("environment_terminated").wait(EnvironmentIds=[env["EnvironmentId"]], WaiterConfig=FAST)
    assert eb.describe_application_versions(ApplicationName=app)["ApplicationVersions"] == []
