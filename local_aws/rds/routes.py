"""Control routes for local RDS instances (``/_local/rds/...``, JSON).

``GET  /_local/rds/instances``             every backed DB instance
``GET  /_local/rds/instances/<id>``        one of them
``POST /_local/rds/instances/<id>/kill``   stop its server abruptly (a crash:
                                           connections drop, the API still
                                           says ``available``)
``POST /_local/rds/instances/<id>/start``  start its server again
``GET  /_local/rds/snapshots``             every DB snapshot that holds data,
                                           with its folder and size

A POST body may carry ``{"region": "..."}`` when the same identifier exists in
several regions or accounts.
"""

from __future__ import annotations

from typing import Any

from local_aws.control import ControlError, route

from .instances import Fleet, Instance
from .moto_rds import _installed
from .snapshots import SnapshotFiles


def _fleet() -> Fleet:
    installed = _installed.get("fleet")
    if installed is None:
        raise ControlError(503, "local RDS is not installed in this endpoint")
    return installed


def _instances() -> list[Instance]:
    return _fleet().all()


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def describe(instance: Instance) -> dict[str, Any]:
    database = instance.owner
    cluster = instance.cluster
    return {
        "id": database.db_instance_identifier,
        "region": database.region,
        "account": database.account_id,
        "status": database.status,
        "master_username": instance.master_username,
        "host": cluster.host,
        "port": cluster.port,
        "data_dir": str(cluster.data_dir),
        "log_file": str(cluster.log_file),
        "running": cluster.is_running(),
        "pid": cluster.postmaster_pid(),
        "wal_archive": str(instance.archive.archive_dir) if instance.archive is not None else None,
        "base_backup": str(instance.archive.base.data_dir) if instance.archive is not None else None,
        "earliest_restorable_time": _iso(instance.archive.earliest) if instance.archive is not None else None,
    }


def describe_snapshot(files: SnapshotFiles) -> dict[str, Any]:
    snapshot = files.owner
    return {
        "id": snapshot.db_snapshot_identifier,
        "region": snapshot.region,
        "account": snapshot.account_id,
        "type": snapshot.snapshot_type,
        "db_instance": snapshot.db_instance_identifier,
        "data_dir": str(files.data_dir),
        "taken": _iso(files.taken),
        "bytes": files.size(),
    }


def find(identifier: str, body: Any) -> Instance:
    region = body.get("region") if isinstance(body, dict) else None
    matches = [i for i in _instances() if i.owner.db_instance_identifier == identifier.lower() and (region is None or i.owner.region == region)]
    if not matches:
        raise ControlError(404, f"no local RDS instance {identifier}" + (f" in {region}" if region else ""))
    if len(matches) > 1:
        raise ControlError(409, f'{identifier} exists in several regions or accounts; pass {{"region": ...}}')
    return matches[0]


@route("GET", "/_local/rds/instances")
def list_instances(_body: Any) -> tuple[int, Any]:
    return 200, {"instances": [describe(i) for i in _instances()]}


@route("GET", "/_local/rds/instances/<identifier>")
def get_instance(body: Any, identifier: str) -> tuple[int, Any]:
    return 200, describe(find(identifier, body))


@route("POST", "/_local/rds/instances/<identifier>/kill")
def kill_instance(body: Any, identifier: str) -> tuple[int, Any]:
    instance = find(identifier, body)
    killed = _fleet().kill(instance.owner)
    return 200, {**describe(instance), "killed": killed}


@route("POST", "/_local/rds/instances/<identifier>/start")
def start_instance(body: Any, identifier: str) -> tuple[int, Any]:
    instance = find(identifier, body)
    with instance.lock:
        started = instance.cluster.start()
    return 200, {**describe(instance), "started": started}


@route("GET", "/_local/rds/snapshots")
def list_snapshots(_body: Any) -> tuple[int, Any]:
    return 200, {"snapshots": [describe_snapshot(f) for f in _fleet().snapshots.all()]}
