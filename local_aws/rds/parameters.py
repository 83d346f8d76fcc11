"""DB parameter groups that behave like RDS's for PostgreSQL families.

moto records a parameter group's user-set values only: ``DescribeDBParameters``
lists nothing else (so a client cannot tell a parameter name from a typo or
learn its type), and ``DescribeDBParameterGroups`` with an unknown name returns
an empty list where RDS answers ``DBParameterGroupNotFound``. This module adds
the engine's parameters for ``postgresNN`` families - every setting the
machine's PostgreSQL knows (``postgres --describe-config``: type, range,
context) plus the ``rds.*`` parameters RDS adds - as ``engine-default`` entries
with ``DataType``, ``AllowedValues``, ``ApplyType`` and ``IsModifiable``, and it
refuses to modify a parameter the family does not have, as RDS does.

Also as on RDS: ``DescribeDBParameters`` returns pages of ``MaxRecords``
(20-100, default 100) with a ``Marker`` (moto returns everything at once and
ignores both); the default group ``default.postgresNN`` exists without an
instance using it, and no default group can be modified; a static parameter
cannot be modified with ``ApplyMethod=immediate``; group names are matched
case-insensitively (RDS stores them in lower case).

Values are recorded, not applied to the instance servers (see
docs/local-aws-rds.md).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Callable
from typing import Any

from moto.rds.exceptions import DBParameterGroupNotFoundError, InvalidParameterCombination, InvalidParameterValue

_FAMILY = re.compile(r"^postgres\d+$")
_TYPES = {"BOOLEAN": "boolean", "INTEGER": "integer", "REAL": "float", "STRING": "string", "ENUM": "string"}
# Settings a customer cannot change on RDS (the server's own layout and internals).
_NOT_MODIFIABLE_CONTEXTS = {"internal"}
_NOT_MODIFIABLE_NAMES = {
    "config_file",
    "data_directory",
    "external_pid_file",
    "hba_file",
    "ident_file",
    "listen_addresses",
    "unix_socket_directories",
    "unix_socket_group",
    "unix_socket_permissions",
}
_RDS_ONLY = [
    {
        "ParameterName": "rds.force_ssl",
        "DataType": "boolean",
        "AllowedValues": "0,1",
        "ApplyType": "dynamic",
        "ParameterValue": "1",
        "Description": "Force SSL connections.",
    },
    {
        "ParameterName": "rds.logical_replication",
        "DataType": "boolean",
        "AllowedValues": "0,1",
        "ApplyType": "static",
        "ParameterValue": "0",
        "Description": "Enables logical decoding.",
    },
    {
        "ParameterName": "rds.log_retention_period",
        "DataType": "integer",
        "AllowedValues": "1440-10080",
        "ApplyType": "dynamic",
        "ParameterValue": "4320",
        "Description": "Minutes PostgreSQL logs are kept.",
    },
]


@functools.lru_cache(maxsize=1)
def _server_parameters(postgres: str) -> tuple[dict[str, Any], ...]:
    cmd = [postgres, "--describe-config"]
    try:
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    rows = []
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) < 8:
            continue
        name, context, _group, vartype, _default, minimum, maximum, short = fields[:8]
        row = {
            "ParameterName": name,
            "Description": short,
            "DataType": _TYPES.get(vartype, "string"),
            "ApplyType": "static" if context == "postmaster" else "dynamic",
            "IsModifiable": context not in _NOT_MODIFIABLE_CONTEXTS and name not in _NOT_MODIFIABLE_NAMES,
        }
        if vartype == "BOOLEAN":
            row["AllowedValues"] = "0,1"
        elif minimum and maximum:
            row["AllowedValues"] = f"{minimum}-{maximum}"
        rows.append(row)
    return tuple(rows)


def engine_defaults(family: str | None) -> dict[str, dict[str, Any]]:
    """``{name: parameter}`` of a postgres family; empty for other families."""
    if not family or not _FAMILY.match(family):
        return {}
    from local_aws.postgres import find_bindir

    rows = [*_server_parameters(str(find_bindir() / "postgres")), *_RDS_ONLY]
    return {row["ParameterName"]: {"Source": "engine-default", "IsModifiable": True, **row} for row in rows}


def _default_group(backend: Any, name: str) -> None:
    """``default.postgresNN`` exists on RDS for every family; moto makes it only for an instance using it."""
    family = name[len("default.") :] if name.startswith("default.") else ""
    if name in backend.db_parameter_groups or not _FAMILY.match(family):
        return
    from moto.rds.models import DBParameterGroup

    backend.db_parameter_groups[name] = DBParameterGroup(
        backend=backend,
        db_parameter_group_name=name,
        db_parameter_group_family=family,
        description=f"Default parameter group for {family}",
        tags=[],
    )


def describe_db_parameter_groups(original: Callable[..., Any], backend: Any, db_parameter_group_kwargs: dict[str, Any]) -> Any:
    name = db_parameter_group_kwargs.get("db_parameter_group_name")
    if not name:
        return original(backend, db_parameter_group_kwargs)
    # RDS stores the name in lower case; moto keeps the key as given but lower-cases the group's name.
    _default_group(backend, name.lower())
    groups = [group for group in original(backend, {**db_parameter_group_kwargs, "db_parameter_group_name": None}) if group.name == name.lower()]
    if not groups:
        raise DBParameterGroupNotFoundError(name)
    return groups


def copy_db_parameter_group(original: Callable[..., Any], backend: Any, *args: Any, **kwargs: Any) -> Any:
    """CopyDBParameterGroup from ``default.postgresNN`` works without an instance using it."""
    source = kwargs.get("source_db_parameter_group_identifier", args[0] if args else "")
    _default_group(backend, str(source).split(":")[-1].lower())
    return original(backend, *args, **kwargs)


def modify_db_parameter_group(original: Callable[..., Any], backend: Any, db_parameter_group_name: str, db_parameter_group_parameters: Any) -> Any:
    """The parameter names are moto's: CopyDBParameterGroup calls this with keywords."""
    name, parameters = db_parameter_group_name, db_parameter_group_parameters
    if name and name.lower().startswith("default."):
        raise InvalidParameterValue("Cannot modify a default parameter group.")
    group = backend.db_parameter_groups.get(name)
    known = engine_defaults(group.family) if group is not None else {}
    if known:
        parameters = list(parameters)
        for parameter in parameters:
            spec = known.get(parameter.get("ParameterName"))
            if spec is None:
                raise InvalidParameterValue(f"Could not find parameter with name: {parameter.get('ParameterName')}")
            if not spec["IsModifiable"]:
                raise InvalidParameterValue(f"The parameter {parameter['ParameterName']} cannot be modified.")
            if spec["ApplyType"] == "static" and parameter.get("ApplyMethod") == "immediate":
                raise InvalidParameterCombination("cannot use immediate apply method for static parameter")
            parameter["Source"] = "user"
    return original(backend, name, parameters)


MAX_RECORDS = (20, 100)  # DescribeDBParameters: MaxRecords "Minimum 20, maximum 100", default 100


def _page(parameters: list[dict[str, Any]], max_records: Any, marker: Any) -> tuple[list[dict[str, Any]], str | None]:
    """One page of parameters sorted by name; the marker is the name the next page starts at."""
    if max_records in (None, ""):
        size = MAX_RECORDS[1]
    else:
        try:
            size = int(max_records)
        except (TypeError, ValueError):
            size = 0
        if not MAX_RECORDS[0] <= size <= MAX_RECORDS[1]:
            raise InvalidParameterValue(f"Invalid value {max_records} for MaxRecords. Must be between {MAX_RECORDS[0]} and {MAX_RECORDS[1]}")
    if marker:
        parameters = [p for p in parameters if p["ParameterName"] >= marker]
    page, rest = parameters[:size], parameters[size:]
    return page, (rest[0]["ParameterName"] if rest else None)


def response_describe_db_parameters(original: Callable[..., Any], response: Any) -> Any:
    name = response.params.get("DBParameterGroupName")
    if not name:  # required by the API; moto's own answer
        return original(response)
    group = response.backend.describe_db_parameter_groups({"db_parameter_group_name": name})[0]  # or DBParameterGroupNotFound
    from moto.core.responses import ActionResult

    merged = {key: dict(value) for key, value in engine_defaults(group.family).items()}
    for key, value in group.parameters.items():
        merged[key] = {**merged.get(key, {}), "ParameterName": key, **value, "Source": "user"}
    source = response.params.get("Source")
    parameters = sorted((p for p in merged.values() if not source or p.get("Source") == source), key=lambda p: p["ParameterName"])
    page, marker = _page(parameters, response.params.get("MaxRecords"), response.params.get("Marker"))
    result: dict[str, Any] = {"Parameters": page}
    if marker:
        result["Marker"] = marker
    return ActionResult(result)


# -- gp3 storage baseline ----------------------------------------------------------------------
_BASELINE_MARK = "_local_aws_gp3_baseline"  # the (iops, throughput) this module filled in


def _gp3_threshold(engine: str) -> int | None:
    """Allocated GiB from which gp3's baseline is 12000 IOPS and 500 MiB/s; None: always 3000 and 125."""
    if engine.startswith("oracle"):
        return 200
    if engine.startswith("sqlserver"):
        return None
    return 400  # Db2, MariaDB, MySQL, PostgreSQL


def gp3_baseline(database: Any) -> None:
    """RDS reports gp3's included IOPS and throughput when none were asked for.

    Db2, MariaDB, MySQL and PostgreSQL below 400 GiB (Oracle: 200 GiB): 3000
    IOPS and 125 MiB/s; from there 12000 and 500; SQL Server always 3000 and
    125. A baseline filled in here follows later changes of size or type (it
    grows past the threshold, it goes away with gp3); a value asked for stays.
    """
    derived = getattr(database, _BASELINE_MARK, None) or (None, None)
    asked_iops = database.iops if database.iops != derived[0] else None
    asked_throughput = database.storage_throughput if database.storage_throughput != derived[1] else None
    if getattr(database, "storage_type", None) != "gp3":
        if derived != (None, None):
            database.iops = asked_iops
            database.storage_throughput = None  # gp3 only
            setattr(database, _BASELINE_MARK, None)
        return
    threshold = _gp3_threshold(str(getattr(database, "engine", "") or ""))
    large = threshold is not None and int(getattr(database, "allocated_storage", 0) or 0) >= threshold
    iops = asked_iops or (12000 if large else 3000)
    throughput = asked_throughput or (500 if large else 125)
    database.iops = iops
    database.storage_throughput = throughput
    setattr(database, _BASELINE_MARK, (None if asked_iops else iops, None if asked_throughput else throughput))
