"""The seam into moto's RDS: postgres DB instances get a real server.

moto keeps the API state (identifiers, statuses, parameters, snapshots,
events) and its validation; these wrappers add the server's side effects
after moto accepted a call, and undo moto's part when the server cannot be
set up. Only ``Engine=postgres`` instances outside an Aurora cluster are
backed by a server; every other engine stays moto's bookkeeping.

Wrapped:

* ``RDSBackend.create_db_instance``  - the server, master role and database;
* ``RDSBackend.delete_db_instance``  - stop it and delete its data;
* ``RDSBackend.modify_db_instance``  - master password, ``DBPortNumber``,
  ``ManageMasterUserPassword`` and ``RotateMasterUserPassword``;
* ``RDSBackend.reboot/stop/start_db_instance``;
* ``RDSBackend.create/copy/delete_db_snapshot`` - the snapshot's data on disk
  (``snapshots.py``): ``pg_basebackup`` of the running server (also the final
  snapshot of ``DeleteDBInstance`` and the one ``StopDBInstance`` may take);
* ``RDSBackend.restore_db_instance_from_db_snapshot`` and
  ``restore_db_instance_to_point_in_time`` - a new server from the snapshot's
  data, or from the source's base backup and archived WAL up to the time;
* ``DBInstance.latest_restorable_time`` - from the WAL archive;
* ``RDSResponse.create_db_snapshot`` - the source must be ``available``;
* ``RDSResponse.delete_db_instance`` - the API rule that a final snapshot is
  either named or explicitly skipped;
* ``RDSBackend.describe/copy/modify_db_parameter_group(s)`` and
  ``RDSResponse.describe_db_parameters`` - parameter groups of postgres
  families as RDS has them (``parameters.py``);
* ``create/modify_db_instance`` also report gp3's baseline IOPS and
  throughput (``parameters.gp3_baseline``);
* ``DBInstance.address`` - ``127.0.0.1`` for backed instances;
* ``MasterUserSecret._generate_secret_string`` - the real master user name
  and a generated password instead of moto's fixed ``admin``/``P@55w0rd!``.
"""

from __future__ import annotations

import contextvars
import datetime
import functools
import json
import re
import secrets
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.rds.exceptions import InvalidDBInstanceStateFault, InvalidParameterCombination, InvalidParameterValue, RDSClientError
from moto.rds.models import DBInstance, DBInstanceAutomatedBackup, DBSnapshot, MasterUserSecret, RDSBackend
from moto.rds.responses import RDSResponse

from local_aws.postgres import PostgresError

from . import parameters
from .instances import Fleet, LocalRDSError, MasterUser, PointInTimeSeed, PortUnavailable, SnapshotSeed, new_password

LOOPBACK = "127.0.0.1"
ENGINE = "postgres"

_installed: dict[str, Fleet] = {}
_unbacked = contextvars.ContextVar("local_aws_rds_unbacked", default=False)


@dataclass(frozen=True)
class _Restore:
    """What a restore call asks of the create_db_instance moto calls inside it."""

    seed: SnapshotSeed | PointInTimeSeed
    port: int | None  # Port of the request (moto would reuse the source's)
    retention: int | None  # BackupRetentionPeriod of the request (moto drops a 0)


_restore: contextvars.ContextVar[_Restore | None] = contextvars.ContextVar("local_aws_rds_restore", default=None)

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_RESERVED_ROLES = {"rdsadmin", "rdsrepladmin", "rds_superuser", "rds_replication", "public", "none", "current_role", "current_user", "session_user"}
_PASSWORD = re.compile(r"^[!#-.0-?A-~]{8,128}$")  # printable ASCII but space / " @


def fleet() -> Fleet:
    return _installed["fleet"]


# -- validation (what RDS checks for PostgreSQL before it creates anything) --------------
def validate_master_username(name: str | None) -> str:
    if not name:
        raise InvalidParameterValue("The parameter MasterUsername must be provided and must not be blank.")
    if not _NAME.match(name) or name.lower() in _RESERVED_ROLES or name.lower().startswith("pg_"):
        raise InvalidParameterValue(
            f"MasterUsername {name} cannot be used. It must be 1 to 63 letters, digits or underscores, "
            "begin with a letter, and not be a word reserved by the database engine."
        )
    return name


def validate_master_password(password: str | None) -> str:
    if not password:
        raise InvalidParameterValue("The parameter MasterUserPassword must be provided and must not be blank.")
    if len(password) < 8:
        raise InvalidParameterValue("The parameter MasterUserPassword is not a valid password because it is shorter than 8 characters.")
    if not _PASSWORD.match(password):
        raise InvalidParameterValue(
            "The parameter MasterUserPassword is not a valid password. Only printable ASCII characters besides '/', '@', '\"', ' ' may be used (at most 128)."
        )
    return password


def validate_db_name(name: str | None) -> str | None:
    if name is None:
        return None
    if not _NAME.match(name) or name.lower() in {"template0", "template1", "rdsadmin"}:
        raise InvalidParameterValue(
            f"The parameter DBName is not a valid identifier: {name}. It must be 1 to 63 letters, digits or underscores, "
            "begin with a letter, and not be a word reserved by the database engine."
        )
    return name


def _is_backed_request(db_kwargs: Any) -> bool:
    return db_kwargs.get("engine") == ENGINE and not db_kwargs.get("db_cluster_identifier") and not _unbacked.get()


def _requested_password(db_kwargs: Any) -> str | None:
    managed = bool(db_kwargs.get("manage_master_user_password"))
    password = db_kwargs.get("master_user_password")
    if managed and password:
        raise InvalidParameterCombination("You can't specify MasterUserPassword and ManageMasterUserPassword at the same time.")
    return None if managed else validate_master_password(password)


# -- Secrets Manager ---------------------------------------------------------------------------
def managed_password(database: DBInstance) -> str:
    """The password in the instance's Secrets Manager master secret (AWSCURRENT)."""
    secret = database.master_user_secret
    value = secret.secretsmanager.get_secret_value(secret.secret_arn, None, "AWSCURRENT")
    return json.loads(value["SecretString"])["password"]


def _secret_string(self: MasterUserSecret) -> str:
    """What RDS stores in a managed master secret: the real user, a fresh password."""
    return json.dumps({"username": self.resource.master_username, "password": new_password()})


def _finish_rotation(database: DBInstance) -> None:
    """moto leaves a rotation pending; RDS ends it with a new current password."""
    secret = database.master_user_secret
    value = json.dumps({"username": database.master_username, "password": new_password()})
    secret.secretsmanager.put_secret_value(secret.secret_arn, value, None, None, ["AWSCURRENT"])


# -- errors ---------------------------------------------------------------------------------------
def client_error(exc: Exception, identifier: str, creating: bool) -> RDSClientError:
    """An error of the RDS API model (moto warns about codes outside it)."""
    if isinstance(exc, RDSClientError):
        return exc
    if isinstance(exc, PortUnavailable):
        return InvalidParameterValue(f"{exc}. Local RDS runs each DB instance's PostgreSQL on 127.0.0.1: choose another Port or leave it out.")
    message = f"local RDS could not run PostgreSQL for DB instance {identifier}: {exc}"
    # The codes AWS uses when it cannot provide an instance, or an instance cannot do it now.
    return RDSClientError("InsufficientDBInstanceCapacity" if creating else "InvalidDBInstanceState", message)


def _forget(backend: RDSBackend, database: DBInstance) -> None:
    """Undo moto's CreateDBInstance when the server could not be set up."""
    identifier = database.db_instance_identifier
    backend.databases.pop(identifier, None)
    if getattr(database, "master_user_secret", None) is not None:
        database.master_user_secret.delete_secret()
    for snapshot in backend.describe_db_snapshots(identifier, None, snapshot_type="automated"):
        backend.delete_db_snapshot(snapshot.db_snapshot_identifier)


def _resource_id() -> str:
    """A ``DbiResourceId`` of our own (moto gives every instance the same one)."""
    return "db-" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(26))


def _automated_snapshots(backend: RDSBackend, database: DBInstance) -> list[DBSnapshot]:
    identifier = database.db_instance_identifier
    return [s for s in list(backend.database_snapshots.values()) if s.snapshot_type == "automated" and s.db_instance_identifier == identifier]


def _prepare_automated_snapshots(backend: RDSBackend, database: DBInstance, archive: bool) -> None:
    """The automated snapshot moto makes at creation: ``creating`` until the base backup is done.

    Without automated backups (``BackupRetentionPeriod=0``) RDS has none: it goes.
    """
    for snapshot in _automated_snapshots(backend, database):
        if archive:
            snapshot.status = "creating"
        else:
            backend.delete_db_snapshot(snapshot.db_snapshot_identifier)


def _automated_snapshots_ready(backend: RDSBackend, database: DBInstance) -> Callable[[Any], None]:
    """Run by the base backup when it is done: the automated snapshot gets its data."""

    def ready(_instance: Any) -> None:
        for snapshot in _automated_snapshots(backend, database):
            if snapshot.status != "creating" or fleet().snapshots.get(snapshot) is not None:
                continue
            if fleet().adopt_base(database, snapshot, snapshot.db_snapshot_identifier, database.region) is None:
                continue
            if backend.database_snapshots.get(snapshot.db_snapshot_identifier) is not snapshot:
                fleet().snapshots.delete(snapshot)  # deleted meanwhile
                continue
            snapshot.status = "available"

    return ready


@contextmanager
def _server_errors(identifier: str, creating: bool = False) -> Iterator[None]:
    try:
        yield
    except (LocalRDSError, PostgresError, OSError) as exc:
        raise client_error(exc, identifier, creating) from exc
    except Exception as exc:  # psycopg errors: the server refused an admin statement
        if type(exc).__module__.startswith("psycopg"):
            raise client_error(exc, identifier, creating) from exc
        raise


# -- wrappers --------------------------------------------------------------------------------------
def create_db_instance(original: Callable[..., DBInstance], backend: RDSBackend, db_kwargs: Any) -> DBInstance:
    if not _is_backed_request(db_kwargs):
        database = original(backend, db_kwargs)
        parameters.gp3_baseline(database)
        return database
    restore = _restore.get()
    if restore is not None:
        return _create_restored(original, backend, db_kwargs, restore)
    username = validate_master_username(db_kwargs.get("master_username"))
    password = _requested_password(db_kwargs)
    db_name = validate_db_name(db_kwargs.get("db_name"))
    port = int(db_kwargs["port"]) if db_kwargs.get("port") else None
    identifier = str(db_kwargs.get("db_instance_identifier", "")).lower()
    with _server_errors(identifier, creating=True):
        if port:
            fleet().check_port(port)
        if not db_kwargs.get("engine_version"):
            db_kwargs["engine_version"] = fleet().server_version()
    database = original(backend, db_kwargs)
    try:
        with _server_errors(identifier, creating=True):
            master = MasterUser(username, password or managed_password(database))
            archive = database.backup_retention_period > 0
            _prepare_automated_snapshots(backend, database, archive)
            ready = _automated_snapshots_ready(backend, database)
            instance = fleet().create(
                database, database.db_instance_identifier, master, db_name, port=port, region=database.region, archive=archive, on_ready=ready
            )
    except Exception:
        _forget(backend, database)
        raise
    database.port = instance.port
    database.dbi_resource_id = _resource_id()
    parameters.gp3_baseline(database)
    return database


def _create_restored(original: Callable[..., DBInstance], backend: RDSBackend, db_kwargs: Any, restore: _Restore) -> DBInstance:
    """The create_db_instance inside moto's restores: the server comes from the seed's data."""
    identifier = str(db_kwargs.get("db_instance_identifier", "")).lower()
    with _server_errors(identifier, creating=True):
        if restore.port:
            fleet().check_port(restore.port)
    db_kwargs.pop("port", None)  # the source's port: taken while the source runs on 127.0.0.1
    if restore.retention is not None:
        db_kwargs["backup_retention_period"] = restore.retention
    database = original(backend, db_kwargs)
    try:
        with _server_errors(identifier, creating=True):
            # The master user and password are those in the restored data. RDS
            # manages the password of restored instances only for Oracle.
            if getattr(database, "master_user_secret", None) is not None:
                database.master_user_secret.delete_secret()
                del database.master_user_secret
            database.manage_master_user_password = False
            archive = database.backup_retention_period > 0
            _prepare_automated_snapshots(backend, database, archive)
            instance = fleet().restore(
                database,
                database.db_instance_identifier,
                database.master_username,
                restore.seed,
                port=restore.port,
                region=database.region,
                archive=archive,
                on_ready=_automated_snapshots_ready(backend, database),
            )
    except Exception:
        _forget(backend, database)
        raise
    database.port = instance.port
    database.dbi_resource_id = _resource_id()
    parameters.gp3_baseline(database)
    return database


def delete_db_instance(original: Callable[..., DBInstance], backend: RDSBackend, *args: Any, **kwargs: Any) -> DBInstance:
    database = original(backend, *args, **kwargs)
    if fleet().get(database) is not None:
        with _server_errors(database.db_instance_identifier):
            fleet().destroy(database)
    return database


def _require_running(database: DBInstance, action: str) -> None:
    if database.status != "available":
        raise InvalidDBInstanceStateFault(f"Instance {database.db_instance_identifier} is not in available state (it is {database.status}); cannot {action}.")
    with _server_errors(database.db_instance_identifier):
        if not fleet().is_running(database):
            raise LocalRDSError("its PostgreSQL server is not running (killed through the control interface?); reboot it first")


def _check_password_management(database: DBInstance, db_kwargs: Any) -> None:
    manage = db_kwargs.get("manage_master_user_password")
    password = db_kwargs.get("master_user_password")
    if manage and password:
        raise InvalidParameterCombination("You can't specify MasterUserPassword and ManageMasterUserPassword at the same time.")
    if manage is False and database.manage_master_user_password and not password:
        raise InvalidParameterCombination("You must specify MasterUserPassword when you turn off ManageMasterUserPassword.")
    if db_kwargs.get("rotate_master_user_password") and not (database.manage_master_user_password or manage):
        raise InvalidParameterCombination("You can rotate the master user password only when it is managed in AWS Secrets Manager.")
    if password:
        validate_master_password(password)


_SERVER_MODIFICATIONS = ("master_user_password", "manage_master_user_password", "rotate_master_user_password")


def modify_db_instance(original: Callable[..., DBInstance], backend: RDSBackend, db_instance_identifier: str, db_kwargs: Any) -> DBInstance:
    database = backend.describe_db_instances(db_instance_identifier)[0]
    if fleet().get(database) is None:
        database = original(backend, db_instance_identifier, db_kwargs)
        parameters.gp3_baseline(database)
        return database
    _check_password_management(database, db_kwargs)
    new_port = int(db_kwargs["db_port_number"]) if db_kwargs.get("db_port_number") else None
    new_port = None if new_port == database.port else new_port
    if new_port or any(db_kwargs.get(key) for key in _SERVER_MODIFICATIONS):
        _require_running(database, "change its master password or port")
    with _server_errors(database.db_instance_identifier):
        if new_port:
            fleet().check_port(new_port, fleet().get(database))
    database = original(backend, db_instance_identifier, db_kwargs)
    with _server_errors(database.db_instance_identifier):
        if new_port:
            fleet().move(database, new_port)  # RDS restarts for a new port whatever ApplyImmediately says
            database.port = new_port
        if db_kwargs.get("rotate_master_user_password"):
            _finish_rotation(database)
        if db_kwargs.get("master_user_password"):
            fleet().set_master_password(database, db_kwargs["master_user_password"])
        elif db_kwargs.get("manage_master_user_password") or db_kwargs.get("rotate_master_user_password"):
            fleet().set_master_password(database, managed_password(database))
    parameters.gp3_baseline(database)
    return database


def reboot_db_instance(original: Callable[..., DBInstance], backend: RDSBackend, db_instance_identifier: str, *args: Any, **kwargs: Any) -> DBInstance:
    database = original(backend, db_instance_identifier, *args, **kwargs)
    if fleet().get(database) is not None:
        if database.status != "available":
            raise InvalidDBInstanceStateFault(f"Instance {database.db_instance_identifier} is not in available state (it is {database.status}).")
        with _server_errors(database.db_instance_identifier):
            fleet().restart(database)
    return database


def stop_db_instance(original: Callable[..., DBInstance], backend: RDSBackend, *args: Any, **kwargs: Any) -> DBInstance:
    database = original(backend, *args, **kwargs)
    if fleet().get(database) is not None:
        with _server_errors(database.db_instance_identifier):
            fleet().stop(database)
    return database


def start_db_instance(original: Callable[..., DBInstance], backend: RDSBackend, *args: Any, **kwargs: Any) -> DBInstance:
    database = original(backend, *args, **kwargs)
    if fleet().get(database) is not None:
        try:
            with _server_errors(database.db_instance_identifier):
                fleet().start(database)
        except RDSClientError:
            database.status = "stopped"
            raise
    return database


def unbacked(original: Callable[..., DBInstance], backend: RDSBackend, *args: Any, **kwargs: Any) -> DBInstance:
    """moto's call alone (read replicas; restores of snapshots that carry no data)."""
    token = _unbacked.set(True)
    try:
        return original(backend, *args, **kwargs)
    finally:
        _unbacked.reset(token)


def _as_restored(database: DBInstance, overrides: Any) -> DBInstance:
    """What AWS gives a restored instance that moto copies from the source instead.

    moto copies every attribute of the source and applies only truthy overrides, so a restore of a
    deletion-protected instance came out protected even with DeletionProtection=false. On AWS a restore
    is protected only when the call says so (the parameter's default is false).
    """
    database.deletion_protection = bool(overrides.get("deletion_protection"))
    return database


def _seeded(seed: SnapshotSeed | PointInTimeSeed, overrides: Any, call: Callable[[], DBInstance]) -> DBInstance:
    port, retention = overrides.get("port"), overrides.get("backup_retention_period")
    token = _restore.set(_Restore(seed, int(port) if port else None, None if retention is None else int(retention)))
    try:
        return call()
    finally:
        _restore.reset(token)


# -- snapshots ------------------------------------------------------------------------------------
def create_db_snapshot(
    original: Callable[..., DBSnapshot], backend: RDSBackend, db_instance_identifier: str, db_snapshot_identifier: str, *args: Any, **kwargs: Any
) -> DBSnapshot:
    """The snapshot's data: also for DeleteDBInstance's final and StopDBInstance's snapshot (server still up)."""
    snapshot = original(backend, db_instance_identifier, db_snapshot_identifier, *args, **kwargs)
    database = backend.databases.get(db_instance_identifier)
    if database is None or fleet().get(database) is None:
        return snapshot  # another engine, or the automated snapshot moto takes before the server exists
    try:
        with _server_errors(database.db_instance_identifier):
            fleet().snapshot(database, snapshot, snapshot.db_snapshot_identifier, backend.region_name)
    except Exception:
        backend.database_snapshots.pop(snapshot.db_snapshot_identifier, None)
        raise
    return snapshot


def response_create_db_snapshot(original: Callable[..., Any], response: RDSResponse) -> Any:
    """CreateDBSnapshot: "The source DB instance must be in the available ... state"."""
    database = response.backend.databases.get(response.params.get("DBInstanceIdentifier") or "")
    if database is not None and fleet().get(database) is not None and database.status not in ("available", "storage-optimization"):
        raise RDSClientError("InvalidDBInstanceState", f"Instance {database.db_instance_identifier} is not in available state (it is {database.status}).")
    return original(response)


def _require_snapshot_available(backend: RDSBackend, snapshot: DBSnapshot) -> None:
    if snapshot.status == "creating" and snapshot.snapshot_type == "automated":
        # The base backup after creation runs in the background while the API
        # already says available (RDS says backing-up): wait for it.
        live = backend.databases.get(snapshot.db_instance_identifier)
        if live is not None and fleet().get(live) is not None:
            fleet().wait_base_backup(live)
    if snapshot.status != "available":
        raise RDSClientError("InvalidDBSnapshotState", f"DB snapshot {snapshot.db_snapshot_identifier} is not available (it is {snapshot.status}).")


def copy_db_snapshot(
    original: Callable[..., DBSnapshot], backend: RDSBackend, source_db_snapshot_identifier: str, target_db_snapshot_identifier: str, *args: Any, **kwargs: Any
) -> DBSnapshot:
    """CopyDBSnapshot (also from another region by ARN): the data is copied too."""
    source = _snapshot_of(backend, source_db_snapshot_identifier)
    if source is not None:
        _require_snapshot_available(backend, source)
    target = original(backend, source_db_snapshot_identifier, target_db_snapshot_identifier, *args, **kwargs)
    files = fleet().snapshots.get(source) if source is not None else None
    if files is None:
        return target
    try:
        with _server_errors(target.db_snapshot_identifier):
            fleet().snapshots.copy(files, target, target.db_snapshot_identifier, backend.region_name)
    except Exception:
        backend.database_snapshots.pop(target.db_snapshot_identifier, None)
        raise
    return target


def delete_db_snapshot(original: Callable[..., DBSnapshot], backend: RDSBackend, *args: Any, **kwargs: Any) -> DBSnapshot:
    snapshot = original(backend, *args, **kwargs)
    fleet().snapshots.delete(snapshot)
    return snapshot


def _snapshot_of(backend: RDSBackend, identifier: str) -> DBSnapshot | None:
    try:
        if identifier.startswith("arn:"):
            return backend.get_db_snapshot(identifier)
        return backend.describe_db_snapshots(db_instance_identifier=None, db_snapshot_identifier=identifier)[0]
    except (RDSClientError, IndexError):
        return None  # moto's own call reports it


def restore_db_instance_from_db_snapshot(original: Callable[..., DBInstance], backend: RDSBackend, from_snapshot_id: str, overrides: Any) -> DBInstance:
    snapshot = _snapshot_of(backend, from_snapshot_id)
    backed = snapshot is not None and snapshot.engine == ENGINE and not getattr(snapshot.database, "db_cluster_identifier", None)
    if not backed:
        return _as_restored(unbacked(original, backend, from_snapshot_id, overrides), overrides)
    _require_snapshot_available(backend, snapshot)
    files = fleet().snapshots.get(snapshot)
    if files is None:
        raise RDSClientError(
            "InvalidDBSnapshotState",
            f"DB snapshot {snapshot.db_snapshot_identifier} holds no data in local RDS (it was not taken from a running local instance).",
        )
    _fit_region(backend, snapshot, overrides)
    return _as_restored(_seeded(SnapshotSeed(files), overrides, lambda: original(backend, from_snapshot_id, overrides)), overrides)


def _fit_region(backend: RDSBackend, snapshot: DBSnapshot, overrides: Any) -> None:
    """A snapshot copied from another region describes an instance of that region.

    moto reuses the source instance's DB subnet group and Availability Zone,
    which the restore's region lacks; RDS uses the region's ``default`` group
    and one of its zones unless the request names them.
    """
    source = snapshot.database
    if source.region == backend.region_name:
        return
    if not overrides.get("availability_zone"):
        overrides["availability_zone"] = f"{backend.region_name}a"
    group = getattr(source, "_db_subnet_group_name", None)
    if not overrides.get("db_subnet_group_name") and group and group not in backend.subnet_groups:
        from local_aws.moto_fixes import default_subnet_group  # noqa: PLC0415 - installed after local RDS

        default = default_subnet_group(backend)
        if default is not None:
            overrides["db_subnet_group_name"] = default


# -- point-in-time recovery --------------------------------------------------------------------------
def _as_utc(value: Any) -> datetime.datetime:
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)


def _iso(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _source_by_resource_id(backend: RDSBackend, resource_id: str) -> str:
    for database in backend.databases.values():
        if database.dbi_resource_id == resource_id and fleet().get(database) is not None:
            return database.db_instance_identifier
    raise RDSClientError("DBInstanceAutomatedBackupNotFound", f"No automated backup for the DB instance with resource ID {resource_id} was found.")


def restore_db_instance_to_point_in_time(
    original: Callable[..., DBInstance], backend: RDSBackend, source_db_identifier: str | None, target_db_identifier: str, overrides: Any
) -> DBInstance:
    if not source_db_identifier and overrides.get("source_dbi_resource_id"):
        source_db_identifier = _source_by_resource_id(backend, overrides["source_dbi_resource_id"])
    if not source_db_identifier:
        raise InvalidParameterCombination("One of SourceDBInstanceIdentifier, SourceDbiResourceId or SourceDBInstanceAutomatedBackupsArn must be specified.")
    database = backend.describe_db_instances(source_db_identifier)[0]
    instance = fleet().get(database)
    if instance is None:
        return _as_restored(unbacked(original, backend, source_db_identifier, target_db_identifier, overrides), overrides)
    restore_time, use_latest = overrides.get("restore_time"), bool(overrides.get("use_latest_restorable_time"))
    if restore_time and use_latest:
        raise InvalidParameterCombination("Cannot specify both RestoreTime and UseLatestRestorableTime.")
    if not restore_time and not use_latest:
        raise InvalidParameterCombination("Either RestoreTime or UseLatestRestorableTime must be specified.")
    if database.backup_retention_period == 0:
        raise RDSClientError(
            "PointInTimeRestoreNotEnabled",
            f"Point-in-time restore is not enabled for DB instance {database.db_instance_identifier}: its BackupRetentionPeriod is 0.",
        )
    if instance.archive is None:
        raise RDSClientError(
            "PointInTimeRestoreNotEnabled",
            f"DB instance {database.db_instance_identifier} keeps no WAL archive: local RDS archives WAL only for instances "
            "created or restored with BackupRetentionPeriod > 0, not after a ModifyDBInstance that turns backups on.",
        )
    fleet().wait_base_backup(database)  # RDS says backing-up until its first backup is done
    target = None
    if restore_time:
        target = _as_utc(restore_time)
        with _server_errors(database.db_instance_identifier):
            earliest, latest = fleet().restorable_window(database)
        if earliest is None or latest is None or not earliest <= target <= latest:
            window = f"{_iso(earliest)} to {_iso(latest)}" if earliest and latest else "empty"
            raise RDSClientError(
                "InvalidRestoreFault",
                f"The restore time {_iso(target)} is outside the restorable window of DB instance {database.db_instance_identifier} ({window}).",
            )
    seed = PointInTimeSeed(instance, target)
    return _as_restored(_seeded(seed, overrides, lambda: original(backend, source_db_identifier, target_db_identifier, overrides)), overrides)


def response_delete_db_instance(original: Callable[..., Any], response: RDSResponse) -> Any:
    """DeleteDBInstance: a final snapshot must be named or explicitly skipped."""
    params = response.params
    database = response.backend.databases.get(params.get("DBInstanceIdentifier") or "")
    needs_choice = database is not None and not database.is_replica and not database.db_cluster_identifier
    if needs_choice and not params.get("SkipFinalSnapshot") and not params.get("FinalDBSnapshotIdentifier"):
        raise InvalidParameterCombination("FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.")
    return original(response)


class _LoopbackAddress(property):
    """``DBInstance.address``: 127.0.0.1 for instances backed by a server."""


class _RestorableTime(property):
    """``DBInstance.latest_restorable_time``: from the WAL archive of backed instances."""


def _latest_restorable_time(original: property) -> property:
    def latest_restorable_time(self: DBInstance) -> datetime.datetime | None:
        installed = _installed.get("fleet")
        if installed is None or installed.get(self) is None:
            return original.fget(self)
        try:
            return installed.restorable_window(self)[1]
        except (LocalRDSError, PostgresError, OSError):
            return None

    return _RestorableTime(latest_restorable_time)


def _address(original: property) -> property:
    def address(self: DBInstance) -> str:
        installed = _installed.get("fleet")
        if installed is not None and installed.get(self) is not None:
            return LOOPBACK
        return original.fget(self)

    return _LoopbackAddress(address)


def _automated_backup_detail(name: str) -> property:
    """``DescribeDBInstanceAutomatedBackups``: what moto leaves out, from the live instance."""

    def get(self: DBInstanceAutomatedBackup) -> Any:
        database = self.backend.databases.get(self.db_instance_identifier)
        installed = _installed.get("fleet")
        if database is None:
            return None
        if name == "restore_window":
            if installed is None or installed.get(database) is None:
                return None
            try:
                earliest, latest = installed.restorable_window(database)
            except (LocalRDSError, PostgresError, OSError):
                return None
            return {"EarliestTime": earliest, "LatestTime": latest} if earliest is not None else None
        return getattr(database, name, None)

    return property(get)


_AUTOMATED_BACKUP_DETAILS = (
    "restore_window",
    "dbi_resource_id",
    "db_instance_arn",
    "region",
    "engine",
    "engine_version",
    "master_username",
    "allocated_storage",
    "port",
    "backup_retention_period",
    "instance_create_time",
)


# -- installing ---------------------------------------------------------------------------------
_BACKEND_WRAPPERS: dict[str, Callable[..., Any]] = {
    "create_db_instance": create_db_instance,
    "delete_db_instance": delete_db_instance,
    "modify_db_instance": modify_db_instance,
    "reboot_db_instance": reboot_db_instance,
    "stop_db_instance": stop_db_instance,
    "start_db_instance": start_db_instance,
    "create_db_snapshot": create_db_snapshot,
    "copy_db_snapshot": copy_db_snapshot,
    "delete_db_snapshot": delete_db_snapshot,
    "restore_db_instance_from_db_snapshot": restore_db_instance_from_db_snapshot,
    "restore_db_instance_to_point_in_time": restore_db_instance_to_point_in_time,
    "describe_db_parameter_groups": parameters.describe_db_parameter_groups,
    "copy_db_parameter_group": parameters.copy_db_parameter_group,
    "modify_db_parameter_group": parameters.modify_db_parameter_group,
}


def _wrap(cls: type, name: str, wrapper: Callable[..., Any]) -> None:
    original = getattr(cls, name)
    original = getattr(original, "__local_aws_original__", original)  # installing twice wraps once

    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return wrapper(original, self, *args, **kwargs)

    method.__local_aws_original__ = original  # type: ignore[attr-defined]
    setattr(cls, name, method)


def install(instances: Fleet) -> None:
    _installed["fleet"] = instances
    for name, wrapper in _BACKEND_WRAPPERS.items():
        _wrap(RDSBackend, name, wrapper)
    _wrap(RDSResponse, "delete_db_instance", response_delete_db_instance)
    _wrap(RDSResponse, "create_db_snapshot", response_create_db_snapshot)
    _wrap(RDSResponse, "describe_db_parameters", parameters.response_describe_db_parameters)
    if not isinstance(DBInstance.address, _LoopbackAddress):
        DBInstance.address = _address(DBInstance.address)
    if not isinstance(DBInstance.latest_restorable_time, _RestorableTime):
        DBInstance.latest_restorable_time = _latest_restorable_time(DBInstance.latest_restorable_time)
    for name in _AUTOMATED_BACKUP_DETAILS:
        if name not in DBInstanceAutomatedBackup.__dict__:
            setattr(DBInstanceAutomatedBackup, name, _automated_backup_detail(name))
    MasterUserSecret._generate_secret_string = _secret_string  # noqa: SLF001
