# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The write fence on the source, and lifting it.

Fence, in this order (each step optional):

1. ``commands``: programs run where the module runs (e.g. stop the app's
   workers: ``systemctl stop fastier-app``), argv split like a shell would,
   no shell; a non-zero exit stops the fence (and lifts what was done);
2. ``sql``: statements run on the source database (e.g. ``REVOKE CONNECT``);
3. ``read_only``: ``ALTER DATABASE <db> SET default_transaction_read_only =
   on``: every new session of the database is read-only;
4. ``terminate_sessions``: every client session of the database that started
   before step 3 is ended (``pg_terminate_backend`` waits for it to exit), so
   no transaction that could still write is left. Sessions opened after step
   3 are read-only and stay (until an unfence, which ends them: a connection
   pool would otherwise keep read-only sessions after the fence is lifted).

The fence LSN is then ``pg_current_wal_insert_lsn()``: every committed write
is before it. Unfence runs the reverse: the database setting restored to
what it was, ``unfence.sql``, then ``unfence.commands``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex
import subprocess
import time

from .catalog import database_read_only_setting
from .conn import sql


class FenceError(Exception):
    pass


def run_commands(commands, run_command, what):
    for command in commands or []:
        args = shlex.split(command)
        rc, out, err = run_command(args)
        if rc != 0:
            detail = (err or out or "").strip().splitlines()
            raise FenceError("{0} command {1!r} failed (exit {2}): {3}".format(what, command, rc, " | ".join(detail[-3:])))


def subprocess_run_command(args):
    """run_command for use outside a module (tests, the bench)."""
    proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def set_read_only(conn, dbname, value):
    """ALTER DATABASE SET/RESET default_transaction_read_only (value None = RESET)."""
    db = sql.Identifier(dbname)
    if value is None:
        conn.execute(sql.SQL("ALTER DATABASE {0} RESET default_transaction_read_only").format(db))
    else:
        conn.execute(sql.SQL("ALTER DATABASE {0} SET default_transaction_read_only = {1}").format(db, sql.Literal(value)))


def terminate_sessions(conn, keep_pids, before, since=None, timeout_s=10.0):
    """End client sessions of this database that started before ``before`` (and
    at or after ``since``, when given); returns how many.

    All are signalled at once, then polled every few milliseconds until they
    are gone from pg_stat_activity: a backend leaves it only after its
    transaction has ended (a commit in progress completes first), so once the
    list is empty no write of those sessions can follow. Sessions that start
    later are not affected, so a reconnecting client cannot keep this busy.
    """
    query = (
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' "
        "AND pid <> pg_backend_pid() AND NOT (pid = ANY(%s)) AND backend_start < %s::timestamptz"
    )
    args = [list(keep_pids), before]
    if since is not None:
        query += " AND backend_start >= %s::timestamptz"
        args.append(since)
    pids = [r[0] for r in conn.execute(query, args)]
    if not pids:
        return 0
    conn.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
    deadline = time.monotonic() + timeout_s
    while True:
        left = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))]
        if not left:
            return len(pids)
        if time.monotonic() > deadline:
            raise FenceError("{0} session(s) of the source database did not end within {1:.0f}s (pids {2})".format(len(left), timeout_s, left[:10]))
        time.sleep(0.005)


class Fence:
    """Stops writes on the source (``apply``) and restores them (``lift``)."""

    def __init__(self, conn, dbname, spec, unfence_spec, *, run_command, log, keep_pids=()):
        self.conn = conn
        self.dbname = dbname
        self.spec = spec or {}
        self.unfence_spec = unfence_spec or {}
        self.run_command = run_command
        self.log = log
        self.keep_pids = set(keep_pids)
        self.previous = None  # the database's own default_transaction_read_only before the fence
        self.read_only_set = False
        self.read_only_at = None  # server time just before the database turned read-only
        self.commands_run = False
        self.terminated = 0

    def record(self):
        """What a later call needs to lift this fence (kept in the migration state)."""
        return {"read_only_set": self.read_only_set, "read_only_at": self.read_only_at, "previous": self.previous, "commands_run": self.commands_run}

    @classmethod
    def from_record(cls, conn, dbname, record, *, spec, unfence_spec, run_command, log):
        fence = cls(conn, dbname, spec, unfence_spec, run_command=run_command, log=log)
        fence.read_only_set = bool(record.get("read_only_set"))
        fence.previous = record.get("previous")
        fence.read_only_at = record.get("read_only_at")
        fence.commands_run = bool(record.get("commands_run"))
        return fence

    def apply(self, on_step=None):
        """Fence; returns the fence LSN (every committed write is before it)."""
        self.previous = database_read_only_setting(self.conn)
        if self.spec.get("commands"):
            self.commands_run = True
            run_commands(self.spec.get("commands"), self.run_command, "fence")
        for statement in self.spec.get("sql") or []:
            self.conn.execute(statement)
        if self.spec.get("read_only", True):
            self.read_only_at = self.conn.execute("SELECT clock_timestamp()::text").fetchone()[0]
            set_read_only(self.conn, self.dbname, "on")
            self.read_only_set = True
            if on_step:
                on_step(self.record())
        if self.spec.get("terminate_sessions", True):
            before = self.conn.execute("SELECT clock_timestamp()").fetchone()[0]
            self.terminated = terminate_sessions(self.conn, self.keep_pids, before=before)
        return self.conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]

    def lift(self):
        """Restore writes; returns the errors met (each step is tried)."""
        errors = []
        if self.read_only_set:
            try:
                set_read_only(self.conn, self.dbname, None if self.previous is None else self.previous)
                self.read_only_set = False
                # Sessions opened during the fence were born read-only and would
                # stay so (connection pools keep them): end them, clients reconnect.
                if self.read_only_at and self.spec.get("terminate_sessions", True):
                    now = self.conn.execute("SELECT clock_timestamp()::text").fetchone()[0]
                    ended = terminate_sessions(self.conn, self.keep_pids, before=now, since=self.read_only_at)
                    if ended:
                        self.log("unfence: ended {0} session(s) opened read-only during the fence".format(ended))
            except Exception as err:  # pylint: disable=broad-except
                errors.append("restoring default_transaction_read_only: {0}".format(err))
        for statement in self.unfence_spec.get("sql") or []:
            try:
                self.conn.execute(statement)
            except Exception as err:  # pylint: disable=broad-except
                errors.append("unfence sql {0!r}: {1}".format(statement, err))
        if self.commands_run or self.unfence_spec.get("commands"):
            try:
                run_commands(self.unfence_spec.get("commands"), self.run_command, "unfence")
            except FenceError as err:
                errors.append(str(err))
        return errors
