# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Logical replication for the cut-over, and where its state lives.

Names derive from ``migration_id``: publication and slot on the source,
subscription on the target, all ``fastier_cutover_<id>``. The migration's
state is JSON in the publication's comment on the source, so a later call
(``phase: cutover`` after ``phase: sync``, or ``rollback``) finds it in the
database itself: there is no local state file to lose. After a successful
hand-over an empty publication (no tables, no slot, nothing retained) stays
as the record that this migration is done.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import time

from .conn import lsn_to_int, sql

PREFIX = "fastier_cutover_"
STATES = ("starting", "copying", "copied", "syncing", "fenced", "done", "rolled_back")


def object_name(migration_id):
    """``fastier_cutover_<id>``: lower-case letters, digits and ``_`` only (slot rules), at most 63."""
    cleaned = re.sub(r"[^a-z0-9_]+", "_", str(migration_id).lower()).strip("_") or "default"
    return (PREFIX + cleaned)[:63]


# -- state in the publication comment ------------------------------------------------------


def read_state(conn, name):
    """The state dict of migration ``name`` on the source, or None."""
    row = conn.execute("SELECT obj_description(oid, 'pg_publication') FROM pg_publication WHERE pubname = %s", (name,)).fetchone()
    if row is None:
        return None
    try:
        state = json.loads(row[0] or "{}")
    except ValueError:
        state = {}
    state.setdefault("state", "starting")
    return state


def write_state(conn, name, state):
    conn.execute(sql.SQL("COMMENT ON PUBLICATION {0} IS {1}").format(sql.Identifier(name), sql.Literal(json.dumps(state, sort_keys=True))))


def create_publication(conn, name, tables, all_tables, state):
    """FOR ALL TABLES (superuser) or FOR TABLE each of ``tables`` (their owner)."""
    if all_tables:
        conn.execute(sql.SQL("CREATE PUBLICATION {0} FOR ALL TABLES").format(sql.Identifier(name)))
    else:
        listed = sql.SQL(", ").join(sql.SQL(t) for t in tables)
        conn.execute(sql.SQL("CREATE PUBLICATION {0} FOR TABLE {1}").format(sql.Identifier(name), listed))
    write_state(conn, name, state)


def tombstone(conn, name, state):
    """Replace the publication by an empty one that only records ``state``."""
    with conn.transaction():
        conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {0}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE PUBLICATION {0}").format(sql.Identifier(name)))
        write_state(conn, name, state)


def drop_publication(conn, name):
    existed = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone() is not None
    if existed:
        conn.execute(sql.SQL("DROP PUBLICATION {0}").format(sql.Identifier(name)))
    return existed


# -- the slot -------------------------------------------------------------------------------


def create_slot(replication_conn, name):
    """Create the pgoutput slot and export its snapshot.

    Returns (consistent_lsn, snapshot_name). The snapshot stays importable
    while ``replication_conn`` is open and runs no other command.
    """
    row = replication_conn.execute('CREATE_REPLICATION_SLOT "{0}" LOGICAL pgoutput EXPORT_SNAPSHOT'.format(name)).fetchone()
    return row[1], row[2]


def create_slot_here(conn, name):
    """A pgoutput slot created with SQL (no exported snapshot): it streams what is committed from now on. Returns its LSN."""
    return conn.execute("SELECT lsn::text FROM pg_create_logical_replication_slot(%s, 'pgoutput')", (name,)).fetchone()[0]


def fallback_id(migration_id):
    """The migration id of a migration's fallback replication (target -> source after the hand-over)."""
    return "{0}_fallback".format(migration_id)


def slot_status(conn, name):
    """(exists, active_pid, confirmed_flush_lsn, current insert lsn, lag_bytes)."""
    row = conn.execute(
        "SELECT s.active_pid, s.confirmed_flush_lsn::text, pg_current_wal_insert_lsn()::text, "
        "pg_wal_lsn_diff(pg_current_wal_insert_lsn(), s.confirmed_flush_lsn)::bigint "
        "FROM pg_replication_slots s WHERE s.slot_name = %s",
        (name,),
    ).fetchone()
    if row is None:
        return None
    return {"active_pid": row[0], "confirmed_flush_lsn": row[1], "current_lsn": row[2], "lag_bytes": int(row[3]) if row[3] is not None else None}


def drop_slot(conn, name, timeout=30.0):
    """Drop the slot, ending the walsender that holds it if needed; True if it existed."""
    deadline = time.monotonic() + timeout
    while True:
        status = slot_status(conn, name)
        if status is None:
            return False
        if status["active_pid"]:
            conn.execute("SELECT pg_terminate_backend(%s)", (status["active_pid"],))
        try:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (name,))
            return True
        except Exception:  # pylint: disable=broad-except  # "is active": the walsender is going away
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# -- the subscription ------------------------------------------------------------------------


def subscription_exists(conn, name):
    return conn.execute("SELECT 1 FROM pg_subscription WHERE subname = %s", (name,)).fetchone() is not None


def create_subscription(conn, name, conninfo, same_major, target_major):
    """Stream changes from the slot (created earlier) into the copied tables."""
    options = ["copy_data = false", "create_slot = false", "slot_name = {0}".format(sql.Literal(name).as_string(conn)), "enabled = true", "streaming = on"]
    if same_major:
        options.append("binary = true")
    if target_major >= 15:
        options.append("disable_on_error = true")
    conn.execute(
        sql.SQL("CREATE SUBSCRIPTION {0} CONNECTION {1} PUBLICATION {0} WITH ({2})").format(
            sql.Identifier(name), sql.Literal(conninfo), sql.SQL(", ".join(options))
        )
    )


def subscription_health(conn, name, target_major):
    """(enabled, worker_pid, apply_error_count) of the subscription."""
    row = conn.execute(
        "SELECT s.subenabled, (SELECT st.pid FROM pg_stat_subscription st WHERE st.subid = s.oid AND st.relid IS NULL LIMIT 1) "
        "FROM pg_subscription s WHERE s.subname = %s",
        (name,),
    ).fetchone()
    if row is None:
        return None
    errors = 0
    if target_major >= 15:
        found = conn.execute("SELECT apply_error_count FROM pg_stat_subscription_stats WHERE subname = %s", (name,)).fetchone()
        errors = int(found[0]) if found else 0
    return {"enabled": bool(row[0]), "pid": row[1], "apply_errors": errors}


def set_synchronous_commit(conn, name, value):
    """The apply worker's commit mode (picked up without a restart).

    ``off`` (the default) while syncing: fast apply. ``on`` just before the
    fence: each applied commit is flushed at once, so the worker reports it
    in its next feedback and the slot's confirmed position reaches the fence
    LSN in milliseconds instead of up to a second later.
    """
    conn.execute(sql.SQL("ALTER SUBSCRIPTION {0} SET (synchronous_commit = {1})").format(sql.Identifier(name), sql.Literal(value)))


def drop_subscription(conn, name):
    """Detach from the slot first, so dropping never needs the source; True if it existed."""
    if not subscription_exists(conn, name):
        return False
    ident = sql.Identifier(name)
    conn.execute(sql.SQL("ALTER SUBSCRIPTION {0} DISABLE").format(ident))
    conn.execute(sql.SQL("ALTER SUBSCRIPTION {0} SET (slot_name = NONE)").format(ident))
    conn.execute(sql.SQL("DROP SUBSCRIPTION {0}").format(ident))
    return True


def reached(lsn, target_lsn):
    return lsn is not None and lsn_to_int(lsn) >= lsn_to_int(target_lsn)
