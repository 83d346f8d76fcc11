"""Schema migrations: numbered SQL files applied in order, each in its own transaction.

``migrations/NNNN_name.sql`` beside the package (``FASTIER_MIGRATIONS_DIR``
overrides). Applied versions are recorded in ``schema_migrations`` with the
file's SHA-256: a file changed after it was applied is refused, not run
again. Runs are serialised by a session advisory lock, so two hosts
migrating at once (two new Beanstalk instances) apply each file once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from .config import APP_ROOT

# pg_advisory_lock key of the migration runner ("fastier" in ASCII).
LOCK_KEY = 0x66617374696572
_NAME = re.compile(r"^(\d+)_([A-Za-z0-9_\-]+)\.sql$")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL
)
"""


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def migrations_dir() -> Path:
    return Path(os.environ.get("FASTIER_MIGRATIONS_DIR") or APP_ROOT / "migrations")


def discover(directory: Path | None = None) -> list[Migration]:
    directory = directory or migrations_dir()
    found: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        version = match.group(1)
        if version in found:
            raise MigrationError(f"two migrations numbered {version}: {found[version].path.name} and {path.name}")
        found[version] = Migration(version, match.group(2), path)
    return [found[key] for key in sorted(found, key=int)]


def applied_versions(conn: psycopg.Connection[Any]) -> dict[str, str] | None:
    """version -> checksum of what is applied; None when the table does not exist."""
    cur = conn.cursor(row_factory=tuple_row)  # callers may use any row factory
    exists = cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    return {row[0]: row[1] for row in cur.execute("SELECT version, checksum FROM schema_migrations")}


def pending(conn: psycopg.Connection[Any], migrations: list[Migration]) -> list[Migration]:
    applied = applied_versions(conn) or {}
    return [m for m in migrations if m.version not in applied]


def _acquire_lock(conn: psycopg.Connection[Any], timeout: float, say: Callable[[str], None]) -> None:
    deadline = time.monotonic() + timeout
    told = False
    while True:
        row = conn.cursor(row_factory=tuple_row).execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
        if row and row[0]:
            return
        if not told:
            say("another migration run holds the lock; waiting")
            told = True
        if time.monotonic() >= deadline:
            raise MigrationError(f"another migration run held the lock for more than {timeout:.0f}s")
        time.sleep(0.2)


def migrate(conn: psycopg.Connection[Any], *, lock_timeout: float = 60.0, say: Callable[[str], None] = print) -> list[str]:
    """Apply what is pending on an autocommit connection; returns the applied versions."""
    if not conn.autocommit:
        raise MigrationError("migrate() needs an autocommit connection (each file gets its own transaction)")
    migrations = discover()
    _acquire_lock(conn, lock_timeout, say)
    try:
        conn.execute(CREATE_TABLE)
        applied = applied_versions(conn) or {}
        known = {m.version for m in migrations}
        for migration in migrations:
            if migration.version in applied and applied[migration.version] != migration.checksum:
                raise MigrationError(f"migration {migration.path.name} was changed after it was applied; add a new migration instead of editing an applied one")
        unknown = sorted(set(applied) - known, key=int)
        if unknown:
            say(f"warning: the database has migrations this code does not know: {', '.join(unknown)} (newer code ran here?)")
        done: list[str] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            started = time.monotonic()
            try:
                with conn.transaction():
                    conn.execute(migration.sql)
                    elapsed_ms = int((time.monotonic() - started) * 1000)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum, duration_ms) VALUES (%s, %s, %s, %s)",
                        (migration.version, migration.name, migration.checksum, elapsed_ms),
                    )
            except psycopg.Error as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise MigrationError(f"migration {migration.path.name} failed and was rolled back: {first}") from exc
            say(f"applied {migration.version}_{migration.name} ({elapsed_ms} ms)")
            done.append(migration.version)
        if not done:
            say(f"nothing to apply: all {len(migrations)} migrations are applied")
        else:
            say(f"applied {len(done)} migration(s); {len(migrations)} in total")
        return done
    finally:
        if not conn.closed:
            with contextlib.suppress(psycopg.Error):  # the session is gone, and its lock with it
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
