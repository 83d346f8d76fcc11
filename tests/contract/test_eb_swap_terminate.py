"""SwapEnvironmentCNAMEs and TerminateEnvironment."""

from __future__ import annotations

from typing import Any

from tests.contract.ebkit import FAST, STACK, aws_error, describe, messages, wait_ready


def test_swap_cnames_by_name(eb: Any, make_env: Any, unique: str) -> None:
    blue = make_env(f"blue-{unique}", wait=False, CNAMEPrefix=f"shop-{unique}")
    green = make_env(f"green-{unique}", CNAMEPrefix=f"shop-{unique}-idle")
    wait_ready(eb, blue["EnvironmentName"])
    eb.swap_environment_cnames(SourceEnvironmentName=blue["EnvironmentName"], DestinationEnvironmentName=green["EnvironmentName"])
    assert {describe(eb, blue["EnvironmentName"])["Status"], describe(eb, green["EnvironmentName"])["Status"]} == {"Updating"}
    eb.get_waiter("environment_updated").wait(EnvironmentIds=[blue["EnvironmentId"], green["EnvironmentId"]], WaiterConfig=FAST)
    assert describe(eb, blue["EnvironmentName"])["CNAME"] == green["CNAME"]
    assert describe(eb, green["EnvironmentName"])["CNAME"] == blue["CNAME"] == f"shop-{unique}.us-east-1.elasticbeanstalk.com"
    done = f"Completed swapping CNAMEs for environments '{blue['EnvironmentName']}' and '{green['EnvironmentName']}'."
    for env in (blue, green):
        log = messages(eb, EnvironmentName=env["EnvironmentName"])
        assert log[-2:] == ["swapEnvironmentCNAMEs is starting.", done]


def test_swap_cnames_by_id_and_back(eb: Any, make_env: Any) -> None:
    first, second = make_env(wait=False), make_env()
    wait_ready(eb, first["EnvironmentName"])
    for _ in range(2):
        eb.swap_environment_cnames(SourceEnvironmentId=first["EnvironmentId"], DestinationEnvironmentId=second["EnvironmentId"])
        eb.get_waiter("environment_updated").wait(EnvironmentIds=[first["EnvironmentId"], second["EnvironmentId"]], WaiterConfig=FAST)
    assert describe(eb, first["EnvironmentName"])["CNAME"] == first["CNAME"]


def test_swap_refuses_environments_that_are_not_ready(eb: Any, make_env: Any) -> None:
    ready, launching = make_env(), make_env(wait=False)
    with aws_error("InvalidParameterValue", f"Environment named {launching['EnvironmentName']} is in an invalid state for this operation. Must be Ready."):
        eb.swap_environment_cnames(SourceEnvironmentName=ready["EnvironmentName"], DestinationEnvironmentName=launching["EnvironmentName"])
    assert describe(eb, ready["EnvironmentName"])["CNAME"] == ready["CNAME"]
    wait_ready(eb, launching["EnvironmentName"])


def test_swap_refuses_missing_same_or_foreign_environments(eb: Any, make_env: Any, bundle: dict[str, str], unique: str) -> None:
    env = make_env()
    with aws_error("InvalidParameterValue", f"No Environment found for EnvironmentName = 'ghost-{unique}'."):
        eb.swap_environment_cnames(SourceEnvironmentName=env["EnvironmentName"], DestinationEnvironmentName=f"ghost-{unique}")
    with aws_error("InvalidParameterValue", contains="with itself"):
        eb.swap_environment_cnames(SourceEnvironmentName=env["EnvironmentName"], DestinationEnvironmentName=env["EnvironmentName"])
    other = f"other-{unique}"
    eb.create_application_version(ApplicationName=other, VersionLabel="v1", SourceBundle=bundle, AutoCreateApplication=True)
    try:
        eb.create_environment(ApplicationName=other, EnvironmentName=f"foreign-{unique}", VersionLabel="v1", SolutionStackName=STACK)
        wait_ready(eb, f"foreign-{unique}")
        with aws_error("InvalidParameterValue", contains="different applications"):
            eb.swap_environment_cnames(SourceEnvironmentName=env["EnvironmentName"], DestinationEnvironmentName=f"foreign-{unique}")
    finally:
        eb.delete_application(ApplicationName=other, TerminateEnvByForce=True)


def test_terminate_releases_the_cname_and_keeps_the_record(eb: Any, make_env: Any, unique: str) -> None:
    env = make_env(CNAMEPrefix=f"gone-{unique}")
    terminating = eb.terminate_environment(EnvironmentName=env["EnvironmentName"])
    assert terminating["Status"] == "Terminating"
    assert eb.check_dns_availability(CNAMEPrefix=f"gone-{unique}")["Available"] is False
    eb.get_waiter("environment_terminated").wait(EnvironmentIds=[env["EnvironmentId"]], WaiterConfig=FAST)
    assert eb.check_dns_availability(CNAMEPrefix=f"gone-{unique}")["Available"] is True
    [record] = eb.describe_environments(EnvironmentIds=[env["EnvironmentId"]])["Environments"]
    assert (record["Status"], record["Health"]) == ("Terminated", "Grey")
    assert eb.describe_environments(EnvironmentIds=[env["EnvironmentId"]], IncludeDeleted=False)["Environments"] == []
    later = record["DateUpdated"]
    assert eb.describe_environments(EnvironmentIds=[env["EnvironmentId"]], IncludedDeletedBackTo=later)["Environments"] != []
    log = messages(eb, EnvironmentId=env["EnvironmentId"])
    assert log[0] == "createEnvironment is starting."
    assert log[-1] == "terminateEnvironment completed successfully."
    assert any(m.startswith("Deleted Auto Scaling group named: awseb-") for m in log)
    with aws_error("InvalidParameterValue", f"No Environment found for EnvironmentName = '{env['EnvironmentName']}'."):
        eb.terminate_environment(EnvironmentName=env["EnvironmentName"])
    with aws_error("InvalidParameterValue", f"No Environment found for EnvironmentName = '{env['EnvironmentName']}'."):
        eb.describe_environment_resources(EnvironmentName=env["EnvironmentName"])


def test_terminated_name_and_cname_can_be_reused(eb: Any, make_env: Any, unique: str) -> None:
    first = make_env(f"reuse-{unique}", CNAMEPrefix=f"reuse-{unique}")
    eb.terminate_environment(EnvironmentId=first["EnvironmentId"])
    eb.get_waiter("environment_terminated").wait(EnvironmentIds=[first["EnvironmentId"]], WaiterConfig=FAST)
    second = make_env(f"reuse-{unique}", CNAMEPrefix=f"reuse-{unique}")
    assert second["EnvironmentId"] != first["EnvironmentId"]
    assert second["CNAME"] == first["CNAME"]
    statuses = sorted(e["Status"] for e in eb.describe_environments(EnvironmentNames=[f"reuse-{unique}"])["Environments"])
    assert statuses == ["Ready", "Terminated"]


def test_terminate_without_terminating_resources(eb: Any, make_env: Any) -> None:
    env = make_env()
    eb.terminate_environment(EnvironmentId=env["EnvironmentId"], TerminateResources=False, ForceTerminate=True)
    eb.get_waiter("environment_terminated").wait(EnvironmentIds=[env["EnvironmentId"]], WaiterConfig=FAST)
    log = messages(eb, EnvironmentId=env["EnvironmentId"])
    assert log[-1] == "terminateEnvironment completed successfully."
    assert not any(m.startswith("Deleted ") for m in log)
