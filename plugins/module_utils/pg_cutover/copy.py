# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The parallel data copy: ``COPY ... TO STDOUT`` on the source streamed into
``COPY ... FROM STDIN`` on the target.

Each task is one table, or one ctid range of a big table (``split_bytes``),
largest first. A task runs two ``psql`` processes (C speed, no GIL) and a
thread relays the bytes between them in 1 MiB reads, which counts them for
progress and notices a dead side at once. Every source transaction imports
the same exported snapshot, so all tasks see the database as it was when the
replication slot was created. Generated columns are left out of the column
lists (the target computes them).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import subprocess
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from .conn import scrub
from .tools import psql_args

READ_SIZE = 1 << 20


class CopyError(Exception):
    """A COPY task failed; ``table`` names it."""

    def __init__(self, message, table=None):
        super(CopyError, self).__init__(message)
        self.table = table


def copy_columns(table):
    """The quoted column list COPY reads and writes (no generated columns)."""
    return ", ".join('"{0}"'.format(c["attname"].replace('"', '""')) for c in table["columns"] if not c["generated"])


def plan(tables, jobs, split_bytes):
    """COPY tasks, largest first; tables above ``split_bytes`` split by page ranges.

    A range is ``(first_page, end_page)``; the last range of a table is open
    (``end_page`` None), so pages added after the snapshot are still read
    (their rows are invisible to it, which is what we want).
    """
    tasks = []
    for table in sorted(tables, key=lambda t: (-int(t["bytes"] or 0), t["qname"])):
        pages = int(table.get("pages") or 0)
        size = int(table["bytes"] or 0)
        parts = 1
        if split_bytes and size > split_bytes and pages > 1:
            parts = min(max(2, -(-size // split_bytes)), max(2, jobs * 4), pages)
        if parts == 1:
            tasks.append({"table": table, "range": None, "est_bytes": size})
            continue
        step = -(-pages // parts)
        for index in range(parts):
            first = index * step
            last = None if index == parts - 1 else (index + 1) * step
            tasks.append({"table": table, "range": (first, last), "est_bytes": size // parts})
    tasks.sort(key=lambda t: -t["est_bytes"])
    return tasks


def ctid_condition(page_range):
    first, last = page_range
    cond = "ctid >= '({0},0)'::tid".format(int(first))
    if last is not None:
        cond += " AND ctid < '({0},0)'::tid".format(int(last))
    return cond


def source_sql(task, fmt, snapshot=None):
    table = task["table"]
    cols = copy_columns(table)
    if task["range"] is None:
        copy = "COPY {0} ({1}) TO STDOUT (FORMAT {2})".format(table["qname"], cols, fmt)
    else:
        copy = "COPY (SELECT {1} FROM ONLY {0} WHERE {3}) TO STDOUT (FORMAT {2})".format(table["qname"], cols, fmt, ctid_condition(task["range"]))  # noqa: S608 - identifiers quoted by the catalog (format('%I.%I'))
    if snapshot:
        return "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{0}'; {1}; COMMIT".format(snapshot, copy)
    return "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {0}; COMMIT".format(copy)


def target_sql(task, fmt):
    table = task["table"]
    return "SET synchronous_commit = off; COPY {0} ({1}) FROM STDIN (FORMAT {2})".format(table["qname"], copy_columns(table), fmt)


def describe(task):
    if task["range"] is None:
        return task["table"]["qname"]
    first, last = task["range"]
    return "{0} (pages {1}-{2})".format(task["table"]["qname"], first, "end" if last is None else last - 1)


class Copier:
    """Runs COPY tasks with ``jobs`` workers; ``run()`` raises ``CopyError``."""

    def __init__(self, bindir, source, target, env, scratch, *, jobs=4, fmt="binary", snapshot=None, log=None, hooks=None, secrets=(), progress_every=10.0):
        self.bindir = bindir
        self.scratch = scratch
        self.source = source
        self.target = target
        self.env = env
        self.jobs = max(1, int(jobs))
        self.fmt = fmt
        self.snapshot = snapshot
        self.log = log or (lambda message: None)
        self.hooks = hooks or {}
        self.secrets = secrets
        self.progress_every = progress_every
        self.bytes_done = 0
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._procs = set()

    # -- one task -------------------------------------------------------------------
    def _spawn(self, args, **kwargs):
        proc = subprocess.Popen(args, env=self.env, **kwargs)  # pylint: disable=consider-using-with
        with self._lock:
            self._procs.add(proc)
        return proc

    def _forget(self, *procs):
        with self._lock:
            for proc in procs:
                self._procs.discard(proc)

    def run_task(self, task, index):
        if self._cancel.is_set():
            raise CopyError("cancelled", task["table"]["qname"])
        errs = [os.path.join(self.scratch, "copy-{0}-{1}.err".format(index, side)) for side in ("src", "dst")]
        started = time.monotonic()
        copied = 0
        with open(errs[0], "w+") as src_err, open(errs[1], "w+") as dst_err:
            src = self._spawn(psql_args(self.bindir, self.source, source_sql(task, self.fmt, self.snapshot)), stdout=subprocess.PIPE, stderr=src_err)
            dst = self._spawn(psql_args(self.bindir, self.target, target_sql(task, self.fmt)), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=dst_err)
            broken = False
            try:
                in_fd = src.stdout.fileno()
                out_fd = dst.stdin.fileno()
                while True:
                    data = os.read(in_fd, READ_SIZE)
                    if not data:
                        break
                    view = memoryview(data)
                    while view:
                        written = os.write(out_fd, view)
                        view = view[written:]
                    copied += len(data)
                    with self._lock:
                        self.bytes_done += len(data)
            except (BrokenPipeError, OSError):
                broken = True
            finally:
                for stream in (dst.stdin, src.stdout):
                    with contextlib.suppress(OSError):
                        stream.close()
            if broken:
                src.kill()
            src_rc = src.wait()
            dst_rc = dst.wait()
            self._forget(src, dst)
            if src_rc != 0 or dst_rc != 0 or broken:
                src_err.seek(0)
                dst_err.seek(0)
                detail = []
                for side, handle, rc in (("target", dst_err, dst_rc), ("source", src_err, src_rc)):
                    text = " ".join(handle.read().strip().split())
                    if text:
                        detail.append("{0}: {1}".format(side, text[-400:]))
                    elif rc not in (0, None) and rc > 0:
                        detail.append("{0}: psql exit {1}".format(side, rc))
                if self._cancel.is_set() and not detail:
                    raise CopyError("cancelled", task["table"]["qname"])
                raise CopyError(
                    scrub("COPY {0} failed: {1}".format(describe(task), "; ".join(detail) or "the relay broke"), self.secrets), task["table"]["qname"]
                )
        for path in errs:
            os.unlink(path)
        return {"bytes": copied, "seconds": time.monotonic() - started}

    # -- all tasks ---------------------------------------------------------------------
    def cancel(self):
        self._cancel.set()
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            with contextlib.suppress(OSError):
                proc.kill()

    def run(self, tasks, what="copy"):
        """Run every task; returns {qname: {"bytes", "seconds"}} per table."""
        remaining = {}
        for task in tasks:
            remaining[task["table"]["qname"]] = remaining.get(task["table"]["qname"], 0) + 1
        tables_total = len(remaining)
        per_table = dict((name, {"bytes": 0, "seconds": 0.0}) for name in remaining)
        total_est = sum(t["est_bytes"] for t in tasks) or 1
        started = time.monotonic()
        last_log = started
        done_tables = 0
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="cutover-copy")
        try:
            futures = dict((pool.submit(self.run_task, task, index), task) for index, task in enumerate(tasks))
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in finished:
                    task = futures[future]
                    name = task["table"]["qname"]
                    error = future.exception()
                    if error is not None:
                        self.cancel()
                        raise error if isinstance(error, CopyError) else CopyError("COPY {0} failed: {1}".format(describe(task), error), name)
                    result = future.result()
                    per_table[name]["bytes"] += result["bytes"]
                    per_table[name]["seconds"] = max(per_table[name]["seconds"], result["seconds"])
                    remaining[name] -= 1
                    if remaining[name] == 0:
                        done_tables += 1
                        hook = self.hooks.get("table_copied")
                        if hook:
                            hook(name)
                now = time.monotonic()
                if now - last_log >= self.progress_every and pending:
                    last_log = now
                    self.log(self._line(what, done_tables, tables_total, now - started, total_est))
            self.log(self._line(what, done_tables, tables_total, time.monotonic() - started, total_est))
        finally:
            if self._cancel.is_set():
                self.cancel()
            pool.shutdown(wait=True)
        return per_table

    def _line(self, what, done, total, elapsed, total_est):
        mb = self.bytes_done / 1e6
        rate = mb / elapsed if elapsed > 0 else 0.0
        return "{0}: {1}/{2} tables, {3:.1f} MB of ~{4:.1f} MB, {5:.1f} MB/s".format(what, done, total, mb, total_est / 1e6, rate)


def sample_rate(bindir, source, env, table, sample_bytes, *, fmt="binary", timeout=120):
    """Read about ``sample_bytes`` of ``table`` with COPY and discard them: (bytes, seconds, row limit).

    What the rehearsal measures: the source side of the copy path (psql,
    COPY, the network), nothing written anywhere.
    """
    est_rows = int(table.get("est_rows") or 0)
    size = int(table.get("bytes") or 0)
    row_bytes = float(size) / est_rows if est_rows > 0 else 200.0
    limit = max(1000, int(sample_bytes / max(row_bytes, 1.0)))
    command = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; COPY (SELECT {0} FROM ONLY {1} LIMIT {2}) TO STDOUT (FORMAT {3}); COMMIT".format(  # noqa: S608 - identifiers quoted by the catalog (format('%I.%I'))
        copy_columns(table) or "*", table["qname"], limit, fmt
    )
    started = time.monotonic()
    proc = subprocess.Popen(psql_args(bindir, source, command), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # pylint: disable=consider-using-with
    total = 0
    try:
        while True:
            data = os.read(proc.stdout.fileno(), READ_SIZE)
            if not data:
                break
            total += len(data)
            if time.monotonic() - started > timeout:
                proc.kill()
                break
    finally:
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
        proc.wait()
    if proc.returncode not in (0, -9):
        raise CopyError("sampling {0} failed: {1}".format(table["qname"], err.decode("utf-8", "replace").strip()[-300:]), table["qname"])
    return total, max(time.monotonic() - started, 1e-6), limit
