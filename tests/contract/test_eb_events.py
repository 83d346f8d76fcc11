"""DescribeEvents: filters, order and pagination."""

from __future__ import annotations

from typing import Any

from tests.contract.ebkit import messages, wait_ready


def test_events_are_newest_first_and_filtered_by_environment(eb: Any, app: str, make_env: Any) -> None:
    first, second = make_env(wait=False), make_env()
    wait_ready(eb, first["EnvironmentName"])
    events = eb.describe_events(EnvironmentName=first["EnvironmentName"])["Events"]
    dates = [e["EventDate"] for e in events]
    assert dates == sorted(dates, reverse=True)
    assert {e["EnvironmentName"] for e in events} == {first["EnvironmentName"]}
    assert {e["ApplicationName"] for e in events} == {app}
    by_id = eb.describe_events(EnvironmentId=second["EnvironmentId"])["Events"]
    assert {e["EnvironmentName"] for e in by_id} == {second["EnvironmentName"]}
    assert {e["EnvironmentName"] for e in eb.describe_events(ApplicationName=app)["Events"]} == {first["EnvironmentName"], second["EnvironmentName"]}


def test_events_by_request_id(eb: Any, app: str, version: str, unique: str) -> None:
    created = eb.create_environment(
        ApplicationName=app, EnvironmentName=f"req-{unique}", VersionLabel=version, SolutionStackName="64bit Amazon Linux 2023 v4.6.0 running Python 3.11"
    )
    request_id = created["ResponseMetadata"]["RequestId"]
    events = eb.describe_events(RequestId=request_id)["Events"]
    assert [e["Message"] for e in events][-1] == "createEnvironment is starting."
    assert {e["RequestId"] for e in events} == {request_id}


def test_events_time_window_and_severity(eb: Any, make_env: Any, stack: Any) -> None:
    env = make_env()
    name = env["EnvironmentName"]
    all_events = eb.describe_events(EnvironmentName=name)["Events"]
    created = min(e["EventDate"] for e in all_events)
    launched = max(e["EventDate"] for e in all_events)
    assert created < launched
    before_launch = eb.describe_events(EnvironmentName=name, EndTime=launched)["Events"]
    assert before_launch and all(e["EventDate"] < launched for e in before_launch)
    since_launch = eb.describe_events(EnvironmentName=name, StartTime=launched)["Events"]
    assert f"Successfully launched environment: {name}" in [e["Message"] for e in since_launch]
    assert len(before_launch) + len(since_launch) == len(all_events)
    assert eb.describe_events(EnvironmentName=name, Severity="WARN")["Events"] == []  # a clean launch has no warnings
    stack.control("POST", f"/_local/eb/environments/{name}/health", {"color": "Red", "health_status": "Severe"})
    [warning] = eb.describe_events(EnvironmentName=name, Severity="WARN")["Events"]
    assert warning["Severity"] == "WARN"


def test_events_pagination(eb: Any, make_env: Any) -> None:
    env = make_env()
    name = env["EnvironmentName"]
    everything = messages(eb, EnvironmentName=name)
    first = eb.describe_events(EnvironmentName=name, MaxRecords=3)
    assert len(first["Events"]) == 3 and "NextToken" in first
    pages = eb.get_paginator("describe_events").paginate(EnvironmentName=name, PaginationConfig={"PageSize": 2})
    paged = [e["Message"] for page in pages for e in page["Events"]]
    assert list(reversed(paged)) == everything
