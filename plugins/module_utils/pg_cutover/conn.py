# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Endpoints: how to reach the source and the target, never showing a password.

The password goes to psycopg as a keyword, to the client tools through a
mode-600 passfile, and to the target server inside the subscription's
conninfo (stored by PostgreSQL in ``pg_subscription``, readable by superusers
only). It is never part of a label, a message, a command line or the report.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import tempfile
import traceback

try:
    import psycopg
    from psycopg import sql

    HAS_PSYCOPG = True
    PSYCOPG_IMPORT_ERROR = None
except ImportError:  # the module reports missing_required_lib('psycopg')
    psycopg = None
    sql = None
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()

APPLICATION_NAME = "fastier_cutover"

# Session settings that make row text and numbers render the same on both
# servers (verification compares expressions computed on each side).
STABLE_SESSION = (
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
    "SET extra_float_digits = 3; SET bytea_output = 'hex'; SET lc_monetary = 'C'"
)


def endpoint_spec(with_replication_address=False):
    """Argument spec of a PostgreSQL endpoint option (rds_cutover's source/target, pg_recovery_check's databases)."""
    spec = dict(
        host=dict(type="str", default="localhost"),
        port=dict(type="int", default=5432),
        dbname=dict(type="str", required=True),
        user=dict(type="str", required=True),
        password=dict(type="str", no_log=True),
        sslmode=dict(type="str", default="prefer", choices=["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]),
        connect_timeout=dict(type="int", default=10),
    )
    if with_replication_address:
        spec.update(host_from_target=dict(type="str"), port_from_target=dict(type="int"))
    return spec


class Endpoint:
    """One side of the cut-over (``role`` is ``source`` or ``target``)."""

    def __init__(self, role, params, migration_id=None):
        self.role = role
        self.host = params.get("host") or "localhost"
        self.port = int(params.get("port") or 5432)
        self.dbname = params["dbname"]
        self.user = params["user"]
        self.password = params.get("password")
        self.sslmode = params.get("sslmode") or "prefer"
        self.connect_timeout = int(params.get("connect_timeout") or 10)
        self.host_from_target = params.get("host_from_target") or self.host
        self.port_from_target = int(params.get("port_from_target") or self.port)
        self.application_name = "{0}:{1}".format(APPLICATION_NAME, migration_id or role)[:63]

    def label(self):
        """``user@host:port/dbname``: what messages and the report show."""
        return "{0}@{1}:{2}/{3}".format(self.user, self.host, self.port, self.dbname)

    def identity(self):
        """Where a database is (no user): used to recognise a migration's target."""
        return "{0}:{1}/{2}".format(self.host, self.port, self.dbname)

    def kwargs(self, dbname=None):
        params = {
            "host": self.host,
            "port": self.port,
            "dbname": dbname or self.dbname,
            "user": self.user,
            "sslmode": self.sslmode,
            "connect_timeout": self.connect_timeout,
            "application_name": self.application_name,
        }
        if self.password:
            params["password"] = self.password
        return params

    def connect(self, autocommit=True, replication=False, dbname=None):
        params = self.kwargs(dbname)
        if replication:
            params["replication"] = "database"
        return psycopg.connect(autocommit=autocommit, **params)

    def dsn(self, dbname=None):
        """A libpq conninfo string WITHOUT the password (client tools read the passfile)."""
        params = self.kwargs(dbname)
        params.pop("password", None)
        return conninfo_string(params)

    def subscription_conninfo(self):
        """How the target server reaches this (source) server, password included."""
        params = {
            "host": self.host_from_target,
            "port": self.port_from_target,
            "dbname": self.dbname,
            "user": self.user,
            "sslmode": self.sslmode,
            "application_name": self.application_name,
            "connect_timeout": self.connect_timeout,
        }
        if self.password:
            params["password"] = self.password
        return conninfo_string(params)

    def is_loopback(self):
        return self.host in ("localhost", "127.0.0.1", "::1") or self.host.startswith("/")


def conninfo_value(value):
    """Quote a libpq conninfo value (single quotes, backslash escapes)."""
    text = str(value)
    if text and re.match(r"^[A-Za-z0-9_.\-/:]+$", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def conninfo_string(params):
    return " ".join("{0}={1}".format(key, conninfo_value(value)) for key, value in params.items() if value is not None)


def passfile_line(endpoint, dbname=None):
    def esc(value):
        return str(value).replace("\\", "\\\\").replace(":", "\\:")

    return ":".join(esc(v) for v in (endpoint.host, endpoint.port, dbname or endpoint.dbname, endpoint.user, endpoint.password or ""))


class Passfile:
    """A mode-600 ``.pgpass`` in a private temporary folder, removed on close."""

    def __init__(self, endpoints):
        self.folder = tempfile.mkdtemp(prefix="fastier-cutover-")
        os.chmod(self.folder, 0o700)
        self.path = os.path.join(self.folder, "pgpass")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            for endpoint in endpoints:
                if endpoint.password:
                    handle.write(passfile_line(endpoint) + "\n")

    def env(self):
        env = dict(os.environ)
        for key in ("PGPASSWORD", "PGSERVICE", "PGOPTIONS"):
            env.pop(key, None)
        env["PGPASSFILE"] = self.path
        env["PGCONNECT_TIMEOUT"] = env.get("PGCONNECT_TIMEOUT", "10")
        return env

    def scratch(self, name):
        """A path in the private folder (dump files, stderr captures)."""
        return os.path.join(self.folder, name)

    def close(self):
        for root, dirs, files in os.walk(self.folder, topdown=False):
            for name in files:
                os.unlink(os.path.join(root, name))
            for name in dirs:
                os.rmdir(os.path.join(root, name))
        if os.path.isdir(self.folder):
            os.rmdir(self.folder)


def ident(*parts):
    """A (possibly qualified) identifier, quoted: ``ident('shop', 'orders')``."""
    return sql.Identifier(*parts)


def qualified(name):
    """``schema.table`` (already quoted by ``format('%I.%I')``) as SQL."""
    return sql.SQL(name)


def lsn_to_int(lsn):
    """'16/B374D848' -> integer byte position (None stays None)."""
    if lsn is None:
        return None
    high, low = str(lsn).split("/")
    return (int(high, 16) << 32) + int(low, 16)


def int_to_lsn(value):
    return "{0:X}/{1:X}".format(value >> 32, value & 0xFFFFFFFF)


def server_major(conn):
    return int(conn.info.server_version) // 10000


def scrub(text, secrets):
    """Remove every secret from a message (defence in depth for tool stderr)."""
    text = str(text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    return text
