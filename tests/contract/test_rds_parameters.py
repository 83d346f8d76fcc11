"""local_aws/rds/parameters.py: DB parameter groups of postgres families and gp3
storage behave as RDS's do. Through boto3 against the stack, unique names."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

FAMILY = "postgres15"


@pytest.fixture(scope="module")
def rds(stack: Any) -> Any:
    return stack.client("rds")


@pytest.fixture
def group(rds: Any, unique: str) -> Iterator[str]:
    """A postgres15 DB parameter group, deleted afterwards."""
    name = f"fix-{unique}-pg"
    rds.create_db_parameter_group(DBParameterGroupName=name, DBParameterGroupFamily=FAMILY, Description="contract test")
    yield name
    rds.delete_db_parameter_group(DBParameterGroupName=name)


def error_code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def all_parameters(rds: Any, **kwargs: Any) -> list[dict[str, Any]]:
    return rds.get_paginator("describe_db_parameters").paginate(**kwargs).build_full_result()["Parameters"]


# -- parameter groups ------------------------------------------------------------------------------
def test_unknown_parameter_group_is_not_found(rds: Any, unique: str) -> None:
    """DescribeDBParameterGroups/DescribeDBParameters with an unknown name: DBParameterGroupNotFound (moto: an empty list)."""
    assert error_code(lambda: rds.describe_db_parameter_groups(DBParameterGroupName=f"fix-{unique}-ghost")) == "DBParameterGroupNotFound"
    assert error_code(lambda: rds.describe_db_parameters(DBParameterGroupName=f"fix-{unique}-ghost")) == "DBParameterGroupNotFound"


def test_group_names_are_case_insensitive(rds: Any, unique: str) -> None:
    """RDS stores a group's name in lower case and finds it by any case."""
    name = f"Fix-{unique}-PG"
    rds.create_db_parameter_group(DBParameterGroupName=name, DBParameterGroupFamily=FAMILY, Description="contract test")
    try:
        for asked in (name, name.lower()):
            [found] = rds.describe_db_parameter_groups(DBParameterGroupName=asked)["DBParameterGroups"]
            assert (found["DBParameterGroupName"], found["DBParameterGroupFamily"]) == (name.lower(), FAMILY)
    finally:
        rds.delete_db_parameter_group(DBParameterGroupName=name)


def test_default_group_exists_can_be_copied_and_not_modified(rds: Any, unique: str) -> None:
    """default.postgresNN exists without an instance using it; copying it works; modifying it is refused."""
    [default] = rds.describe_db_parameter_groups(DBParameterGroupName=f"default.{FAMILY}")["DBParameterGroups"]
    assert default["DBParameterGroupFamily"] == FAMILY
    copy = f"fix-{unique}-copy"
    copied = rds.copy_db_parameter_group(
        SourceDBParameterGroupIdentifier=f"default.{FAMILY}", TargetDBParameterGroupIdentifier=copy, TargetDBParameterGroupDescription="copy"
    )["DBParameterGroup"]
    try:
        assert (copied["DBParameterGroupName"], copied["DBParameterGroupFamily"]) == (copy, FAMILY)
    finally:
        rds.delete_db_parameter_group(DBParameterGroupName=copy)
    refused = {"ParameterName": "log_connections", "ParameterValue": "1", "ApplyMethod": "immediate"}
    code = error_code(lambda: rds.modify_db_parameter_group(DBParameterGroupName=f"default.{FAMILY}", Parameters=[refused]))
    assert code == "InvalidParameterValue"


def test_engine_default_parameters_carry_their_types(rds: Any, group: str) -> None:
    """DescribeDBParameters lists the family's parameters (PostgreSQL's settings and RDS's rds.*) as engine-default."""
    parameters = all_parameters(rds, DBParameterGroupName=group)
    by_name = {p["ParameterName"]: p for p in parameters}
    assert len(by_name) == len(parameters) > 200
    assert {p["Source"] for p in parameters} == {"engine-default"}
    max_connections = by_name["max_connections"]
    assert (max_connections["DataType"], max_connections["ApplyType"], max_connections["IsModifiable"]) == ("integer", "static", True)
    assert max_connections["AllowedValues"] == "1-262143"
    force_ssl = by_name["rds.force_ssl"]
    assert (force_ssl["DataType"], force_ssl["AllowedValues"], force_ssl["ParameterValue"]) == ("boolean", "0,1", "1")
    assert by_name["log_min_duration_statement"]["ApplyType"] == "dynamic"
    assert by_name["rds.logical_replication"]["ApplyType"] == "static"
    assert by_name["data_directory"]["IsModifiable"] is False


def test_describe_parameters_pages_by_max_records_and_marker(rds: Any, group: str) -> None:
    """MaxRecords 20-100 (default 100) per page, Marker to the next; the paginator gets every parameter once."""
    everything = all_parameters(rds, DBParameterGroupName=group)
    names = [p["ParameterName"] for p in everything]
    assert len(names) > 100
    assert len(set(names)) == len(names)

    first = rds.describe_db_parameters(DBParameterGroupName=group)
    assert len(first["Parameters"]) == 100
    assert first["Marker"]

    pages = list(rds.get_paginator("describe_db_parameters").paginate(DBParameterGroupName=group, PaginationConfig={"PageSize": 20}))
    assert all(len(page["Parameters"]) == 20 for page in pages[:-1])
    assert "Marker" not in pages[-1]
    assert [p["ParameterName"] for page in pages for p in page["Parameters"]] == names

    by_hand, marker = [], None
    while True:
        page = rds.describe_db_parameters(DBParameterGroupName=group, MaxRecords=100, **({"Marker": marker} if marker else {}))
        by_hand += [p["ParameterName"] for p in page["Parameters"]]
        marker = page.get("Marker")
        if not marker:
            break
    assert by_hand == names

    for wrong in (5, 101):
        assert error_code(lambda wrong=wrong: rds.describe_db_parameters(DBParameterGroupName=group, MaxRecords=wrong)) == "InvalidParameterValue"


def test_modified_parameters_are_listed_with_source_user(rds: Any, group: str) -> None:
    """ModifyDBParameterGroup of known parameters: Source=user lists them with their values and types."""
    rds.modify_db_parameter_group(
        DBParameterGroupName=group,
        Parameters=[
            {"ParameterName": "log_min_duration_statement", "ParameterValue": "1000", "ApplyMethod": "immediate"},
            {"ParameterName": "max_connections", "ParameterValue": "150", "ApplyMethod": "pending-reboot"},
            {"ParameterName": "rds.force_ssl", "ParameterValue": "1", "ApplyMethod": "immediate"},
        ],
    )
    user = {p["ParameterName"]: p for p in all_parameters(rds, DBParameterGroupName=group, Source="user")}
    assert {name: p["ParameterValue"] for name, p in user.items()} == {"log_min_duration_statement": "1000", "max_connections": "150", "rds.force_ssl": "1"}
    assert {p["Source"] for p in user.values()} == {"user"}
    assert (user["max_connections"]["DataType"], user["max_connections"]["ApplyType"]) == ("integer", "static")

    listed = {p["ParameterName"]: p for p in all_parameters(rds, DBParameterGroupName=group)}
    assert (listed["max_connections"]["Source"], listed["max_connections"]["ParameterValue"]) == ("user", "150")
    assert listed["work_mem"]["Source"] == "engine-default"
    assert {name for name, p in listed.items() if p["Source"] == "engine-default"} == set(listed) - set(user)
    engine_defaults = all_parameters(rds, DBParameterGroupName=group, Source="engine-default")
    assert len(engine_defaults) == len(listed) - len(user)

    # a copy has the same user-set values
    copy = f"{group}-copy"
    rds.copy_db_parameter_group(SourceDBParameterGroupIdentifier=group, TargetDBParameterGroupIdentifier=copy, TargetDBParameterGroupDescription="copy")
    try:
        copied = {p["ParameterName"]: p["ParameterValue"] for p in all_parameters(rds, DBParameterGroupName=copy, Source="user")}
        assert copied == {name: p["ParameterValue"] for name, p in user.items()}
    finally:
        rds.delete_db_parameter_group(DBParameterGroupName=copy)


def test_modify_refuses_what_rds_refuses(rds: Any, group: str) -> None:
    """Unknown or non-modifiable parameter: InvalidParameterValue; a static one with ApplyMethod=immediate: InvalidParameterCombination."""

    def modify(name: str, value: str, method: str = "pending-reboot") -> str:
        parameters = [{"ParameterName": name, "ParameterValue": value, "ApplyMethod": method}]
        return error_code(lambda: rds.modify_db_parameter_group(DBParameterGroupName=group, Parameters=parameters))

    assert modify("max_connectionz", "150") == "InvalidParameterValue"
    assert modify("data_directory", "/tmp/elsewhere") == "InvalidParameterValue"  # noqa: S108 - never used as a path
    assert modify("max_connections", "150", "immediate") == "InvalidParameterCombination"
    # a refused call stores nothing, not even its valid parameters
    mixed = [
        {"ParameterName": "log_connections", "ParameterValue": "1", "ApplyMethod": "immediate"},
        {"ParameterName": "log_connectionz", "ParameterValue": "1", "ApplyMethod": "immediate"},
    ]
    assert error_code(lambda: rds.modify_db_parameter_group(DBParameterGroupName=group, Parameters=mixed)) == "InvalidParameterValue"
    assert all_parameters(rds, DBParameterGroupName=group, Source="user") == []


# -- gp3 storage -----------------------------------------------------------------------------------
@pytest.fixture
def make_instance(rds: Any, unique: str) -> Iterator[Callable[..., dict[str, Any]]]:
    created: list[str] = []
    counter = iter(range(1, 100))

    def create(**kwargs: Any) -> dict[str, Any]:
        identifier = f"fix-{unique}-{next(counter)}"
        args = {
            "DBInstanceIdentifier": identifier,
            "Engine": "mysql",
            "DBInstanceClass": "db.t3.micro",
            "MasterUsername": "fastier",
            "MasterUserPassword": secrets.token_urlsafe(12),
            "StorageType": "gp3",
            **kwargs,
        }
        created.append(identifier)
        return rds.create_db_instance(**args)["DBInstance"]

    yield create
    for identifier in created:
        rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)


def described(rds: Any, identifier: str) -> tuple[Any, Any]:
    [db] = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    return db.get("Iops"), db.get("StorageThroughput")


def test_gp3_reports_its_baseline_iops_and_throughput(rds: Any, make_instance: Callable[..., dict[str, Any]]) -> None:
    """gp3 without Iops/StorageThroughput: 3000 and 125 below 400 GiB, 12000 and 500 from 400 GiB; values asked for stay."""
    small = make_instance(AllocatedStorage=20)
    assert (small["Iops"], small["StorageThroughput"]) == (3000, 125)
    assert described(rds, small["DBInstanceIdentifier"]) == (3000, 125)
    large = make_instance(AllocatedStorage=400)
    assert described(rds, large["DBInstanceIdentifier"]) == (12000, 500)
    asked = make_instance(AllocatedStorage=500, Iops=15000, StorageThroughput=600)
    assert described(rds, asked["DBInstanceIdentifier"]) == (15000, 600)

    # a baseline follows the size, and goes with gp3
    rds.modify_db_instance(DBInstanceIdentifier=small["DBInstanceIdentifier"], AllocatedStorage=500, ApplyImmediately=True)
    assert described(rds, small["DBInstanceIdentifier"]) == (12000, 500)
    rds.modify_db_instance(DBInstanceIdentifier=small["DBInstanceIdentifier"], StorageType="gp2", ApplyImmediately=True)
    assert described(rds, small["DBInstanceIdentifier"]) == (None, None)


def test_gp3_baseline_of_a_postgres_instance(rds: Any, make_instance: Callable[..., dict[str, Any]]) -> None:
    """The same for an instance backed by a PostgreSQL server."""
    db = make_instance(Engine="postgres", AllocatedStorage=20)
    assert described(rds, db["DBInstanceIdentifier"]) == (3000, 125)
