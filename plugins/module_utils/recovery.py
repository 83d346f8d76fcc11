# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Is a restored database what the live one was at the recovery point?

Used by ``pg_recovery_check`` (restores and disaster-recovery drills). For
each key table: its rows in the restored copy, the rows the live database
holds up to the recovery point (by the table's timestamp column), rows in the
copy that are newer than the recovery point (there must be none), and the
newest timestamp the copy holds. The canary: the newest marker written on the
live database before the recovery point must be in the copy. The recovery
point objective actually achieved is the reference time (when the disaster
is declared: the drill's start) minus the newest data the copy holds.

Counts "as of the recovery point" assume rows are not deleted afterwards (an
order, a page view, a canary). A row's timestamp is usually when its
transaction started, not when it committed, so rows stamped within
``boundary_s`` of the recovery point are left out of the comparison (they may
or may not be in the copy, both correctly).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from .pg_cutover.conn import sql


def parse_time(value):
    """An ISO 8601 time (``Z`` or an offset; naive means UTC) as an aware datetime."""
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        text = str(value).strip().replace(" ", "T")
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def iso(moment):
    return None if moment is None else moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def qualified(name):
    """``schema.table`` (or ``table``) as a quoted identifier."""
    parts = [p for p in str(name).split(".") if p]
    if not 1 <= len(parts) <= 2:
        raise ValueError("table {0!r}: expected table or schema.table".format(name))
    return sql.Identifier(*parts)


def _scalar(conn, query, params=()):
    return conn.execute(query, params).fetchone()[0]


def count(conn, table, column=None, until=None, after=None):
    query = sql.SQL("SELECT count(*) FROM {0}").format(qualified(table))
    params = ()
    if column is not None and until is not None:
        query = sql.SQL("SELECT count(*) FROM {0} WHERE {1} <= %s").format(qualified(table), sql.Identifier(column))
        params = (until,)
    elif column is not None and after is not None:
        query = sql.SQL("SELECT count(*) FROM {0} WHERE {1} > %s").format(qualified(table), sql.Identifier(column))
        params = (after,)
    return int(_scalar(conn, query, params))


def newest(conn, table, column, until=None):
    if until is None:
        query = sql.SQL("SELECT max({1}) FROM {0}").format(qualified(table), sql.Identifier(column))
        value = _scalar(conn, query)
    else:
        query = sql.SQL("SELECT max({1}) FROM {0} WHERE {1} <= %s").format(qualified(table), sql.Identifier(column))
        value = _scalar(conn, query, (until,))
    return None if value is None else parse_time(value)


def check_table(restored, live, spec, recovery_time, boundary):
    name, column = spec["name"], spec.get("timestamp_column")
    entry = {"name": name, "restored_rows": count(restored, name), "problems": []}
    if column:
        entry["restored_newest"] = iso(newest(restored, name, column))
        entry["restored_after_recovery_point"] = count(restored, name, column, after=recovery_time + boundary)
        if entry["restored_after_recovery_point"]:
            entry["problems"].append(
                "{0} row(s) newer than the recovery point {1}: the copy is not of that point".format(entry["restored_after_recovery_point"], iso(recovery_time))
            )
    if live is not None:
        if column:
            settled = recovery_time - boundary
            have = count(restored, name, column, until=settled)
            expected = entry["live_rows_at_recovery_point"] = count(live, name, column, until=settled)
            what = "the live database held up to the recovery point"
        else:
            have = entry["restored_rows"]
            expected = entry["live_rows_now"] = count(live, name)
            what = "the live database holds now (no timestamp column to compare as of the point)"
        if have != expected:
            entry["problems"].append("{0}: {1} row(s) restored, {2} {3}".format(name, have, expected, what))
    entry["verified"] = not entry["problems"]
    return entry


def check_canary(restored, live, canary, recovery_time):
    table, column = canary["table"], canary.get("column") or "written_at"
    found = newest(restored, table, column)
    out = {"table": table, "restored_newest": iso(found), "problems": []}
    if live is not None:
        expected = newest(live, table, column, until=recovery_time)
        out["live_newest_before_recovery_point"] = iso(expected)
        if expected is None:
            out["problems"].append("no canary was written on the live database before the recovery point")
        elif found is None or found < expected:
            out["problems"].append("the canary of {0} is missing from the copy (newest there: {1})".format(iso(expected), iso(found)))
    elif found is None:
        out["problems"].append("no canary row in the copy")
    out["verified"] = not out["problems"]
    return out, found


def check(restored, live, recovery_time, key_tables, *, canary=None, reference_time=None, boundary_s=2.0):
    """The verdict (a dict) on ``restored`` against ``live`` (or None) at ``recovery_time``."""
    recovery_time = parse_time(recovery_time)
    reference_time = parse_time(reference_time) if reference_time else datetime.datetime.now(datetime.timezone.utc)
    boundary = datetime.timedelta(seconds=float(boundary_s))
    tables = [check_table(restored, live, spec, recovery_time, boundary) for spec in key_tables]
    stamps = [parse_time(t["restored_newest"]) for t in tables if t.get("restored_newest")]
    canary_out = None
    if canary:
        canary_out, found = check_canary(restored, live, canary, recovery_time)
        if found is not None:
            stamps.append(found)
    newest_data = max(stamps) if stamps else None
    problems = [p for t in tables for p in t["problems"]] + (canary_out["problems"] if canary_out else [])
    return {
        "verified": not problems,
        "problems": problems,
        "recovery_time": iso(recovery_time),
        "reference_time": iso(reference_time),
        "newest_data": iso(newest_data),
        "rpo_s": round((reference_time - newest_data).total_seconds(), 3) if newest_data is not None else None,
        "tables": tables,
        "canary": canary_out,
    }
