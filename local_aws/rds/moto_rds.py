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
* ``RDSBackend.restore_db_instance_*`` - not backed yet (snapshot data is a
  later step): the restored instance keeps moto's unresolvable host name;
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
import functools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.rds.exceptions import InvalidDBInstanceStateFault, InvalidParameterCombination, InvalidParameterValue, RDSClientError
from moto.rds.models import DBInstance, MasterUserSecret, RDSBackend
from moto.rds.responses import RDSResponse

from local_aws.postgres import PostgresError

from . import parameters
from .instances import Fleet, LocalRDSError, MasterUser, PortUnavailable, new_password

LOOPBACK = "127.0.0.1"
ENGINE = "postgres"

_installed: dict[str, Fleet] = {}
_unbacked = contextvars.ContextVar("local_aws_rds_unbacked", default=False)

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
            instance = fleet().create(database, database.db_instance_identifier, master, db_name, port)
    except Exception:
        _forget(backend, database)
        raise
    database.port = instance.port
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
    """Restores are moto-only until snapshots carry data (a later step)."""
    token = _unbacked.set(True)
    try:
        return original(backend, *args, **kwargs)
    finally:
        _unbacked.reset(token)


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


def _address(original: property) -> property:
    def address(self: DBInstance) -> str:
        installed = _installed.get("fleet")
        if installed is not None and installed.get(self) is not None:
            return LOOPBACK
        return original.fget(self)

    return _LoopbackAddress(address)


# -- installing ---------------------------------------------------------------------------------
_BACKEND_WRAPPERS: dict[str, Callable[..., Any]] = {
    "create_db_instance": create_db_instance,
    "delete_db_instance": delete_db_instance,
    "modify_db_instance": modify_db_instance,
    "reboot_db_instance": reboot_db_instance,
    "stop_db_instance": stop_db_instance,
    "start_db_instance": start_db_instance,
    "restore_db_instance_from_db_snapshot": unbacked,
    "restore_db_instance_to_point_in_time": unbacked,
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
    _wrap(RDSResponse, "describe_db_parameters", parameters.response_describe_db_parameters)
    if not isinstance(DBInstance.address, _LoopbackAddress):
        DBInstance.address = _address(DBInstance.address)
    MasterUserSecret._generate_secret_string = _secret_string  # noqa: SLF001
