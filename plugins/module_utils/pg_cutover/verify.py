# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Verification: every table's row count and an order-independent checksum,
computed with the same expression on both servers, in parallel.

The checksum is the sum (as numeric, no overflow) of a 64-bit hash per row,
so it does not depend on physical order and a big table can be summed in
ctid ranges by several workers. With both servers on PostgreSQL 14 or later
the row hash is ``hash_record_extended(ROW(...), 0)``: the built-in hash of
each column's type (stable across versions: hash partitioning relies on it),
several times faster than hashing text. Columns whose hash would not match
across servers (enums and reg* types hash OIDs; types without a hash
function) enter as text. Older servers use the first 64 bits of
``md5(ROW(...)::text)``. Both sides run with the same session settings
(``conn.STABLE_SESSION``) so text renders the same.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

from .conn import STABLE_SESSION, sql
from .copy import ctid_condition

# Built-in types whose extended hash depends only on the value.
HASH_SAFE_TYPES = frozenset(
    [
        "bool", "char", "name", "int2", "int4", "int8", "oid", "float4", "float8", "numeric",
        "text", "varchar", "bpchar", "bytea", "date", "time", "timetz", "timestamp", "timestamptz",
        "interval", "uuid", "jsonb", "inet", "cidr", "macaddr", "macaddr8",
    ]
)  # fmt: skip


class VerifyError(Exception):
    pass


def quote_column(name):
    return '"{0}"'.format(name.replace('"', '""'))


def column_expression(column):
    name = "t." + quote_column(column["attname"])
    if column["typtype"] == "b" and column["builtin"] and column["typname"] in HASH_SAFE_TYPES:
        return name
    if column["typcategory"] == "A" and column["elem_builtin"] and column["elem_typname"] in HASH_SAFE_TYPES:
        return name
    return name + "::text"


def row_hash_expression(table, algorithm="hash"):
    """The per-row 64-bit hash of ``table`` (alias ``t``)."""
    exprs = [column_expression(c) for c in table["columns"]]
    if not exprs:
        return "0::bigint"
    if algorithm == "hash":
        return "hash_record_extended(ROW({0}), 0)".format(", ".join(exprs))
    return "('x' || substr(md5(ROW({0})::text), 1, 16))::bit(64)::bigint".format(", ".join(exprs))


def table_query(table, mode, algorithm, page_range=None):
    where = " WHERE " + ctid_condition(page_range) if page_range else ""
    if mode == "counts":
        return "SELECT count(*), NULL FROM ONLY {0} AS t{1}".format(table["qname"], where)  # noqa: S608 - identifiers quoted by the catalog (format('%I.%I'))
    return "SELECT count(*), coalesce(sum({0}), 0)::text FROM ONLY {1} AS t{2}".format(row_hash_expression(table, algorithm), table["qname"], where)  # noqa: S608 - identifiers quoted by the catalog (format('%I.%I'))


def ranges(pages, chunk_pages):
    """Page ranges covering a table (the last one open), for parallel sums."""
    if not chunk_pages or pages <= chunk_pages:
        return [None]
    out = []
    first = 0
    while first + chunk_pages < pages:
        out.append((first, first + chunk_pages))
        first += chunk_pages
    out.append((first, None))
    return out


def same_columns(source_table, target_table):
    def shape(table):
        return [(c["attname"], c["type"]) for c in table["columns"]]

    return shape(source_table) == shape(target_table)


class Verifier:
    """Compares tables of two endpoints with ``jobs`` workers per side."""

    def __init__(self, source, target, *, jobs=4, mode="checksums", algorithm="hash", chunk_pages=16384, statement_timeout_s=None, snapshots=None):
        self.source = source
        self.target = target
        self.jobs = max(1, int(jobs))
        self.mode = mode
        self.algorithm = algorithm
        self.chunk_pages = chunk_pages
        self.statement_timeout_s = statement_timeout_s
        # {"source": id, "target": id}: exported snapshots every query imports
        # (verification at a consistent point while writes go on).
        self.snapshots = snapshots or {}
        self._local = threading.local()
        self._conns = []
        self._lock = threading.Lock()

    def _conn(self, side):
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        if side not in conns:
            endpoint = self.source if side == "source" else self.target
            conn = endpoint.connect(autocommit=True)
            conn.execute(STABLE_SESSION)
            if self.statement_timeout_s:
                conn.execute("SET statement_timeout = {0}".format(int(self.statement_timeout_s * 1000)))
            conns[side] = conn
            with self._lock:
                self._conns.append(conn)
        return conns[side]

    def _sum(self, side, table, page_range):
        conn = self._conn(side)
        query = table_query(table, self.mode, self.algorithm, page_range)
        snapshot = self.snapshots.get(side)
        if snapshot:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {0}").format(sql.Literal(snapshot)))
                row = conn.execute(query).fetchone()
            finally:
                conn.execute("ROLLBACK")
        else:
            row = conn.execute(query).fetchone()
        return int(row[0]), (int(row[1]) if row[1] is not None else None)

    def close(self):
        for conn in self._conns:
            with contextlib.suppress(Exception):
                conn.close()

    def run(self, source_tables, target_tables):
        """[{name, rows, bytes, source_rows, target_rows, source_checksum, target_checksum, verified, reason}]."""
        targets = dict((t["qname"], t) for t in target_tables)
        work = []
        results = {}
        for table in source_tables:
            name = table["qname"]
            entry = {
                "name": name,
                "bytes": int(table["bytes"] or 0),
                "source_rows": 0,
                "target_rows": 0,
                "source_checksum": None,
                "target_checksum": None,
                "verified": False,
                "reason": None,
            }
            results[name] = entry
            other = targets.get(name)
            if other is None:
                entry["reason"] = "missing on the target"
                continue
            if self.mode == "checksums" and not same_columns(table, other):
                entry["reason"] = "columns differ between source and target"
                continue
            for page_range in ranges(int(table.get("pages") or 0), self.chunk_pages):
                work.append(("source", table, page_range))
            for page_range in ranges(int(other.get("pages") or 0), self.chunk_pages):
                work.append(("target", table, page_range))
        # Largest first so the long sums start early.
        work.sort(key=lambda w: -int(w[1]["bytes"] or 0))
        pool = ThreadPoolExecutor(max_workers=self.jobs * 2, thread_name_prefix="cutover-verify")
        try:
            futures = [(pool.submit(self._sum, side, table, page_range), side, table["qname"]) for side, table, page_range in work]
            for future, side, name in futures:
                rows, checksum = future.result()
                entry = results[name]
                entry[side + "_rows"] += rows
                if checksum is not None:
                    entry[side + "_checksum"] = (entry[side + "_checksum"] or 0) + checksum
        finally:
            pool.shutdown(wait=True)
            self.close()
        out = []
        for table in source_tables:
            entry = results[table["qname"]]
            if entry["reason"] is None:
                if entry["source_rows"] != entry["target_rows"]:
                    entry["reason"] = "row count differs: source {0}, target {1}".format(entry["source_rows"], entry["target_rows"])
                elif entry["source_checksum"] != entry["target_checksum"]:
                    entry["reason"] = "checksum differs with the same row count ({0} rows)".format(entry["source_rows"])
                else:
                    entry["verified"] = True
            for key in ("source_checksum", "target_checksum"):
                if entry[key] is not None:
                    entry[key] = str(entry[key])
            entry["rows"] = entry["target_rows"]
            out.append(entry)
        return out
