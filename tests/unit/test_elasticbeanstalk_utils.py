"""Pure helpers of plugins/module_utils/elasticbeanstalk.py (no endpoint).

Option settings conversion and diff, event streaming with a fake client,
the bounded waits on ``Deadline`` with a fake clock, and the version waiter
model against botocore's own waiter machinery.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parents[2]


def _import_from_work_tree() -> Any:
    """Import the module_utils from this work tree as ansible_collections.fastier.platform.

    ``ansible_collections`` is a namespace package (the ``ansible`` wheel ships
    amazon.aws there); a symlink tree adds ``fastier.platform`` -> this repo.
    """
    tree = Path(tempfile.mkdtemp(prefix="fastier-unit-")) / "ansible_collections" / "fastier"
    tree.mkdir(parents=True)
    (tree / "platform").symlink_to(ROOT)
    sys.path.insert(0, str(tree.parent.parent))
    for name in [n for n in sys.modules if n.startswith("ansible_collections.fastier")]:
        del sys.modules[name]
    return importlib.import_module("ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk")


eb = _import_from_work_tree()
base = importlib.import_module("ansible_collections.fastier.platform.plugins.module_utils.base")
Deadline, WaitTimeout = base.Deadline, base.WaitTimeout

EPOCH = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


# -- option settings -----------------------------------------------------------------


def test_nested_settings_become_the_aws_list_with_values_as_aws_returns_them():
    settings = {
        "aws:autoscaling:asg": {"MinSize": 1, "MaxSize": 4},
        "aws:autoscaling:launchconfiguration": {"DisableIMDSv1": True},
        "aws:ec2:vpc": {"Subnets": ["subnet-a", "subnet-b"], "AssociatePublicIpAddress": False},
        "aws:autoscaling:trigger": {"UpperThreshold": 70.0, "LowerThreshold": 0.5},
    }
    assert eb.option_settings_to_list(settings) == [
        {"Namespace": "aws:autoscaling:asg", "OptionName": "MaxSize", "Value": "4"},
        {"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "1"},
        {"Namespace": "aws:autoscaling:launchconfiguration", "OptionName": "DisableIMDSv1", "Value": "true"},
        {"Namespace": "aws:autoscaling:trigger", "OptionName": "LowerThreshold", "Value": "0.5"},
        {"Namespace": "aws:autoscaling:trigger", "OptionName": "UpperThreshold", "Value": "70"},
        {"Namespace": "aws:ec2:vpc", "OptionName": "AssociatePublicIpAddress", "Value": "false"},
        {"Namespace": "aws:ec2:vpc", "OptionName": "Subnets", "Value": "subnet-a,subnet-b"},
    ]


def test_aws_list_becomes_nested_and_round_trips():
    aws = [
        {"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "1"},
        {"Namespace": "aws:elasticbeanstalk:application:environment", "OptionName": "A", "Value": "x"},
        {"Namespace": "aws:autoscaling:scheduledaction", "OptionName": "MinSize", "Value": "2", "ResourceName": "night"},
    ]
    nested = eb.option_settings_from_list(aws)
    assert nested["aws:autoscaling:asg"] == {"MinSize": "1"}
    assert nested["aws:elasticbeanstalk:application:environment"] == {"A": "x"}
    assert eb.option_settings_from_list(eb.option_settings_to_list({"ns": {"o": "v"}})) == {"ns": {"o": "v"}}


def test_a_dict_value_is_refused_with_the_namespace():
    with pytest.raises(TypeError, match="aws:asg"):
        eb.option_settings_to_list({"aws:asg": "MinSize=1"})
    with pytest.raises(TypeError, match="cannot be a dict"):
        eb.option_settings_to_list({"aws:asg": {"MinSize": {"a": 1}}})


def test_options_to_remove_accept_text_and_dicts():
    items = [
        "aws:elasticbeanstalk:application:environment:OLD_FLAG",
        {"namespace": "aws:autoscaling:asg", "option_name": "Cooldown"},
        "aws:autoscaling:asg:Cooldown",
    ]
    assert eb.options_to_remove_list(items) == [
        {"Namespace": "aws:autoscaling:asg", "OptionName": "Cooldown"},
        {"Namespace": "aws:elasticbeanstalk:application:environment", "OptionName": "OLD_FLAG"},
    ]
    with pytest.raises(ValueError, match="namespace:OptionName"):
        eb.parse_option_specifier("NoNamespace")


@pytest.mark.parametrize(
    ("namespace", "desired", "live", "equal"),
    [
        ("aws:autoscaling:asg", 2, "2", True),
        ("aws:autoscaling:asg", 2, "3", False),
        ("aws:autoscaling:trigger", 70, "70.0", True),
        ("aws:autoscaling:launchconfiguration", True, "true", True),
        ("aws:autoscaling:launchconfiguration", True, "True", True),
        ("aws:autoscaling:launchconfiguration", False, "true", False),
        ("aws:ec2:vpc", ["subnet-b", "subnet-a"], "subnet-a, subnet-b", True),
        ("aws:ec2:vpc", "subnet-a,subnet-b", "subnet-b,subnet-a", True),
        ("aws:ec2:vpc", ["subnet-a"], "subnet-a,subnet-b", False),
        ("aws:elasticbeanstalk:environment:process:default", "/healthz", "/healthz", True),
        ("aws:elasticbeanstalk:environment:process:default", "/healthz", None, False),
        # environment properties are exact text: order and spaces matter
        ("aws:elasticbeanstalk:application:environment", "a,b", "b,a", False),
        ("aws:elasticbeanstalk:application:environment", "x ", "x", False),
        ("aws:elasticbeanstalk:application:environment", True, "true", True),
    ],
)
def test_values_compare_the_way_aws_normalises_them(namespace, desired, live, equal):
    assert eb.option_values_equal(namespace, desired, live) is equal


LIVE = {
    "aws:autoscaling:asg": {"MinSize": "1", "MaxSize": "4", "Cooldown": "360"},
    "aws:autoscaling:launchconfiguration": {"DisableIMDSv1": "false", "InstanceType": "t3.micro"},
    "aws:elasticbeanstalk:application:environment": {"OLD": "1", "KEEP": "yes"},
}


def test_diff_compares_only_the_options_the_user_set():
    desired = {"aws:autoscaling:asg": {"MinSize": 1, "MaxSize": 2}, "aws:autoscaling:launchconfiguration": {"DisableIMDSv1": True}}
    diff = eb.diff_option_settings(desired, LIVE)
    assert diff["set"] == {"aws:autoscaling:asg": {"MaxSize": "2"}, "aws:autoscaling:launchconfiguration": {"DisableIMDSv1": "true"}}
    assert diff["before"] == {"aws:autoscaling:asg": {"MaxSize": "4"}, "aws:autoscaling:launchconfiguration": {"DisableIMDSv1": "false"}}
    assert diff["after"] == diff["set"]
    assert diff["remove"] == []  # Cooldown, InstanceType, OLD: not mentioned, not touched


def test_diff_of_converged_settings_is_empty():
    desired = {"aws:autoscaling:asg": {"MinSize": 1, "MaxSize": 4}, "aws:elasticbeanstalk:application:environment": {"KEEP": "yes"}}
    assert eb.diff_option_settings(desired, LIVE) == {"set": {}, "remove": [], "before": {}, "after": {}}


def test_new_option_shows_none_before():
    diff = eb.diff_option_settings({"aws:elasticbeanstalk:application:environment": {"NEW": "v"}}, LIVE)
    assert diff["before"] == {"aws:elasticbeanstalk:application:environment": {"NEW": None}}
    assert diff["after"] == {"aws:elasticbeanstalk:application:environment": {"NEW": "v"}}


def test_removal_changes_only_what_is_set_and_not_at_its_default():
    to_remove = [
        ("aws:elasticbeanstalk:application:environment", "OLD"),  # set -> removed
        ("aws:elasticbeanstalk:application:environment", "GONE"),  # absent -> nothing
        ("aws:autoscaling:asg", "Cooldown"),  # at default -> nothing
        ("aws:autoscaling:launchconfiguration", "InstanceType"),  # not default -> reverted
    ]
    defaults = {("aws:autoscaling:asg", "Cooldown"): "360", ("aws:autoscaling:launchconfiguration", "InstanceType"): "t2.micro"}
    diff = eb.diff_option_settings({}, LIVE, to_remove, defaults)
    assert diff["remove"] == [("aws:autoscaling:launchconfiguration", "InstanceType"), ("aws:elasticbeanstalk:application:environment", "OLD")]
    assert diff["before"]["aws:elasticbeanstalk:application:environment"] == {"OLD": "1"}
    assert diff["after"]["aws:elasticbeanstalk:application:environment"] == {"OLD": None}
    assert diff["after"]["aws:autoscaling:launchconfiguration"] == {"InstanceType": "t2.micro"}
    # a second run, after AWS removed them, changes nothing
    after = {
        "aws:autoscaling:asg": LIVE["aws:autoscaling:asg"],
        "aws:autoscaling:launchconfiguration": {"DisableIMDSv1": "false", "InstanceType": "t2.micro"},
        "aws:elasticbeanstalk:application:environment": {"KEEP": "yes"},
    }
    assert eb.diff_option_settings({}, after, to_remove, defaults)["remove"] == []


def test_setting_and_removing_the_same_option_is_refused():
    with pytest.raises(ValueError, match="aws:autoscaling:asg/MinSize"):
        eb.diff_option_settings({"aws:autoscaling:asg": {"MinSize": 1}}, LIVE, [("aws:autoscaling:asg", "MinSize")])


def test_validation_messages_name_the_option():
    message = (
        "Configuration validation exception: Invalid option value: 'x' (Namespace: 'aws:autoscaling:asg', OptionName: 'MinSize'): Value is not an integer."
    )
    assert eb.option_in_message(message) == ("aws:autoscaling:asg", "MinSize")
    assert eb.option_in_message("something else") is None
    lines = eb.validation_errors(
        [
            {"Severity": "warning", "Message": "fine", "Namespace": "a", "OptionName": "b"},
            {"Severity": "error", "Message": "Value is not an integer.", "Namespace": "aws:autoscaling:asg", "OptionName": "MinSize"},
        ]
    )
    assert lines == ["Value is not an integer. [aws:autoscaling:asg/MinSize]"]


@pytest.mark.parametrize(
    ("desired", "live", "satisfied"),
    [
        ("64bit Amazon Linux 2023 v4.6.0 running Python 3.11", "64bit Amazon Linux 2023 v4.6.0 running Python 3.11", True),
        # a managed update moved it forward within the branch: no downgrade
        ("64bit Amazon Linux 2023 v4.6.0 running Python 3.11", "64bit Amazon Linux 2023 v4.6.10 running Python 3.11", True),
        ("64bit Amazon Linux 2023 v4.7.0 running Python 3.11", "64bit Amazon Linux 2023 v4.6.2 running Python 3.11", False),
        ("64bit Amazon Linux 2023 v4.6.0 running Python 3.12", "64bit Amazon Linux 2023 v4.6.2 running Python 3.11", False),
        ("64bit Amazon Linux 2023 v4.6.0 running Python 3.11", "64bit Amazon Linux 2 v4.6.0 running Python 3.11", False),
        (
            "arn:aws:elasticbeanstalk:us-east-1::platform/Python 3.11 running on 64bit Amazon Linux 2023/4.6.0",
            "arn:aws:elasticbeanstalk:us-east-1::platform/Python 3.11 running on 64bit Amazon Linux 2023/4.6.1",
            True,
        ),
        ("custom", "other", False),
        (None, "anything", True),
    ],
)
def test_platform_is_satisfied_by_newer_versions_of_the_same_branch(desired, live, satisfied):
    assert eb.platform_satisfied(desired, live) is satisfied


def test_tags_plan_leaves_aws_managed_and_kept_keys_alone():
    current = {"team": "web", "old": "x", "Name": "fastier-local-blue"}
    assert eb.plan_tags(current, None, True) == ({}, [])
    to_set, to_remove = eb.plan_tags(current, {"team": "api", "elasticbeanstalk:x": "y"}, True, keep=("Name",))
    assert to_set == {"team": "api"}
    assert to_remove == ["old"]
    assert eb.plan_tags(current, {"team": "web"}, False) == ({}, [])


def test_busy_errors_are_recognised_by_code_and_message():
    busy = ClientError(
        {"Error": {"Code": "InvalidParameterValue", "Message": "Environment named x is in an invalid state for this operation. Must be Ready."}},
        "UpdateEnvironment",
    )
    other = ClientError({"Error": {"Code": "InvalidParameterValue", "Message": "No Application Version named 'v9' found."}}, "UpdateEnvironment")
    in_progress = ClientError({"Error": {"Code": "OperationInProgressFailure", "Message": "busy"}}, "UpdateTagsForResource")
    assert eb.is_busy_error(busy) and eb.is_busy_error(in_progress)
    assert not eb.is_busy_error(other)


# -- fakes -------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def event(second: int, message: str, severity: str = "INFO", env: str = "fastier-local-blue") -> dict:
    return {"EventDate": EPOCH + timedelta(seconds=second), "Message": message, "Severity": severity, "EnvironmentName": env}


class FakeEB:
    """DescribeEvents newest first, paginated, honouring StartTime (inclusive); scripted environments."""

    def __init__(self, events: list[dict] | None = None, states: list[dict] | None = None, page_size: int = 2) -> None:
        self.events = list(events or [])
        self.states = list(states or [])  # one description per describe_environments call; the last repeats
        self.page_size = page_size
        self.calls: list[tuple[str, dict]] = []
        self.on_describe = None

    def describe_events(self, **params: Any) -> dict:
        self.calls.append(("describe_events", params))
        found = sorted(self.events, key=lambda e: e["EventDate"], reverse=True)
        if "StartTime" in params:
            found = [e for e in found if e["EventDate"] >= params["StartTime"]]
        start = int(params.get("NextToken", 0))
        size = min(self.page_size, params.get("MaxRecords", self.page_size))
        page = {"Events": found[start : start + size]}
        if start + size < len(found):
            page["NextToken"] = str(start + size)
        return page

    def describe_environments(self, **params: Any) -> dict:
        self.calls.append(("describe_environments", params))
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if self.on_describe:
            self.on_describe(state)
        return {"Environments": [state] if state else []}


def env(status: str, health: str = "Grey", health_status: str | None = None, updated: int = 0) -> dict:
    out = {
        "EnvironmentId": "e-123",
        "EnvironmentName": "fastier-local-blue",
        "Status": status,
        "Health": health,
        "DateUpdated": EPOCH + timedelta(seconds=updated),
    }
    if health_status:
        out["HealthStatus"] = health_status
    return out


# -- event streaming ---------------------------------------------------------------------------


def test_stream_skips_events_from_before_the_operation_and_yields_new_ones_oldest_first():
    client = FakeEB(events=[event(1, "old deploy"), event(2, "old ERROR", "ERROR")])
    seen = []
    stream = eb.EventStream(client, on_event=seen.append, EnvironmentName="fastier-local-blue").prime()
    assert stream.poll() == []
    # same second as the newest old event, and later ones, across pages
    client.events += [event(2, "updateEnvironment is starting."), event(3, "Deploying new version"), event(4, "Update completed")]
    new = stream.poll()
    assert [e["message"] for e in new] == ["updateEnvironment is starting.", "Deploying new version", "Update completed"]
    assert [e["message"] for e in seen] == [e["message"] for e in new]
    assert stream.poll() == []  # nothing twice
    assert stream.errors() == []  # the old ERROR is not this operation's
    assert new[0]["event_date"] == "2025-01-01T12:00:02+00:00" and new[0]["environment_name"] == "fastier-local-blue"
    # later polls ask only for what happened since the newest event seen
    assert client.calls[-1][1]["StartTime"] == EPOCH + timedelta(seconds=4)


def test_events_of_the_same_second_keep_the_server_order():
    # The server lists newest first; FakeEB keeps the given order among equal dates.
    client = FakeEB(events=[event(1, "third"), event(1, "second"), event(1, "first")], page_size=10)
    assert [e["message"] for e in eb.EventStream(client).poll()] == ["first", "second", "third"]


def test_stream_without_priming_returns_everything_for_a_new_environment():
    client = FakeEB(events=[event(1, "createEnvironment is starting."), event(2, "Created security group")])
    stream = eb.EventStream(client, EnvironmentId="e-123")
    assert [e["message"] for e in stream.poll()] == ["createEnvironment is starting.", "Created security group"]
    assert client.calls[0][1] == {"EnvironmentId": "e-123"}


# -- waits ---------------------------------------------------------------------------------------


def _wait(client: FakeEB, clock: FakeClock, seconds: float = 60, **kwargs: Any) -> Any:
    deadline = Deadline(seconds, "environment fastier-local-blue to be Ready", clock=clock)
    poller = eb.Poller(deadline, sleep=clock.sleep)
    return eb.wait_for_environment(client, "e-123", deadline, poller=poller, **kwargs)


def test_wait_returns_when_ready_with_an_acceptable_health_and_streams_events():
    clock = FakeClock()
    client = FakeEB(states=[env("Updating"), env("Updating", "Grey", "Pending"), env("Ready", "Grey"), env("Ready", "Green", "Ok")])
    client.on_describe = lambda state: client.events.append(event(len(client.events), "status " + state["Status"]))
    stream = eb.EventStream(client, EnvironmentId="e-123")
    result = _wait(client, clock, acceptable_health=("Green",), events=stream)
    assert result["Status"] == "Ready" and result["Health"] == "Green"
    assert [e["message"] for e in stream.events][:2] == ["status Updating", "status Updating"]
    assert 0 < clock.now < 10  # polls grew from 1s: 1 + 1.5 + 2.25


def test_wait_accepts_enhanced_statuses_and_colours():
    clock = FakeClock()
    assert _wait(FakeEB(states=[env("Ready", "Yellow", "Warning")]), clock, acceptable_health=("Green", "Warning"))["Health"] == "Yellow"


def test_wait_fails_fast_on_an_error_event_with_the_events():
    clock = FakeClock()
    client = FakeEB(states=[env("Updating")], events=[event(1, "Deploying"), event(2, "Failed to deploy application.", "ERROR")])
    stream = eb.EventStream(client, EnvironmentId="e-123")
    with pytest.raises(eb.EnvironmentFailed) as failure:
        _wait(client, clock, events=stream)
    assert "Failed to deploy application." in str(failure.value)
    assert "Updating / Grey" in str(failure.value)
    assert [e["message"] for e in failure.value.events] == ["Deploying", "Failed to deploy application."]
    assert clock.now == 0  # no waiting once the error is known


def test_wait_fails_fast_when_health_turns_red():
    clock = FakeClock()
    client = FakeEB(states=[env("Updating", "Green", "Ok"), env("Updating", "Red", "Severe")])
    with pytest.raises(eb.EnvironmentFailed, match="turned Updating / Red \\(Severe\\)"):
        _wait(client, clock, initial=env("Ready", "Green", "Ok"))


def test_an_environment_red_before_the_operation_may_recover():
    clock = FakeClock()
    client = FakeEB(states=[env("Updating", "Red", "Degraded"), env("Updating", "Red", "Degraded"), env("Ready", "Green", "Ok", updated=5)])
    assert _wait(client, clock, initial=env("Ready", "Red", "Degraded"))["Health"] == "Green"


def test_red_is_fine_when_the_caller_accepts_it():
    clock = FakeClock()
    assert _wait(FakeEB(states=[env("Ready", "Red", "Severe")]), clock, acceptable_health=("Green", "Red"))["Health"] == "Red"


def test_wait_times_out_with_the_last_state_seen():
    clock = FakeClock()
    with pytest.raises(WaitTimeout) as timeout:
        _wait(FakeEB(states=[env("Updating", "Grey", "Pending")]), clock, seconds=30)
    assert str(timeout.value) == (
        "timed out after 30s waiting for environment fastier-local-blue to be Ready; last seen: fastier-local-blue is Updating / Grey (Pending)"
    )
    assert clock.now == 30  # the last sleep was shortened to the deadline


def test_wait_after_a_change_does_not_trust_a_stale_ready():
    clock = FakeClock()
    before = env("Ready", "Green", "Ok", updated=0)
    # the first describe still shows the old state; then the update shows up
    client = FakeEB(states=[env("Ready", "Green", "Ok"), env("Updating", "Grey"), env("Ready", "Green", "Ok", updated=9)])
    result = _wait(client, clock, initial=before, after_change=True)
    assert result["DateUpdated"] == EPOCH + timedelta(seconds=9)
    assert len([c for c in client.calls if c[0] == "describe_environments"]) == 3


def test_wait_after_a_change_that_shows_no_transition_ends_after_a_few_polls():
    clock = FakeClock()
    before = env("Ready", "Green", "Ok")
    client = FakeEB(states=[env("Ready", "Green", "Ok")])
    _wait(client, clock, initial=before, after_change=True)
    assert len([c for c in client.calls if c[0] == "describe_environments"]) == eb.STABLE_POLLS


def test_wait_for_termination_and_termination_while_waiting_for_ready():
    clock = FakeClock()
    assert _wait(FakeEB(states=[env("Terminating"), env("Terminated")]), clock, target_status="Terminated")["Status"] == "Terminated"
    with pytest.raises(eb.EnvironmentFailed, match="was terminated"):
        _wait(FakeEB(states=[env("Launching"), env("Terminated")]), clock)


def test_busy_environment_is_waited_for_then_the_call_goes_through():
    clock = FakeClock()
    client = FakeEB(states=[env("Updating"), env("Updating"), env("Ready", "Green")])
    answers = [
        ClientError(
            {"Error": {"Code": "InvalidParameterValue", "Message": "Environment named x is in an invalid state for this operation. Must be Ready."}},
            "UpdateEnvironment",
        ),
        {"Status": "Updating"},
    ]

    def call() -> dict:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    deadline = Deadline(60, "environment fastier-local-blue to accept the update", clock=clock)
    busy = []
    result = eb.call_when_ready(call, client, "e-123", deadline, poller=eb.Poller(deadline, sleep=clock.sleep), on_busy=busy.append)
    assert result == {"Status": "Updating"}
    assert len(busy) == 1 and 0 < clock.now < 5


def test_busy_for_too_long_times_out_with_the_state():
    clock = FakeClock()
    client = FakeEB(states=[env("Updating")])
    deadline = Deadline(20, "environment fastier-local-blue to accept the update", clock=clock)
    with pytest.raises(WaitTimeout, match="last seen: fastier-local-blue is Updating / Grey"):
        eb.wait_until_not_busy(client, "e-123", deadline, poller=eb.Poller(deadline, sleep=clock.sleep))


def test_other_errors_are_not_retried():
    clock = FakeClock()
    deadline = Deadline(20, "x", clock=clock)

    def call() -> None:
        raise ClientError({"Error": {"Code": "InvalidParameterValue", "Message": "No Application Version named 'v9' found."}}, "UpdateEnvironment")

    with pytest.raises(ClientError, match="v9"):
        eb.call_when_ready(call, FakeEB(states=[env("Ready")]), "e-123", deadline)


# -- application version waiter ------------------------------------------------------------------


def _version_client(statuses: list[str]) -> Any:
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("elasticbeanstalk", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    stubber = Stubber(client)
    for status in statuses:
        stubber.add_response(
            "describe_application_versions",
            {"ApplicationVersions": [{"ApplicationName": "fastier", "VersionLabel": "v1", "Status": status}]},
            {"ApplicationName": "fastier", "VersionLabels": ["v1"]},
        )
    stubber.activate()
    return client, stubber


def test_version_waiter_succeeds_on_processed(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _s: None)
    client, stubber = _version_client(["Processing", "Processed", "Processed"])
    version = eb.wait_for_version(client, "fastier", "v1", Deadline(60, "version v1 to be Processed"), delay=1)
    assert version["Status"] == "Processed"
    stubber.assert_no_pending_responses()


def test_version_waiter_fails_clearly_on_failed(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _s: None)
    client, stubber = _version_client(["Processing", "Failed", "Failed"])
    stubber.add_response(
        "describe_events",
        {"Events": [{"EventDate": EPOCH, "Severity": "ERROR", "Message": "Invalid .ebextensions config: line 3"}]},
        {"ApplicationName": "fastier", "VersionLabel": "v1"},
    )
    with pytest.raises(eb.VersionFailed) as failure:
        eb.wait_for_version(client, "fastier", "v1", Deadline(60, "version v1 to be Processed"), delay=1)
    assert "application version v1 of fastier is Failed" in str(failure.value)
    assert "Invalid .ebextensions config: line 3" in str(failure.value)


def test_version_waiter_attempts_fit_the_deadline():
    clock = FakeClock()
    deadline = Deadline(60, "version", clock=clock)
    assert eb.waiter_config(deadline, delay=2) == {"Delay": 2, "MaxAttempts": 31}
    clock.now = 59.5
    assert eb.waiter_config(deadline, delay=2) == {"Delay": 2, "MaxAttempts": 1}


def test_waiter_model_is_valid_for_botocore():
    import botocore.waiter

    model = botocore.waiter.WaiterModel(eb.WAITER_MODEL)
    assert set(model.waiter_names) == {"ApplicationVersionProcessed", "ApplicationVersionDeleted"}
