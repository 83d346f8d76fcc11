"""Configuration: the environment, an optional env file, and where the database is.

Everything comes from environment variables, so the same code runs on the
legacy server (an env file beside gunicorn) and on Elastic Beanstalk (option
settings become environment variables).

``FASTIER_ENV_FILE`` names a file of ``KEY=VALUE`` lines. It is read every
time settings are loaded (each gunicorn worker loads them once, when it
creates the app), and its values override the process environment. A
graceful reload (SIGHUP) starts new workers, which read the file again: that
is how the legacy app is repointed at another database without dropping a
request.

The database, first match wins:

1. ``DATABASE_URL`` (``postgresql://...`` or a libpq ``key=value`` string);
2. ``DATABASE_SECRET_ARN``: a Secrets Manager secret holding JSON with
   ``username`` and ``password`` (and optionally ``host``, ``port``,
   ``dbname``, which win over the environment); ``DB_HOST``, ``DB_PORT``,
   ``DB_NAME`` and ``DB_SSLMODE`` give what the secret does not. Without any
   host, a ``dbInstanceIdentifier`` in the secret (or ``DB_INSTANCE_IDENTIFIER``)
   is looked up with RDS ``DescribeDBInstances``. ``AWS_ENDPOINT_URL`` is
   honoured; the region is ``AWS_REGION``, ``AWS_DEFAULT_REGION`` or the
   ARN's;
3. libpq's ``PG*`` variables (``PGHOST``, ``PGPORT``, ``PGDATABASE``,
   ``PGUSER``, ``PGPASSWORD``, ...).

Nothing here ever puts a user name or a password into a message: the
address is ``host:port/dbname``, and :meth:`DatabaseConfig.scrub` removes
the credentials from any error text before it is shown or logged.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

APP_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_APPLICATION_NAME = "fastier-app"

# libpq environment variables and the connection keyword each one sets.
PG_ENV = {
    "PGHOST": "host",
    "PGHOSTADDR": "hostaddr",
    "PGPORT": "port",
    "PGDATABASE": "dbname",
    "PGUSER": "user",
    "PGPASSWORD": "password",
    "PGPASSFILE": "passfile",
    "PGSERVICE": "service",
    "PGOPTIONS": "options",
    "PGAPPNAME": "application_name",
    "PGSSLMODE": "sslmode",
    "PGSSLROOTCERT": "sslrootcert",
    "PGCONNECT_TIMEOUT": "connect_timeout",
    "PGTARGETSESSIONATTRS": "target_session_attrs",
}

# Where an environment variable names the Elastic Beanstalk environment (the
# bundle sets one of them; EB itself exports none).
EB_ENVIRONMENT_VARS = ("EB_ENVIRONMENT_NAME", "ELASTIC_BEANSTALK_ENVIRONMENT_NAME", "ELASTICBEANSTALK_ENVIRONMENT_NAME")

# Numeric settings and their defaults (checked when settings are loaded).
NUMBERS: dict[str, int | float] = {
    "DB_CONNECT_TIMEOUT": 5,
    "DB_HEALTH_TIMEOUT": 2.0,
    "DB_POOL_SIZE": 2,
    "DB_POOL_MAX_IDLE": 120.0,
    "DB_POOL_MAX_LIFETIME": 1800.0,
    "DB_SECRET_TTL": 300.0,
}

_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


class ConfigError(Exception):
    """A configuration problem, with a message safe to show (no credentials)."""


def parse_env_file(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines; ``#`` comments, blank lines and ``export`` are allowed.

    A value may be wrapped in single or double quotes (removed); nothing is
    expanded. A line that is not an assignment is an error naming its number.
    """
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ConfigError(f"line {number} is not KEY=VALUE")
        key, value = match.group(1), match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def read_version(env: Mapping[str, str]) -> str:
    if env.get("APP_VERSION"):
        return env["APP_VERSION"]
    try:
        return (APP_ROOT / "VERSION").read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def environment_name(env: Mapping[str, str]) -> str:
    for key in ("FASTIER_ENVIRONMENT", *EB_ENVIRONMENT_VARS):
        if env.get(key):
            return env[key]
    return "legacy"


@dataclass
class Settings:
    """The merged environment (process environment, then the env file)."""

    env: dict[str, str]
    env_file: str | None = None
    env_file_error: str | None = None
    problems: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        path = env.get("FASTIER_ENV_FILE") or None
        error = None
        if path:
            try:
                env.update(parse_env_file(Path(path).read_text()))
            except OSError as exc:
                error = f"cannot read env file {path}: {exc.strerror or exc}"
            except ConfigError as exc:
                error = f"env file {path}: {exc}"
        settings = cls(env=env, env_file=path, env_file_error=error)
        for key in NUMBERS:
            settings.number(key)  # a bad value is reported now, by /healthz, not at first use
        return settings

    def get(self, key: str, default: str | None = None) -> str | None:
        value = self.env.get(key)
        return value if value not in (None, "") else default

    def number(self, key: str) -> Any:
        """A numeric setting of :data:`NUMBERS`, as an int or float like its default.

        A bad value never stops a worker: the default is used and /healthz
        reports the problem.
        """
        default = NUMBERS[key]
        kind = type(default)
        value = self.get(key)
        if value is None:
            return default
        try:
            return kind(value)
        except ValueError:
            problem = f"{key}={value!r} is not {'an integer' if kind is int else 'a number'} (using {default})"
            if problem not in self.problems:
                self.problems.append(problem)
            return default

    @property
    def version(self) -> str:
        return read_version(self.env)

    @property
    def environment(self) -> str:
        return environment_name(self.env)


def _normalise_url(url: str) -> str:
    """SQLAlchemy-style ``postgresql+psycopg://`` -> ``postgresql://`` (libpq's)."""
    return re.sub(r"^postgres(?:ql)?\+[A-Za-z0-9_]+://", "postgresql://", url.strip())


def format_address(params: Mapping[str, Any]) -> str:
    """``host:port/dbname`` from connection keywords, never the user or password."""
    host = str(params.get("host") or params.get("hostaddr") or "(default socket)")
    port = str(params.get("port") or "5432")
    dbname = str(params.get("dbname") or "(default)")
    return f"{host}:{port}/{dbname}"


class DatabaseConfig:
    """Resolves connection keywords for psycopg from :class:`Settings`.

    ``params()`` is called for every new connection.
    A secret is cached for ``DB_SECRET_TTL`` seconds (300), and read again
    sooner when a connection fails (:meth:`connect_failed`): a rotated
    password is picked up without a restart.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._cached: dict[str, Any] | None = None
        self._cached_at = 0.0
        self._secrets: set[str] = set()
        if settings.get("DATABASE_URL"):
            self.source = "DATABASE_URL"
        elif settings.get("DATABASE_SECRET_ARN"):
            self.source = "DATABASE_SECRET_ARN"
        elif any(settings.get(key) for key in PG_ENV):
            self.source = "PG*"
        else:
            self.source = "libpq defaults"

    # -- connection keywords ----------------------------------------------------
    def _common(self) -> dict[str, Any]:
        return {
            "application_name": self.settings.get("DB_APPLICATION_NAME", DEFAULT_APPLICATION_NAME),
            "connect_timeout": self.settings.number("DB_CONNECT_TIMEOUT"),
        }

    def params(self) -> dict[str, Any]:
        """Keywords for ``psycopg.connect`` (includes the password: never log them)."""
        if self.settings.env_file_error:
            raise ConfigError(self.settings.env_file_error)
        if self.source == "DATABASE_URL":
            from psycopg.conninfo import conninfo_to_dict

            try:
                parsed = conninfo_to_dict(_normalise_url(self.settings.env["DATABASE_URL"]))
            except Exception as exc:  # psycopg.ProgrammingError; its text may quote the URL
                raise ConfigError("DATABASE_URL is not a valid PostgreSQL URL or conninfo string") from exc
            params = {**self._common(), **{k: v for k, v in parsed.items() if v is not None}}
        elif self.source == "DATABASE_SECRET_ARN":
            params = self._from_secret()
        else:
            params = self._common()
            for env_key, keyword in PG_ENV.items():
                value = self.settings.get(env_key)
                if value is not None:
                    params[keyword] = value
        for key in ("user", "password"):
            if params.get(key):
                self._secrets.add(str(params[key]))
        return params

    def _from_secret(self) -> dict[str, Any]:
        ttl = self.settings.number("DB_SECRET_TTL")
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached_at < ttl:
                return dict(self._cached)
            params = self._read_secret()
            self._cached, self._cached_at = params, time.monotonic()
            return dict(params)

    def _aws_client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        arn = self.settings.env["DATABASE_SECRET_ARN"]
        arn_parts = arn.split(":")
        region = self.settings.get("AWS_REGION") or self.settings.get("AWS_DEFAULT_REGION") or (arn_parts[3] if len(arn_parts) > 5 else None)
        session = boto3.session.Session(
            aws_access_key_id=self.settings.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=self.settings.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=self.settings.get("AWS_SESSION_TOKEN"),
            region_name=region,
        )
        endpoint = self.settings.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}") or self.settings.get("AWS_ENDPOINT_URL")
        config = Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"})
        return session.client(service, endpoint_url=endpoint, config=config)

    def _read_secret(self) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        arn = self.settings.env["DATABASE_SECRET_ARN"]
        name = arn.split(":secret:")[-1]
        try:
            value = self._aws_client("secretsmanager").get_secret_value(SecretId=arn)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise ConfigError(f"cannot read the database secret {name} ({code})") from exc
        except BotoCoreError as exc:
            raise ConfigError(f"cannot read the database secret {name} ({type(exc).__name__})") from exc
        try:
            secret = json.loads(value.get("SecretString") or "")
            user, password = secret["username"], secret["password"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"the database secret {name} is not JSON with 'username' and 'password'") from exc
        self._secrets.update(str(item) for item in (user, password) if item)
        params = self._common()
        params.update(user=user, password=password)
        host = secret.get("host") or self.settings.get("DB_HOST")
        port = secret.get("port") or self.settings.get("DB_PORT")
        dbname = secret.get("dbname") or self.settings.get("DB_NAME")
        if not host:
            identifier = secret.get("dbInstanceIdentifier") or self.settings.get("DB_INSTANCE_IDENTIFIER")
            if not identifier:
                raise ConfigError(f"no database host: set DB_HOST, or put 'host' or 'dbInstanceIdentifier' in the secret {name}")
            host, found_port = self._rds_endpoint(identifier)
            port = port or found_port
        params.update(host=host, port=str(port or 5432), dbname=dbname or "postgres")
        sslmode = self.settings.get("DB_SSLMODE")
        if sslmode:
            params["sslmode"] = sslmode
        return params

    def _rds_endpoint(self, identifier: str) -> tuple[str, int]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            found = self._aws_client("rds").describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
            endpoint = found[0]["Endpoint"]
            return endpoint["Address"], int(endpoint["Port"])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise ConfigError(f"cannot find the address of DB instance {identifier} ({code}); set DB_HOST") from exc
        except (BotoCoreError, KeyError, IndexError) as exc:
            raise ConfigError(f"cannot find the address of DB instance {identifier} ({type(exc).__name__}); set DB_HOST") from exc

    def connect_failed(self) -> None:
        """A connection with these parameters failed: re-read the secret next time.

        A rotated password (or a moved host) is picked up at the next attempt
        instead of after ``DB_SECRET_TTL``; at most one read per 2 seconds.
        """
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached_at > 2.0:
                self._cached = None

    # -- what may be shown ----------------------------------------------------------
    def address(self) -> str:
        """``host:port/dbname`` of the database (resolving the secret if needed)."""
        try:
            params = self.params()
        except ConfigError:
            params = {"host": self.settings.get("DB_HOST"), "port": self.settings.get("DB_PORT"), "dbname": self.settings.get("DB_NAME")}
        if self.source in ("PG*", "libpq defaults"):
            # libpq falls back to the process environment for what is not set.
            params = {**{kw: os.environ.get(key) for key, kw in PG_ENV.items() if os.environ.get(key)}, **params}
        return format_address(params)

    def scrub(self, text: str) -> str:
        """``text`` without any user name or password of this config."""
        if not self._secrets and self.source != "DATABASE_SECRET_ARN":
            with contextlib.suppress(ConfigError):
                self.params()
        for secret in sorted(self._secrets, key=len, reverse=True):
            if len(secret) >= 3:
                text = text.replace(secret, "***")
        return text


def hostname() -> str:
    return socket.gethostname()
