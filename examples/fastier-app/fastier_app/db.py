"""Database access: a few idle connections kept per worker, checked before use.

Sessions are short: a request takes a connection for its queries (one
transaction, committed at the end) and gives it back. Up to ``DB_POOL_SIZE``
(2) idle connections are kept per worker process for the next requests;
an idle one is checked with an empty query before it is used, so a session
the server ended (a restart, a failover, a cut-over's write fence) is
replaced instead of failing a request. Connections live at most
``DB_POOL_MAX_LIFETIME`` (1800 s) and idle at most ``DB_POOL_MAX_IDLE``
(120 s).

When no idle connection works, the request connects at once. There is no
background reconnection with back-off: an unreachable database fails a
request within ``DB_CONNECT_TIMEOUT`` (refused: at once) with the real
reason, and the first request after the database is back gets through. That
matters with gunicorn's sync workers, which a request waiting on a dead
database would hold.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from .config import ConfigError, DatabaseConfig, Settings

log = logging.getLogger(__name__)


class DatabaseUnavailable(Exception):
    """The database cannot serve this request; the message is safe to show."""

    def __init__(self, reason: str, *, read_only: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.read_only = read_only


def describe_error(exc: BaseException, config: DatabaseConfig) -> str:
    """A one-line reason without credentials."""
    if isinstance(exc, ConfigError):
        return str(exc)
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return "the database is read-only (maintenance)"
    text = str(exc).strip()
    if "password authentication failed" in text or getattr(exc, "sqlstate", None) in {"28P01", "28000"}:
        return "the database refused the credentials"
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"{type(exc).__name__}: {config.scrub(first)[:300]}"


@dataclass
class _Idle:
    conn: psycopg.Connection[Any]
    born: float
    used: float


class Database:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.config = DatabaseConfig(settings)
        self.pool_size = max(0, settings.number("DB_POOL_SIZE"))
        self.max_lifetime = settings.number("DB_POOL_MAX_LIFETIME")
        self.max_idle = settings.number("DB_POOL_MAX_IDLE")
        self._idle: list[_Idle] = []
        self._born: dict[int, float] = {}
        self._lock = threading.Lock()
        atexit.register(self.close)

    # -- connections -----------------------------------------------------------------
    def _connect(self, connect_timeout: float | None = None) -> psycopg.Connection[Any]:
        params = self.config.params()
        if connect_timeout is not None:
            params["connect_timeout"] = max(1, round(connect_timeout))
        try:
            conn = psycopg.connect(**params, row_factory=dict_row)
        except psycopg.OperationalError:
            self.config.connect_failed()  # a rotated secret is read again for the next attempt
            raise
        self._born[id(conn)] = time.monotonic()
        return conn

    def _discard(self, conn: psycopg.Connection[Any]) -> None:
        self._born.pop(id(conn), None)
        with suppress(Exception):
            conn.close()

    def _acquire(self, connect_timeout: float | None) -> psycopg.Connection[Any]:
        while True:
            with self._lock:
                idle = self._idle.pop() if self._idle else None
            if idle is None:
                return self._connect(connect_timeout)
            now = time.monotonic()
            if now - idle.born > self.max_lifetime or now - idle.used > self.max_idle:
                self._discard(idle.conn)
                continue
            try:
                idle.conn.autocommit = True
                idle.conn.execute("")
                idle.conn.autocommit = False
            except psycopg.Error:
                self._discard(idle.conn)  # ended by the server: take the next one
                continue
            return idle.conn

    def _release(self, conn: psycopg.Connection[Any]) -> None:
        born = self._born.get(id(conn))
        if conn.closed or born is None or conn.info.transaction_status != TransactionStatus.IDLE:
            self._discard(conn)
            return
        with self._lock:
            if len(self._idle) < self.pool_size:
                self._idle.append(_Idle(conn, born, time.monotonic()))
                return
        self._discard(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for item in idle:
            self._discard(item.conn)

    @contextmanager
    def connection(self, connect_timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A connection for one transaction: committed when the block ends, rolled back on error.

        Database failures come out as :class:`DatabaseUnavailable` (the web layer
        answers 503); SQL errors of the request's own making pass through.
        """
        try:
            conn = self._acquire(connect_timeout)
            try:
                yield conn
                conn.commit()
            except BaseException:
                with suppress(Exception):
                    conn.rollback()
                raise
            finally:
                self._release(conn)
        except (ConfigError, psycopg.OperationalError, psycopg.errors.ReadOnlySqlTransaction) as exc:
            reason = describe_error(exc, self.config)
            log.warning("database unavailable: %s", reason)
            raise DatabaseUnavailable(reason, read_only=isinstance(exc, psycopg.errors.ReadOnlySqlTransaction)) from None
