# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The cut-over: phases, failure handling, rehearsal and the report.

``Cutover(params, log=..., run_command=..., hooks=..., check_mode=...).run()``
returns the result dict or raises ``CutoverFailed`` (whose ``result`` goes
into ``fail_json``). ``hooks`` is the test seam: callables the engine calls at
fixed points (``table_copied(name)``, ``after_subscribe(engine)``,
``before_fence(engine)``, ``after_fence(engine)``, ``before_verify(engine)``) so tests can kill a server,
pause replication or corrupt a row at a precise moment. The module never
passes hooks.

``logical`` (per phase of the migration state, see ``replication``)::

    preflight -> snapshot (publication, slot, exported snapshot)
      -> schema (roles, pg_dump pre-data) -> copy (parallel COPY in the snapshot)
      -> indexes (pg_restore -j post-data, matviews)           [state: copied]
      -> subscribe -> sync (lag < max_lag_bytes)                [state: syncing]
      -> fence -> catchup (slot reaches the fence LSN) -> sequences
      -> large_objects -> unlogged -> verify -> handover        [state: done]

``dump_restore``: preflight -> fence -> schema -> copy -> indexes ->
sequences -> large_objects -> verify -> handover.

Before the fence a failure removes the replication objects and leaves the
source untouched (the target keeps a partial copy: recreate it). After the
fence a failure lifts the fence first: the source is the database of record
again and no committed write was lost (the source kept every one).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import datetime
import json
import os
import time

from ..common import Deadline, WaitTimeout
from . import catalog, preflight, replication, tools
from .conn import STABLE_SESSION, Endpoint, Passfile, lsn_to_int, psycopg, scrub, server_major, sql
from .copy import Copier, CopyError, plan, sample_rate
from .fence import Fence, FenceError, run_commands, subprocess_run_command
from .tools import ToolError
from .verify import Verifier, row_hash_expression

DEFAULTS = {
    "method": None,
    "jobs": 4,
    "max_lag_bytes": 16 * 1024 * 1024,
    "sync_timeout_s": 3600,
    "fence_timeout_s": 60,
    "fence": None,
    "unfence": None,
    "handover": None,
    "fallback": False,
    "verify": "checksums",
    "verify_point": "fence",
    "phase": "all",
    "migration_id": None,
    "roles": "create",
    "report_path": None,
    "pg_bin_dir": None,
    "split_tables_larger_than_mb": 256,
    "target_free_mb": None,
    "sample_mb": 64,
}

FENCE_DEFAULTS = {"read_only": True, "terminate_sessions": True, "sql": [], "commands": []}


class CutoverFailed(Exception):
    """The cut-over stopped; ``phase``, ``cause`` and ``advice`` say where, why and what to do."""

    def __init__(self, phase, cause, advice, result=None):
        self.phase = phase
        self.cause = cause
        self.advice = advice
        self.result = result or {}
        super(CutoverFailed, self).__init__("cut-over failed in phase '{0}': {1}. {2}".format(phase, cause, advice).strip())


class _Abort(Exception):
    """Internal: a failure with a cause already phrased for the user."""

    def __init__(self, cause, keep_replication=False):
        super(_Abort, self).__init__(cause)
        self.keep_replication = keep_replication


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def first_line(err):
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def predict(sizes, rates, *, jobs, method, max_lag_bytes, sequences, tables_count, verify_in_fence=True):
    """Predicted durations (seconds) from measured rates; pure, unit-tested.

    ``rates``: ``copy_bytes_s`` (one COPY stream) and ``verify_bytes_s`` (one
    checksum worker). Parallelism is capped by the number of tables and
    assumed to scale at 80 % per extra worker.
    """
    effective = 1 + 0.8 * (max(1, min(jobs, tables_count)) - 1)
    copy_rate = max(rates["copy_bytes_s"] * effective, 1.0)
    copy_s = sizes["table_bytes"] / copy_rate
    index_s = sizes["index_bytes"] / max(rates["copy_bytes_s"] * effective / 2.0, 1.0)
    verify_s = 0.0
    if rates.get("verify_bytes_s"):
        verify_s = sizes["table_bytes"] / max(rates["verify_bytes_s"] * effective, 1.0)
    fence_fixed = 1.0 + 0.005 * sequences
    in_fence_copy = (sizes["lo_bytes"] + sizes["unlogged_bytes"]) / max(rates["copy_bytes_s"], 1.0)
    fenced_verify_s = verify_s if verify_in_fence else 0.0
    if method == "logical":
        catchup_s = max_lag_bytes / max(rates["copy_bytes_s"], 1.0)
        downtime = fence_fixed + catchup_s + in_fence_copy + fenced_verify_s
    else:
        catchup_s = 0.0
        downtime = fence_fixed + copy_s + index_s + in_fence_copy + fenced_verify_s
    return {
        "copy_s": round(copy_s, 1),
        "indexes_s": round(index_s, 1),
        "catchup_s": round(catchup_s, 1),
        "verify_s": round(verify_s, 1),
        "write_downtime_s": round(downtime, 1),
    }


class Cutover:
    def __init__(self, params, *, log=None, run_command=None, hooks=None, check_mode=False, diff=False):
        merged = dict(DEFAULTS)
        merged.update(dict((k, v) for k, v in params.items() if v is not None))
        self.params = merged
        self.fence_spec = dict(FENCE_DEFAULTS, **dict((k, v) for k, v in (merged.get("fence") or {}).items() if v is not None))
        self.unfence_spec = dict((k, v) for k, v in (merged.get("unfence") or {}).items() if v is not None)
        self.migration_id = merged.get("migration_id") or merged["source"]["dbname"]
        self.name = replication.object_name(self.migration_id)
        self.source = Endpoint("source", merged["source"], self.name)
        self.target = Endpoint("target", merged["target"], self.name)
        self.secrets = [s for s in (self.source.password, self.target.password) if s]
        self._log = log
        self.run_command = run_command or subprocess_run_command
        self.hooks = hooks or {}
        self.check_mode = check_mode
        self.diff = diff
        self.jobs = max(1, int(merged["jobs"]))
        self.lines = []
        self.phases = []
        self.current_phase = "preflight"
        self.changed = False
        self.src = None
        self.tgt = None
        self.passfile = None
        self.bindir = None
        self.state = None
        self.method = merged.get("method")
        self.findings = []
        self.fence = None
        self.fence_started = None
        self.verified_at_pause = False
        self._apply_errors_seen = None
        self.result = {
            "changed": False,
            "method": None,
            "migration_id": self.migration_id,
            "phase": merged["phase"],
            "state": None,
            "phases": self.phases,
            "write_downtime_s": None,
            "lag_bytes_at_fence": None,
            "tables": [],
            "sequences": [],
            "large_objects": {"count": 0, "bytes": 0},
            "roles_created": [],
            "findings": [],
            "source": self.source.label(),
            "target": self.target.label(),
            "report_path": merged.get("report_path"),
        }

    # -- plumbing ------------------------------------------------------------------------------
    def log(self, message):
        message = scrub(message, self.secrets)
        line = self._log(message) if self._log else None
        self.lines.append(line or "[{0}] {1}".format(iso(utcnow()), message))

    class _Phase:
        def __init__(self, engine, name):
            self.engine = engine
            self.name = name

        def __enter__(self):
            self.engine.current_phase = self.name
            self.started = time.monotonic()
            self.entry = {"name": self.name, "start": iso(utcnow()), "seconds": None}
            self.engine.phases.append(self.entry)
            return self

        def __exit__(self, *exc):
            self.entry["seconds"] = round(time.monotonic() - self.started, 3)
            return False

    def phase(self, name):
        return Cutover._Phase(self, name)

    def hook(self, name, *args):
        fn = self.hooks.get(name)
        if fn:
            fn(*args)

    def _connect(self, endpoint):
        try:
            conn = endpoint.connect(autocommit=True)
        except psycopg.Error as err:
            raise CutoverFailed(
                "preflight",
                "cannot connect to the {0} {1}: {2}".format(endpoint.role, endpoint.label(), scrub(first_line(err), self.secrets)),
                "Check host, port, user, password and sslmode of `{0}`; nothing was changed.".format(endpoint.role),
                self._final(),
            ) from err
        # Our own sessions must write (state, slot, fence) even when the
        # database is read-only by default; in check mode they may not. Our
        # commits flush the WAL (the source may run synchronous_commit=off):
        # the walsender sends only flushed WAL, so the fence LSN reaches the
        # target without waiting for the WAL writer.
        conn.execute("SET default_transaction_read_only = {0}".format("on" if self.check_mode else "off"))
        conn.execute("SET synchronous_commit = on")
        return conn

    def _final(self, **extra):
        result = dict(self.result)
        result.update(extra)
        result["phases"] = self.phases
        result["findings"] = self.findings
        result["changed"] = self.changed
        result["method"] = self.method
        result["state"] = (self.state or {}).get("state") if self.state else None
        result["progress_log"] = list(self.lines)
        if self.fence_started is not None and result.get("write_downtime_s") is None and self.fence is not None:
            result["write_downtime_s"] = round(time.monotonic() - self.fence_started, 3)
        return result

    def _write_report(self, result, failure=None):
        path = self.params.get("report_path")
        if not path:
            return
        report = dict(result)
        report["failure"] = failure
        report["generated_at"] = iso(utcnow())
        text = scrub(json.dumps(report, indent=2, sort_keys=True, default=str), self.secrets)
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            os.makedirs(folder)
        with open(path, "w") as handle:
            handle.write(text + "\n")

    def _fail(self, cause, advice, **extra):
        result = self._final(**extra)
        error = CutoverFailed(self.current_phase, scrub(cause, self.secrets), advice, result)
        result["failed_phase"] = self.current_phase
        result["msg"] = str(error)
        self._write_report(result, failure={"phase": self.current_phase, "cause": error.cause, "advice": advice})
        result.pop("msg")
        return error

    def _save_state(self, **changes):
        self.state.update(changes)
        replication.write_state(self.src, self.name, self.state)

    # -- entry point -----------------------------------------------------------------------------
    def run(self):
        self.passfile = Passfile([self.source, self.target])
        try:
            if self.params["phase"] == "status":
                return self.status()
            self.src = self._connect(self.source)
            self.tgt = self._connect(self.target)
            self.source_major = server_major(self.src)
            self.target_major = server_major(self.tgt)
            self.state = replication.read_state(self.src, self.name)
            before = (self.state or {}).get("state")
            if self.params["phase"] == "rollback":
                result = self.rollback()
            elif self.params["phase"] in ("fallback", "release"):
                result = self.fallback() if self.params["phase"] == "fallback" else self.release()
            elif self.check_mode:
                result = self.rehearse()
            else:
                result = self.execute()
            result["diff"] = {"before": {"state": before}, "after": {"state": result.get("state")}}
            self._write_report(result)
            return result
        finally:
            for conn in (self.src, self.tgt):
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
            if self.passfile is not None:
                self.passfile.close()

    def status(self):
        """Read-only: where the migration stands, from its record on the source (the target is not contacted)."""
        self.src = self._connect(self.source)
        self.state = replication.read_state(self.src, self.name)
        state = self.state or {}
        self.method = state.get("method")
        self.log("migration {0}: {1}".format(self.migration_id, state.get("state") or "not started (no record on the source)"))
        return self._final(
            replication=self._replication_status() if state.get("state") in ("copied", "syncing", "fenced") else None,
            started=state.get("started"),
            finished=state.get("finished"),
            recorded_target=state.get("target"),
            fallback_running=bool(state.get("fallback")),
        )

    # -- facts and preflight ---------------------------------------------------------------------
    def gather(self):
        src, tgt = self.src, self.tgt
        try:
            self.bindir = tools.find_bindir(self.params.get("pg_bin_dir"))
            tool_major = tools.tool_major(self.bindir)
        except ToolError as err:
            raise self._fail(str(err), "Nothing was changed.") from err
        tables = catalog.tables(src)
        src_priv = catalog.privileges(src)
        not_owned = []
        if not src_priv["rolsuper"]:
            not_owned = [
                r[0]
                for r in src.execute(
                    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind = 'r' AND c.oid = ANY(%s) AND NOT pg_has_role(c.relowner, 'USAGE')",
                    ([t["oid"] for t in tables],),
                )
            ]
        unreadable = [
            t["qname"] for t in tables if t["relkind"] == "r" and not src.execute("SELECT has_table_privilege(%s, 'SELECT')", (t["oid"],)).fetchone()[0]
        ]
        facts = {
            "bindir": self.bindir,
            "tool_major": tool_major,
            "source_major": self.source_major,
            "target_major": self.target_major,
            "source_settings": catalog.settings(src),
            "target_settings": catalog.settings(tgt),
            "source_priv": src_priv,
            "target_priv": catalog.privileges(tgt),
            "tables": tables,
            "source_extensions": catalog.extensions(src),
            "target_available_extensions": catalog.available_extensions(tgt),
            # This migration's own slot, sender and worker do not count: a resumed run already has them.
            "slots_used": src.execute("SELECT count(*) FROM pg_replication_slots WHERE slot_name <> %s", (self.name,)).fetchone()[0],
            "senders_used": src.execute("SELECT count(*) FROM pg_stat_replication WHERE application_name <> %s", (self.name,)).fetchone()[0],
            "target_subs_used": tgt.execute("SELECT count(*) FROM pg_stat_subscription WHERE subname <> %s", (self.name,)).fetchone()[0],
            "lo_count": src.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0],
            "lo_bytes": catalog.large_object_bytes(src),
            "db_bytes": catalog.database_size(src),
            "target_free_bytes": self._target_free_bytes(tgt),
            "target_relations": catalog.user_relations(tgt),
            "source_read_only": catalog.database_read_only_setting(src),
            "prepared": catalog.prepared_transactions(src),
            "unreadable_tables": unreadable,
            "not_owned_tables": not_owned,
        }
        return facts

    def _target_free_bytes(self, tgt):
        if self.params.get("target_free_mb") is not None:
            return int(self.params["target_free_mb"]) * 1024 * 1024
        if not self.target.is_loopback():
            return None
        try:
            with tgt.transaction():
                folder = tgt.execute("SHOW data_directory").fetchone()[0]
            stat = os.statvfs(folder)
            return stat.f_bavail * stat.f_frsize
        except Exception:  # pylint: disable=broad-except  # not knowable: not a superuser, or not this host
            return None

    def run_preflight(self, resuming):
        with self.phase("preflight"):
            facts = self.gather()
            if self.method is None:
                self.method = "logical" if preflight.logical_possible(facts) else "dump_restore"
                if self.method == "dump_restore":
                    self.log(
                        "preflight: the source cannot replicate logically (wal_level or privileges): method dump_restore, writes are fenced for the whole copy"
                    )
            found = preflight.findings(facts, self.method, self.fence_spec, resuming=resuming)
            if self.params["roles"] == "require":
                missing = self._missing_roles()
                for name in missing:
                    found.append(
                        preflight.finding(
                            "error", "roles", name, "role {0} owns or was granted objects on the source and is missing on the target".format(name),
                            "create it on the target, or use roles: create",
                        )
                    )  # fmt: skip
            self.findings = found
            for item in found:
                if item["severity"] == "warning":
                    self.log("preflight warning: {0} ({1}) -> {2}".format(item["message"], item["object"], item["fix"]))
            errors = preflight.errors(found)
            self.log(
                "preflight: source {0} (PostgreSQL {1}, {2:.1f} MB, {3} tables), target {4} (PostgreSQL {5}): {6} error(s), {7} warning(s)".format(
                    self.source.label(),
                    self.source_major,
                    facts["db_bytes"] / 1e6,
                    len(catalog.copyable(facts["tables"])),
                    self.target.label(),
                    self.target_major,
                    len(errors),
                    len(found) - len(errors),
                )
            )
            if errors:
                raise self._fail(
                    "{0} preflight error(s): {1}".format(len(errors), preflight.summary(found)), "Nothing was changed; fix the findings and run again."
                )
        return facts

    def _missing_roles(self):
        have = catalog.existing_roles(self.tgt)
        return [r["rolname"] for r in catalog.roles_used(self.src) if r["rolname"] not in have]

    # -- the run ----------------------------------------------------------------------------------
    def execute(self):
        phase = self.params["phase"]
        state = self.state
        if state is not None and state.get("state") == "done":
            self.method = state.get("method", "logical")
            self.log("migration {0} finished at {1}: nothing to do".format(self.migration_id, state.get("finished")))
            return self._final(**state.get("summary", {}))
        if state is not None and state.get("state") == "rolled_back":
            raise self._fail(
                "migration {0!r} was handed over and then rolled back to the source at {1}".format(self.migration_id, state.get("rolled_back")),
                "The source is the database of record; the target keeps the data of that time (read-only). To migrate again: drop and "
                "recreate the target database, DROP PUBLICATION {0} on the source, then start again.".format(self.name),
            )
        if state is None:
            if phase == "cutover":
                raise self._fail(
                    "no migration {0!r} is in progress on the source (no publication {1})".format(self.migration_id, self.name),
                    "Run phase: sync (or all) first; nothing was changed.",
                )
            self.run_preflight(resuming=False)
            if self.params.get("fallback"):
                self.check_fallback_possible()
            if self.method == "dump_restore":
                if phase != "all":
                    raise self._fail("method dump_restore runs in one call", "Use phase: all (or rollback); nothing was changed.")
                return self.dump_restore()
            self.start_and_copy()
            if phase == "copy":
                self.log("copy done; slot {0} keeps the changes since the snapshot: run phase sync or cutover soon, or rollback".format(self.name))
                return self._final(replication=self._replication_status())
        else:
            if state.get("method") == "dump_restore":
                raise self._fail(
                    "a previous dump_restore run of migration {0!r} stopped while the source was fenced".format(self.migration_id),
                    "Run phase: rollback (it lifts that fence), drop and recreate the target database, then run again.",
                )
            self.method = "logical"
            if state.get("target") and state["target"] != self.target.identity():
                raise self._fail(
                    "migration {0!r} replicates to {1}, not to {2}".format(self.migration_id, state["target"], self.target.identity()),
                    "Point target at the database of that migration, or use another migration_id.",
                )
            if state["state"] in ("starting", "copying"):
                raise self._fail(
                    "a previous run of migration {0!r} stopped during the copy (state {1})".format(self.migration_id, state["state"]),
                    "Run phase: rollback, drop and recreate the target database, then start again.",
                )
            self.run_preflight(resuming=True)
            if self.params.get("fallback") and phase in ("all", "cutover"):
                self.check_fallback_possible()
            if state["state"] == "fenced":
                self.log("a previous run left the source fenced: lifting that fence first")
                old = Fence.from_record(
                    self.src,
                    self.source.dbname,
                    state.get("fence") or {},
                    spec=self.fence_spec,
                    unfence_spec=self.unfence_spec,
                    run_command=self.run_command,
                    log=self.log,
                )
                problems = old.lift()
                if problems:
                    raise self._fail(
                        "could not lift the fence of the previous run: {0}".format("; ".join(problems)),
                        "Lift it by hand (ALTER DATABASE <db> RESET default_transaction_read_only) and re-run.",
                    )
                self.changed = True
                self._save_state(state="syncing", fence=None)
            if phase == "copy":
                self.log("migration {0} is past the copy (state {1}): nothing to do".format(self.migration_id, self.state["state"]))
                return self._final(replication=self._replication_status())
        self.subscribe_and_sync()
        if phase == "sync":
            return self._final(replication=self._replication_status())
        return self.cutover()

    # -- snapshot, schema, copy, indexes ----------------------------------------------------------
    def start_and_copy(self):
        tables = []
        repl = None
        try:
            with self.phase("snapshot"):
                tables = catalog.copyable(catalog.tables(self.src))
                superuser = catalog.privileges(self.src)["rolsuper"]
                self.state = {
                    "state": "starting",
                    "method": "logical",
                    "migration_id": self.migration_id,
                    "target": self.target.identity(),
                    "started": iso(utcnow()),
                }
                replication.create_publication(self.src, self.name, [t["qname"] for t in tables if t["relpersistence"] == "p"], superuser, self.state)
                self.changed = True
                repl = self.source.connect(replication=True)
                lsn, snapshot = replication.create_slot(repl, self.name)
                self._save_state(state="copying", consistent_lsn=lsn)
                self.log("snapshot: slot {0} at {1}, publication {0}, snapshot {2}".format(self.name, lsn, snapshot))
            self.schema_pre(snapshot)
            self.copy_tables(tables, snapshot)
            repl.close()
            repl = None
            self.schema_post()
            self._save_state(state="copied", copied=iso(utcnow()))
        except (CutoverFailed, KeyboardInterrupt):
            raise
        except Exception as err:  # pylint: disable=broad-except
            cause = self._cause(err)
            if repl is not None:
                repl.close()
            removed = self.teardown()
            raise self._fail(
                cause,
                "The source was not changed and keeps taking writes{0}. The target {1} holds a partial copy: "
                "drop and recreate that database before the next attempt.".format(
                    "; replication objects removed ({0})".format(", ".join(removed)) if removed else "", self.target.label()
                ),
            ) from err

    def _cause(self, err):
        if isinstance(err, (CopyError, ToolError, FenceError, WaitTimeout, _Abort)):
            return str(err)
        if psycopg is not None and isinstance(err, psycopg.Error):
            return "{0}: {1}".format(type(err).__name__, first_line(err))
        return "{0}: {1}".format(type(err).__name__, first_line(err))

    def schema_pre(self, snapshot):
        with self.phase("schema"):
            no_owner = self.params["roles"] == "skip"
            if self.params["roles"] == "create":
                self.create_roles()
            dump = self.passfile.scratch("schema.dump")
            tools.dump_schema(self.bindir, self.source, dump, self.passfile.env(), snapshot=snapshot, secrets=self.secrets)
            skip = catalog.extensions(self.tgt)
            count = tools.restore_section(
                self.bindir, dump, self.target, self.passfile.env(), "pre-data", skip_extensions=skip, no_owner=no_owner, secrets=self.secrets
            )
            self.log("schema: pre-data restored ({0} entries: types, tables, functions; no secondary indexes or constraints yet)".format(count))

    def schema_post(self):
        with self.phase("indexes"):
            dump = self.passfile.scratch("schema.dump")
            skip = catalog.extensions(self.tgt)
            count = tools.restore_section(
                self.bindir,
                dump,
                self.target,
                self.passfile.env(),
                "post-data",
                jobs=self.jobs,
                skip_extensions=skip,
                no_owner=self.params["roles"] == "skip",
                secrets=self.secrets,
            )
            views = catalog.populated_matviews(self.src)
            for view in views:
                self.tgt.execute("REFRESH MATERIALIZED VIEW {0}".format(view))
            self.log(
                "indexes: post-data restored with {0} jobs ({1} entries: indexes, constraints, foreign keys, triggers); "
                "{2} materialized view(s) refreshed".format(self.jobs, count, len(views))
            )

    def create_roles(self):
        have = catalog.existing_roles(self.tgt)
        used = catalog.roles_used(self.src)
        needed = [r for r in used if r["rolname"] not in have]
        if not needed:
            return
        hashes = catalog.role_password_hashes(self.src, [r["rolname"] for r in needed])
        superuser = catalog.privileges(self.tgt)["rolsuper"]
        created = []
        for role in needed:
            parts = [sql.SQL("CREATE ROLE {0}").format(sql.Identifier(role["rolname"]))]
            parts.append(sql.SQL("LOGIN" if role["rolcanlogin"] else "NOLOGIN"))
            parts.append(sql.SQL("INHERIT" if role["rolinherit"] else "NOINHERIT"))
            if role["rolconnlimit"] is not None and int(role["rolconnlimit"]) >= 0:
                parts.append(sql.SQL("CONNECTION LIMIT {0}").format(sql.Literal(int(role["rolconnlimit"]))))
            if role["rolcanlogin"] and hashes.get(role["rolname"]):
                parts.append(sql.SQL("PASSWORD {0}").format(sql.Literal(hashes[role["rolname"]])))
            self.tgt.execute(sql.SQL(" ").join(parts))
            if not superuser:
                self.tgt.execute(sql.SQL("GRANT {0} TO CURRENT_USER").format(sql.Identifier(role["rolname"])))
            created.append(
                {
                    "name": role["rolname"],
                    "login": bool(role["rolcanlogin"]),
                    "password_copied": bool(role["rolcanlogin"] and hashes.get(role["rolname"])),
                    "superuser_on_source": bool(role["rolsuper"]),
                }
            )
        # A source superuser (often the owner of everything on a legacy server)
        # cannot be a superuser on RDS: to keep its access to this database's
        # objects it becomes a member of every other role that owns or was
        # granted something here.
        for role in needed:
            if role["rolsuper"]:
                for other in used:
                    if other["rolname"] != role["rolname"] and not other["rolsuper"]:
                        self.tgt.execute(sql.SQL("GRANT {0} TO {1}").format(sql.Identifier(other["rolname"]), sql.Identifier(role["rolname"])))
        self.result["roles_created"] = created
        self.log("schema: created {0} role(s) on the target: {1}".format(len(created), ", ".join(r["name"] for r in created)))

    def copy_tables(self, tables, snapshot, what="copy"):
        with self.phase(what):
            fmt = "binary" if self.source_major == self.target_major else "text"
            split = int(self.params["split_tables_larger_than_mb"] or 0) * 1024 * 1024
            tasks = plan(tables, self.jobs, split)
            copier = Copier(
                self.bindir, self.source, self.target, self.passfile.env(), self.passfile.folder,
                jobs=self.jobs, fmt=fmt, snapshot=snapshot, log=self.log, hooks=self.hooks, secrets=self.secrets,
            )  # fmt: skip
            started = time.monotonic()
            per_table = copier.run(tasks, what=what)
            seconds = time.monotonic() - started
            total = sum(v["bytes"] for v in per_table.values())
            self.result["copy"] = {
                "tables": len(per_table),
                "tasks": len(tasks),
                "bytes": total,
                "seconds": round(seconds, 3),
                "mb_per_s": round(total / 1e6 / seconds, 1) if seconds > 0 else None,
                "format": fmt,
                "jobs": self.jobs,
            }
            self.result["tables"] = [{"name": name, "bytes": v["bytes"], "rows": None, "verified": False} for name, v in sorted(per_table.items())]
            return per_table

    # -- replication until the lag is small ---------------------------------------------------------------
    def _replication_status(self):
        status = replication.slot_status(self.src, self.name) or {}
        return {
            "publication": self.name,
            "slot": self.name,
            # None when the target was not contacted (phase status) or has no subscription.
            "subscription": self.name if self.tgt is not None and replication.subscription_exists(self.tgt, self.name) else None,
            "lag_bytes": status.get("lag_bytes"),
            "confirmed_flush_lsn": status.get("confirmed_flush_lsn"),
        }

    def subscribe_and_sync(self):
        created = False
        try:
            if not replication.subscription_exists(self.tgt, self.name):
                with self.phase("subscribe"):
                    if replication.slot_status(self.src, self.name) is None:
                        raise _Abort("the replication slot {0} is gone from the source".format(self.name))
                    replication.create_subscription(
                        self.tgt, self.name, self.source.subscription_conninfo(), self.source_major == self.target_major, self.target_major
                    )
                    created = True
                    self.changed = True
                    self._save_state(state="syncing")
                    self.log("subscribe: subscription {0} on the target streams the changes since the snapshot".format(self.name))
                self.hook("after_subscribe", self)
            with self.phase("sync"):
                lag = self.wait_for_lag(self.params["max_lag_bytes"], self.params["sync_timeout_s"])
                self.log("sync: lag {0} bytes <= max_lag_bytes {1}".format(lag, self.params["max_lag_bytes"]))
        except _Abort as err:
            if err.keep_replication:
                raise self._fail(
                    str(err),
                    "The source was not fenced and keeps taking writes. Replication keeps running (slot {0} retains WAL on the source): "
                    "run phase: cutover (or sync) again later, or phase: rollback to remove it.".format(self.name),
                    replication=self._replication_status(),
                ) from err
            removed = self.teardown()
            raise self._fail(
                str(err),
                "The source was not changed and keeps taking writes; replication objects removed ({0}). "
                "Drop and recreate the target database {1} before the next attempt.".format(", ".join(removed) or "none left", self.target.label()),
            ) from err
        except CutoverFailed:
            raise
        except Exception as err:  # pylint: disable=broad-except
            cause = self._cause(err)
            removed = self.teardown() if created else []
            raise self._fail(
                cause,
                "The source was not fenced and keeps taking writes{0}.".format(
                    "; replication objects removed ({0})".format(", ".join(removed)) if removed else ""
                ),
            ) from err

    def _check_subscription(self):
        health = replication.subscription_health(self.tgt, self.name, self.target_major)
        if health is None:
            raise _Abort("the subscription {0} is gone from the target".format(self.name))
        # disable_on_error (PostgreSQL 15+) turns an apply error into a disabled
        # subscription; older targets retry forever and the error count grows.
        if not health["enabled"]:
            raise _Abort(
                "the subscription {0} stopped applying changes (disabled{1}); the target's server log has the error".format(
                    self.name, ", {0} apply error(s)".format(health["apply_errors"]) if health["apply_errors"] else ""
                )
            )
        if health["apply_errors"] and self._apply_errors_seen is not None and health["apply_errors"] > self._apply_errors_seen:
            raise _Abort(
                "the subscription {0} fails to apply changes ({1} apply error(s)); the target's server log has the error".format(
                    self.name, health["apply_errors"]
                )
            )
        if self._apply_errors_seen is None:
            self._apply_errors_seen = health["apply_errors"]
        return health

    def wait_for_lag(self, max_lag, timeout_s):
        deadline = Deadline(timeout_s, "the replication lag to fall below {0} bytes".format(max_lag))
        last_log = time.monotonic()
        while True:
            status = replication.slot_status(self.src, self.name)
            if status is None:
                raise _Abort("the replication slot {0} is gone from the source".format(self.name))
            self._check_subscription()
            lag = status["lag_bytes"]
            if status["active_pid"] and lag is not None and lag <= max_lag:
                return lag
            if time.monotonic() - last_log >= 5:
                last_log = time.monotonic()
                self.log("sync: lag {0:.1f} MB (slot {1})".format((lag or 0) / 1e6, "streaming" if status["active_pid"] else "waiting for the subscriber"))
            try:
                deadline.check(last_seen="lag {0} bytes".format(lag))
            except WaitTimeout as err:
                raise _Abort(str(err), keep_replication=True) from err
            time.sleep(deadline.sleep_for(0.2))

    # -- the fenced part ------------------------------------------------------------------------------------
    def settle_lag(self, seconds=30.0, floor=64 * 1024):
        """Before fencing, let the lag drain further while it still falls (at most
        ``seconds``): what is left at the fence is applied inside the fence."""
        started = time.monotonic()
        best = None
        best_at = started
        while time.monotonic() - started < seconds:
            status = replication.slot_status(self.src, self.name)
            if status is None or status["lag_bytes"] is None:
                return None
            lag = status["lag_bytes"]
            if lag <= floor:
                return lag
            if best is None or lag < best * 0.9:
                best, best_at = lag, time.monotonic()
            elif time.monotonic() - best_at > 1.0:
                return lag  # no longer falling: the write load's steady lag
            time.sleep(0.05)
        return best

    def cutover(self):
        replication.set_synchronous_commit(self.tgt, self.name, "on")
        settled = self.settle_lag()
        if settled is not None:
            self.log("sync: lag {0} bytes before the fence".format(settled))
        if self.params["verify_point"] == "pause" and self.params["verify"] != "none":
            self.hook("before_verify", self)
            try:
                with self.phase("verify_at_pause"):
                    self.verify_at_pause()
            except Exception as err:  # pylint: disable=broad-except
                raise self._abort_unfenced(self._cause(err), isinstance(err, _Abort) and err.keep_replication) from err
        self.hook("before_fence", self)
        self.fence = Fence(
            self.src, self.source.dbname, self.fence_spec, self.unfence_spec, run_command=self.run_command, log=self.log, keep_pids=[self.src.info.backend_pid]
        )
        self._save_state(state="fenced", fence=self.fence.record())
        self.changed = True
        self.fence_started = time.monotonic()
        deadline = Deadline(self.params["fence_timeout_s"], "the fenced part of the cut-over (fence_timeout_s)")
        try:
            with self.phase("fence"):
                fence_lsn = self.fence.apply(on_step=lambda record: self._save_state(fence=record))
                # A synchronous commit after the fence LSN flushes every WAL
                # record before it (async commits of the ended sessions too).
                self._save_state(fence_lsn=fence_lsn)
                status = replication.slot_status(self.src, self.name)
                lag = max(0, lsn_to_int(fence_lsn) - lsn_to_int(status["confirmed_flush_lsn"]))
                self.result["lag_bytes_at_fence"] = lag
                self.result["fence_lsn"] = fence_lsn
                self.log("fence: source read-only at {0} ({1} session(s) ended), lag at fence {2} bytes".format(fence_lsn, self.fence.terminated, lag))
            self.hook("after_fence", self)
            with self.phase("catchup"):
                self.wait_for_fence_lsn(fence_lsn, deadline)
            self.fenced_work(deadline)
            if self.params.get("fallback"):
                with self.phase("start_fallback"):
                    self.start_fallback()
            with self.phase("handover"):
                removed = self.teardown(tombstone=True)
                self.log("handover: replication removed ({0}); the target is the database of record, the source stays read-only".format(", ".join(removed)))
            self.repoint()
            return self._finish()
        except CutoverFailed:
            raise
        except Exception as err:  # pylint: disable=broad-except
            timed_out = isinstance(err, WaitTimeout) or (psycopg is not None and isinstance(err, psycopg.errors.QueryCanceled))
            keep = timed_out or (isinstance(err, _Abort) and err.keep_replication)
            raise self._abort_fenced(self._cause(err), keep) from err

    def wait_for_fence_lsn(self, fence_lsn, deadline, what="fence LSN"):
        checked = 0.0
        while True:
            status = replication.slot_status(self.src, self.name)
            if status is None:
                raise _Abort("the replication slot {0} is gone from the source".format(self.name))
            if replication.reached(status["confirmed_flush_lsn"], fence_lsn):
                self.log("catchup: the target confirmed {0} >= {1} {2}".format(status["confirmed_flush_lsn"], what, fence_lsn))
                return
            if time.monotonic() - checked > 0.5:
                checked = time.monotonic()
                self._check_subscription()
            if deadline.expired:
                behind = lsn_to_int(fence_lsn) - lsn_to_int(status["confirmed_flush_lsn"])
                raise _Abort(
                    "the target did not reach the {0} {1} within fence_timeout_s={2} ({3} bytes behind)".format(
                        what, fence_lsn, self.params["fence_timeout_s"], behind
                    ),
                    keep_replication=True,
                )
            time.sleep(min(0.02, deadline.remaining))

    def fenced_work(self, deadline):
        """Sequences, large objects, unlogged tables and verification (source fenced, target caught up)."""
        with self.phase("sequences"):
            self.result["sequences"] = self.sync_sequences()
        deadline.check()
        with self.phase("large_objects"):
            self.result["large_objects"] = self.copy_large_objects()
        deadline.check()
        src_tables = catalog.copyable(catalog.tables(self.src))
        unlogged = [t for t in src_tables if t["relpersistence"] == "u"]
        if unlogged and self.method == "logical":
            for table in unlogged:
                self.tgt.execute("TRUNCATE {0}".format(table["qname"]))
            self.copy_tables(unlogged, None, what="unlogged")
        if not self.verified_at_pause:
            self.hook("before_verify", self)
        deadline.check()
        if self.params["verify"] == "none":
            self.log("verify: skipped (verify: none)")
            return
        tgt_tables = catalog.copyable(catalog.tables(self.tgt))
        if self.verified_at_pause:
            # Every table was verified at the pause point; what changed since
            # came through the replication the fence LSN proves complete. In
            # the fence: the same tables on both sides (no DDL since), and the
            # unlogged tables copied just now.
            with self.phase("verify"):
                missing = sorted(set(t["qname"] for t in src_tables) - set(t["qname"] for t in tgt_tables))
                if missing:
                    raise _Abort("table(s) created on the source after the verification point are missing on the target: {0}".format(", ".join(missing[:10])))
                if unlogged and self.method == "logical":
                    results = self._verify(unlogged, tgt_tables, statement_timeout_s=max(deadline.remaining, 0.001))
                    by_name = dict((r["name"], r) for r in results)
                    known = set(r["name"] for r in self.result["tables"])
                    self.result["tables"] = [by_name.get(r["name"], r) for r in self.result["tables"]] + [r for r in results if r["name"] not in known]
                self.log(
                    "verify: tables verified at the pause point {0}; the same {1} tables on both sides".format(
                        self.result["verification"]["lsn"], len(src_tables)
                    )
                )
            return
        with self.phase("verify"):
            self.result["tables"] = self._verify(src_tables, tgt_tables, statement_timeout_s=max(deadline.remaining, 0.001))
            self.result["verification"] = {"point": "fence", "mode": self.params["verify"]}
        deadline.check()

    def _verify(self, src_tables, tgt_tables, statement_timeout_s=None, snapshots=None):
        algorithm = "hash" if min(self.source_major, self.target_major) >= 14 else "md5"
        verifier = Verifier(
            self.source,
            self.target,
            jobs=self.jobs,
            mode=self.params["verify"],
            algorithm=algorithm,
            statement_timeout_s=statement_timeout_s,
            snapshots=snapshots,
        )
        results = verifier.run(src_tables, tgt_tables)
        bad = [r for r in results if not r["verified"]]
        self.log(
            "verify: {0}/{1} tables match ({2}, {3} rows)".format(
                len(results) - len(bad), len(results), self.params["verify"], sum(r["source_rows"] for r in results)
            )
        )
        if bad:
            self.result["tables"] = results
            raise _Abort(
                "verification found {0} table(s) that differ: {1}".format(len(bad), "; ".join("{0}: {1}".format(r["name"], r["reason"]) for r in bad[:5]))
            )
        return results

    def verify_at_pause(self):
        """Verify every table at a consistent point, before the fence.

        Writes to the published tables pause (``LOCK TABLE ... IN EXCLUSIVE
        MODE``: reads go on, no session is ended) just long enough to export a
        snapshot on the source, wait until the target confirmed that LSN, and
        export a snapshot there; then the locks go and the checksums run in
        those two snapshots while the application writes again.
        """
        tables = [t for t in catalog.copyable(catalog.tables(self.src)) if t["relpersistence"] == "p"]
        tgt_tables = catalog.copyable(catalog.tables(self.tgt))
        if not tables:
            self.verified_at_pause = True
            self.result["verification"] = {"point": "pause", "mode": self.params["verify"], "lsn": None, "pause_s": 0.0}
            return
        # Start from a small lag so the pause only covers the last changes.
        self.wait_for_lag(min(self.params["max_lag_bytes"], 1024 * 1024), self.params["sync_timeout_s"])
        lock_timeout_ms = int(min(5.0, float(self.params["fence_timeout_s"])) * 1000)
        listed = ", ".join(t["qname"] for t in tables)
        holders = []
        try:
            locker = self.source.connect(autocommit=False)
            holders.append(locker)
            waited = time.monotonic()
            for attempt in range(3):
                waited = time.monotonic()
                locker.execute("SET LOCAL lock_timeout = {0}".format(lock_timeout_ms))
                try:
                    locker.execute("LOCK TABLE {0} IN EXCLUSIVE MODE".format(listed))
                    break
                except psycopg.errors.LockNotAvailable:
                    locker.rollback()
                    self.log("verify: writes could not be paused within {0} ms (attempt {1}/3)".format(lock_timeout_ms, attempt + 1))
                    time.sleep(1.0)
            else:
                raise _Abort(
                    "could not pause writes for the verification point: a transaction held its tables for more than {0} ms, 3 times".format(lock_timeout_ms),
                    keep_replication=True,
                )
            paused = time.monotonic()
            lock_wait = paused - waited
            hold_src = self.source.connect(autocommit=False)
            holders.append(hold_src)
            hold_src.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            src_snapshot = hold_src.execute("SELECT pg_export_snapshot()").fetchone()[0]
            point = self.src.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]
            self._save_state(verify_point=point)  # a synchronous commit: the WAL up to the point is flushed
            deadline = Deadline(self.params["fence_timeout_s"], "the target to reach the verification point")
            self.wait_for_fence_lsn(point, deadline, what="verification point")
            hold_tgt = self.target.connect(autocommit=False)
            holders.append(hold_tgt)
            hold_tgt.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            tgt_snapshot = hold_tgt.execute("SELECT pg_export_snapshot()").fetchone()[0]
            locker.rollback()  # writes resume
            pause = time.monotonic() - paused
            self.log(
                "verify: writes paused {0:.3f}s (after {1:.3f}s waiting for the locks) at {2}; checksums run in both snapshots".format(pause, lock_wait, point)
            )
            self.result["verification"] = {
                "point": "pause",
                "mode": self.params["verify"],
                "lsn": point,
                "pause_s": round(pause, 3),
                "lock_wait_s": round(lock_wait, 3),
            }
            self.hook("at_verification_point", self)
            self.result["tables"] = self._verify(tables, tgt_tables, snapshots={"source": src_snapshot, "target": tgt_snapshot})
            self.verified_at_pause = True
        finally:
            for conn in holders:
                with contextlib.suppress(Exception):
                    conn.close()

    def _abort_unfenced(self, cause, keep_replication):
        """A failure before the fence (verification at the pause point); returns the CutoverFailed to raise."""
        if keep_replication:
            with contextlib.suppress(Exception):
                replication.set_synchronous_commit(self.tgt, self.name, "off")
            return self._fail(
                cause,
                "The source was never fenced and keeps taking writes. Replication keeps running: run phase: cutover again, or phase: rollback.",
                replication=self._replication_status(),
            )
        removed = self.teardown()
        return self._fail(
            cause,
            "The source was never fenced and keeps taking writes; replication objects removed ({0}). "
            "Drop and recreate the target database {1} before the next attempt.".format(", ".join(removed) or "none left", self.target.label()),
        )

    def _abort_fenced(self, cause, keep_replication):
        """Lift the fence, then clean up; returns the CutoverFailed to raise."""
        problems = self.fence.lift() if self.fence is not None else []
        downtime = round(time.monotonic() - self.fence_started, 3)
        self.result["write_downtime_s"] = downtime
        fence_state = (
            "writes on the source restored after {0:.1f}s".format(downtime)
            if not problems
            else "LIFTING THE FENCE FAILED ({0}): restore writes by hand".format("; ".join(problems))
        )
        self.log("abort: {0}".format(fence_state))
        if keep_replication and not problems:
            try:
                self._check_subscription()
                replication.set_synchronous_commit(self.tgt, self.name, "off")
                self._save_state(state="syncing", fence=None)
                return self._fail(
                    cause,
                    "The fence was lifted ({0}); the source remains the database of record and lost nothing. Replication keeps running: "
                    "run phase: cutover again (when the lag is lower, or with a larger fence_timeout_s), or phase: rollback.".format(fence_state),
                    replication=self._replication_status(),
                )
            except Exception as err:  # pylint: disable=broad-except  # replication is not healthy: remove it
                self.log("abort: replication is not healthy ({0}): removing it".format(first_line(err)))
        if problems:
            return self._fail(cause, "The fence could not be lifted: {0}. Replication objects were kept so that phase: rollback can retry.".format(fence_state))
        removed = self.teardown()
        self.fence = None
        return self._fail(
            cause,
            "The fence was lifted ({0}); the source remains the database of record and lost nothing. Replication objects removed ({1}); "
            "drop and recreate the target database {2} before the next attempt.".format(fence_state, ", ".join(removed) or "none left", self.target.label()),
        )

    # -- fallback: after the hand-over, the target's changes stream back to the source -----------------------
    def check_fallback_possible(self):
        """Before anything changes: what fallback: true needs (else the fence would be lifted at the hand-over)."""
        problems = []
        if self.source_major != self.target_major:
            problems.append("the same PostgreSQL major on both sides (source {0}, target {1})".format(self.source_major, self.target_major))
        wal_level = self.tgt.execute("SHOW wal_level").fetchone()[0]
        if wal_level != "logical":
            problems.append("wal_level = logical on the target (it is {0}; on RDS: rds.logical_replication = 1)".format(wal_level))
        if not catalog.privileges(self.src)["rolsuper"]:
            problems.append("a superuser on the source, to create the fallback subscription there")
        if problems:
            raise self._fail(
                "fallback replication from the target back to the source needs " + "; ".join(problems),
                "Fix that, or use fallback: false (a rollback after the hand-over is then impossible without losing the target's writes). Nothing was changed.",
            )

    def start_fallback(self):
        """Inside the fence, both sides equal: a slot on the target from here, and a subscription on the (fenced) source.

        Until phase release, every change made on the target is applied on the source, which stays read-only for the
        application; phase fallback is then a cut-over in the other direction, with nothing to copy. The subscription
        needs a superuser on the source (PostgreSQL < 16) and the source reaching the target.
        """
        fb_id = replication.fallback_id(self.migration_id)
        fb_name = replication.object_name(fb_id)
        tables = [t["qname"] for t in catalog.copyable(catalog.tables(self.tgt)) if t["relpersistence"] == "p"]
        fb_state = {"state": "syncing", "method": "logical", "migration_id": fb_id, "target": self.source.identity(), "started": iso(utcnow())}
        replication.create_publication(self.tgt, fb_name, tables, catalog.privileges(self.tgt)["rolsuper"], fb_state)
        lsn = replication.create_slot_here(self.tgt, fb_name)
        replication.create_subscription(self.src, fb_name, self.target.subscription_conninfo(), True, self.source_major)
        self.state["fallback"] = {"migration_id": fb_id, "slot_lsn": lsn, "source_fence": self.fence.record(), "started": iso(utcnow())}
        self._save_state()
        self.log("fallback: changes on the target from {0} on stream back to the source (publication, slot and subscription {1})".format(lsn, fb_name))

    def _reverse(self, phase):
        """A Cutover of the fallback replication: source and target swapped, the state on the target."""
        fb = self.state["fallback"]
        params = dict(self.params)
        params.update(
            source=self.params["target"],
            target=self.params["source"],
            migration_id=fb["migration_id"],
            phase=phase,
            handover=None,
            fallback=False,
            # The default fence on the target (read-only, sessions ended); this migration's fence
            # commands are about the source's application.
            fence=None,
            unfence=None,
            report_path=None,
            roles="skip",
            verify_point="fence",
        )
        return Cutover(params, log=self._log, run_command=self.run_command, hooks=self.hooks, check_mode=self.check_mode)

    def _needs_fallback(self, what):
        state = self.state or {}
        if state.get("state") == "rolled_back" and what == "fallback":
            return False
        if state.get("state") != "done" or not state.get("fallback"):
            raise self._fail(
                "migration {0!r} has no fallback replication running (state {1}{2})".format(
                    self.migration_id, state.get("state") or "none", ", released" if state.get("fallback_released") else ""
                ),
                "phase {0} works after a hand-over made with fallback: true and before phase release; before the hand-over use phase: "
                "rollback. Nothing was changed.".format(what),
            )
        return True

    def fallback(self):
        """Back to the source after the hand-over: fence the target, catch the source up, verify, hand back."""
        with self.phase("fallback_check"):
            if not self._needs_fallback("fallback"):
                self.log("fallback: migration {0} was rolled back at {1}: nothing to do".format(self.migration_id, self.state.get("rolled_back")))
                return self._final()
        self.method = "logical"
        if self.check_mode:
            self.log("fallback (check mode): would fence the target, catch the source up, verify and hand back; nothing was changed")
            return self._final(replication=None)
        reverse = self._reverse("cutover")
        try:
            result = reverse.run()
        except CutoverFailed as err:
            self.phases.extend(err.result.get("phases", []))
            raise self._fail(
                "the fallback to the source failed in its phase {0!r}: {1}".format(err.phase, err.cause),
                err.advice + " (Here the source of that cut-over is this migration's target, and its target this migration's source.)",
            ) from err
        self.changed = True
        self.phases.extend(result["phases"])
        self.fence_started = time.monotonic() - (result["write_downtime_s"] or 0.0)
        for key in ("tables", "sequences", "large_objects", "lag_bytes_at_fence"):
            self.result[key] = result[key]
        with self.phase("unfence_source"):
            old = Fence.from_record(
                self.src,
                self.source.dbname,
                self.state["fallback"].get("source_fence") or {},
                spec=self.fence_spec,
                unfence_spec=self.unfence_spec,
                run_command=self.run_command,
                log=self.log,
            )
            problems = old.lift()
            self.state.update(state="rolled_back", rolled_back=iso(utcnow()), fallback=None)
            replication.write_state(self.src, self.name, self.state)
            if problems:
                raise self._fail(
                    "the source has every write of the target but could not be made writable again: {0}".format("; ".join(problems)),
                    "Run ALTER DATABASE {0} RESET default_transaction_read_only on the source, then point the application at it.".format(self.source.dbname),
                )
            self.log("fallback: the source is the database of record again and writable; the target stays read-only")
        self.repoint()
        return self._final()

    def release(self):
        """Stop the fallback replication (decommission): the source is no longer kept in sync with the target."""
        with self.phase("release"):
            state = self.state or {}
            if state.get("state") != "done" or not state.get("fallback"):
                self.log("release: no fallback replication to remove (state {0})".format(state.get("state") or "none"))
                return self._final()
            if self.check_mode:
                self.changed = True
                return self._final()
            fb_name = replication.object_name(state["fallback"]["migration_id"])
            removed = []
            if replication.drop_subscription(self.src, fb_name):
                removed.append("subscription on the source")
            if replication.drop_slot(self.tgt, fb_name):
                removed.append("slot on the target")
            if replication.drop_publication(self.tgt, fb_name):
                removed.append("publication on the target")
            self.state.update(fallback=None, fallback_released=iso(utcnow()))
            replication.write_state(self.src, self.name, self.state)
            self.changed = True
            self.log("release: fallback replication removed ({0}); a rollback to the source is no longer possible".format(", ".join(removed) or "nothing left"))
            return self._final(removed=removed)

    def repoint(self):
        """After the hand-over: ``handover.commands`` point the application at the target, inside the measured write downtime.

        The hand-over is final by now (the source read-only, the target the database of record), so a failing command
        never lifts the fence: the module fails with what to do by hand, and a re-run reports the migration done.
        """
        commands = (self.params.get("handover") or {}).get("commands") or []
        if commands:
            with self.phase("repoint"):
                try:
                    run_commands(commands, self.run_command, "handover")
                except Exception as err:  # pylint: disable=broad-except  # a missing program is an OSError
                    self.result["write_downtime_s"] = round(time.monotonic() - self.fence_started, 3)
                    raise self._fail(
                        scrub(first_line(err), self.secrets),
                        "The hand-over is done: the target is the database of record and the source is read-only, so writes fail "
                        "until the application uses the target. Do by hand what the handover command should have done; a re-run "
                        "reports the migration done.",
                    ) from err
                self.log("repoint: {0} handover command(s) run: the application now writes to the target".format(len(commands)))
        downtime = round(time.monotonic() - self.fence_started, 3)
        self.result["write_downtime_s"] = downtime
        self.log("write downtime {0:.3f}s (fence on to {1})".format(downtime, "the application repointed" if commands else "hand-over"))

    def _finish(self):
        summary = {
            "write_downtime_s": self.result["write_downtime_s"],
            "lag_bytes_at_fence": self.result["lag_bytes_at_fence"],
            "tables_verified": sum(1 for t in self.result["tables"] if t.get("verified")),
        }
        if self.state is not None:
            self.state.update(state="done", finished=iso(utcnow()), summary=summary, fence=None)
        self.fence = None
        return self._final()

    # -- sequences and large objects ---------------------------------------------------------------------
    def sync_sequences(self):
        seqs = catalog.sequences(self.src)
        names = [s["qname"] for s in seqs]
        src_values = catalog.sequence_values(self.src, names)
        tgt_names = set(s["qname"] for s in catalog.sequences(self.tgt))
        missing = [n for n in names if n not in tgt_names]
        if missing:
            raise _Abort("sequence(s) missing on the target: {0}".format(", ".join(missing[:10])))
        tgt_values = catalog.sequence_values(self.tgt, names)
        out = []
        changed = 0
        with self.tgt.transaction():
            for seq in seqs:
                name = seq["qname"]
                inc = int(seq["seqincrement"])
                src_last, src_called = src_values[name]
                tgt_last, tgt_called = tgt_values[name]
                src_next = src_last + (inc if src_called else 0)
                tgt_next = tgt_last + (inc if tgt_called else 0)
                behind = src_next > tgt_next if inc > 0 else src_next < tgt_next
                if behind:
                    self.tgt.execute("SELECT setval(%s::regclass, %s, %s)", (name, src_last, src_called))
                    tgt_last = src_last
                    changed += 1
                out.append({"name": name, "source": src_last, "target": tgt_last, "owned": bool(seq["owned"])})
        self.log("sequences: {0} synced, {1} already ahead on the target".format(changed, len(out) - changed))
        return out

    def copy_large_objects(self):
        src_los = catalog.large_objects(self.src)
        tgt_oids = set(entry[0] for entry in catalog.large_objects(self.tgt))
        roles = catalog.existing_roles(self.tgt)
        total = 0
        chunk = 1 << 20
        with self.tgt.transaction():
            for oid in sorted(tgt_oids - set(entry[0] for entry in src_los)):
                self.tgt.execute("SELECT lo_unlink(%s)", (oid,))
            for oid, owner in src_los:
                if oid in tgt_oids:
                    self.tgt.execute("SELECT lo_unlink(%s)", (oid,))
                self.tgt.execute("SELECT lo_create(%s)", (oid,))
                offset = 0
                while True:
                    data = self.src.execute("SELECT lo_get(%s, %s, %s)", (oid, offset, chunk)).fetchone()[0]
                    if not data:
                        break
                    self.tgt.execute("SELECT lo_put(%s, %s, %s)", (oid, offset, bytes(data)))
                    offset += len(data)
                    if len(data) < chunk:
                        break
                total += offset
                if owner in roles:
                    self.tgt.execute(sql.SQL("ALTER LARGE OBJECT {0} OWNER TO {1}").format(sql.SQL(str(int(oid))), sql.Identifier(owner)))
        if src_los:
            self.log("large_objects: {0} copied ({1:.1f} MB)".format(len(src_los), total / 1e6))
        return {"count": len(src_los), "bytes": total}

    # -- teardown and rollback --------------------------------------------------------------------------------
    def teardown(self, tombstone=False):
        """Drop subscription (target), slot and publication (source); returns what was removed."""
        removed = []
        try:
            if replication.drop_subscription(self.tgt, self.name):
                removed.append("subscription on the target")
        except Exception as err:  # pylint: disable=broad-except  # the target may be down
            self.log("teardown: could not drop subscription {0} on the target ({1}); drop it when the target is back".format(self.name, first_line(err)))
            try:
                self.tgt = self._connect(self.target)
                if replication.drop_subscription(self.tgt, self.name):
                    removed.append("subscription on the target")
            except Exception as again:  # pylint: disable=broad-except
                self.log("teardown: the target is still unreachable ({0})".format(first_line(again)))
        if replication.drop_slot(self.src, self.name):
            removed.append("slot")
        if tombstone:
            self.state.update(state="done", finished=iso(utcnow()), fence=None)
            replication.tombstone(self.src, self.name, self.state)
        elif replication.drop_publication(self.src, self.name):
            removed.append("publication")
            self.state = None
        return removed

    def rollback(self):
        state = self.state
        self.method = (state or {}).get("method", "logical")
        with self.phase("rollback"):
            if state is not None and state.get("state") == "rolled_back":
                self.log("rollback: migration {0} was rolled back at {1}: nothing to do".format(self.migration_id, state.get("rolled_back")))
                return self._final()
            if state is not None and state.get("state") == "done":
                raise self._fail(
                    "migration {0!r} finished at {1}: the target is the database of record".format(self.migration_id, state.get("finished")),
                    "Nothing to roll back{0}. DROP PUBLICATION {1} on the source forgets the migration.".format(
                        "; phase: fallback moves back to the source without losing the target's writes" if state.get("fallback") else "", self.name
                    ),
                )
            if self.check_mode:
                present = state is not None or replication.subscription_exists(self.tgt, self.name) or replication.slot_status(self.src, self.name) is not None
                self.changed = present
                return self._final()
            if state is not None and state.get("state") == "fenced":
                old = Fence.from_record(
                    self.src,
                    self.source.dbname,
                    state.get("fence") or {},
                    spec=self.fence_spec,
                    unfence_spec=self.unfence_spec,
                    run_command=self.run_command,
                    log=self.log,
                )
                problems = old.lift()
                if problems:
                    raise self._fail("could not lift the fence: {0}".format("; ".join(problems)), "Lift it by hand and run rollback again.")
                self.changed = True
                self.log("rollback: fence of the previous run lifted")
            removed = self.teardown()
            if removed:
                self.changed = True
            self.state = None
            self.log(
                "rollback: removed {0}; the target database was left as it is".format(
                    ", ".join(removed) or "nothing (no migration {0!r})".format(self.migration_id)
                )
            )
            return self._final(removed=removed)

    # -- dump_restore ----------------------------------------------------------------------------------------------
    def dump_restore(self):
        self.fence = Fence(
            self.src, self.source.dbname, self.fence_spec, self.unfence_spec, run_command=self.run_command, log=self.log, keep_pids=[self.src.info.backend_pid]
        )
        # The state (and the fence record) lives in the source, as for logical,
        # so that phase: rollback can lift the fence a crashed run left.
        self.state = {
            "state": "fenced",
            "method": "dump_restore",
            "migration_id": self.migration_id,
            "target": self.target.identity(),
            "started": iso(utcnow()),
        }
        replication.tombstone(self.src, self.name, self.state)
        self.fence_started = time.monotonic()
        self.changed = True
        deadline = Deadline(max(self.params["fence_timeout_s"], 1), "the fenced cut-over (fence_timeout_s)")
        snap_conn = None
        try:
            with self.phase("fence"):
                fence_lsn = self.fence.apply(on_step=lambda record: self._save_state(fence=record))
                self.result["lag_bytes_at_fence"] = 0
                self.result["fence_lsn"] = fence_lsn
                self.log("fence: source read-only at {0} ({1} session(s) ended); dump_restore copies while fenced".format(fence_lsn, self.fence.terminated))
            self.hook("after_fence", self)
            snap_conn = self.source.connect(autocommit=False)
            snap_conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = snap_conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            tables = catalog.copyable(catalog.tables(self.src))
            self.schema_pre(snapshot)
            self.copy_tables(tables, snapshot)
            snap_conn.rollback()
            snap_conn.close()
            snap_conn = None
            self.schema_post()
            deadline.check()
            self.fenced_work(deadline)
            with self.phase("handover"):
                # An empty publication records that this migration is done (a re-run is ok).
                self.state = {
                    "state": "done",
                    "method": "dump_restore",
                    "migration_id": self.migration_id,
                    "target": self.target.identity(),
                    "finished": iso(utcnow()),
                }
                replication.tombstone(self.src, self.name, self.state)
                self.log("handover: the target is the database of record, the source stays read-only")
            self.repoint()
            return self._finish()
        except CutoverFailed:
            raise
        except Exception as err:  # pylint: disable=broad-except
            if snap_conn is not None:
                snap_conn.close()
            problems = self.fence.lift()
            downtime = round(time.monotonic() - self.fence_started, 3)
            self.result["write_downtime_s"] = downtime
            fence_state = (
                "writes on the source restored after {0:.1f}s".format(downtime)
                if not problems
                else "LIFTING THE FENCE FAILED ({0})".format("; ".join(problems))
            )
            self.fence = None
            if not problems:
                with contextlib.suppress(Exception):
                    replication.drop_publication(self.src, self.name)
                    self.state = None
            raise self._fail(
                self._cause(err),
                "The fence was lifted ({0}); the source remains the database of record and lost nothing. "
                "The target {1} holds a partial copy: drop and recreate it before the next attempt.".format(fence_state, self.target.label()),
            ) from err

    # -- check mode: the rehearsal --------------------------------------------------------------------------------------
    def rehearse(self):
        state = self.state
        if state is not None and state.get("state") == "done":
            self.method = state.get("method", "logical")
            return self._final(**state.get("summary", {}))
        facts = self.run_preflight(resuming=state is not None)
        tables = catalog.copyable(facts["tables"])
        with self.phase("rehearsal"):
            index_bytes = int(
                self.src.execute(
                    "SELECT coalesce(sum(pg_indexes_size(c.oid)), 0) FROM pg_class c WHERE c.oid = ANY(%s)", ([t["oid"] for t in tables],)
                ).fetchone()[0]
            )
            sizes = {
                "database_bytes": facts["db_bytes"],
                "table_bytes": sum(int(t["bytes"]) for t in tables),
                "index_bytes": index_bytes,
                "lo_bytes": facts["lo_bytes"] or 0,
                "unlogged_bytes": sum(int(t["bytes"]) for t in tables if t["relpersistence"] == "u"),
                "tables": len(tables),
                "sequences": len(catalog.sequences(self.src)),
                "large_objects": facts["lo_count"],
            }
            rates = {"copy_bytes_s": 50e6, "verify_bytes_s": None, "measured": False}
            sample = None
            if tables:
                largest = max(tables, key=lambda t: int(t["bytes"]))
                sample_bytes = int(self.params["sample_mb"]) * 1024 * 1024
                fmt = "binary" if self.source_major == self.target_major else "text"
                copied, seconds, rows = sample_rate(self.bindir, self.source, self.passfile.env(), largest, sample_bytes, fmt=fmt)
                # Predictions divide table bytes (on disk) by the rate: count the
                # sample in on-disk bytes too (the COPY stream is smaller).
                est_rows = max(int(largest["est_rows"]), 1)
                row_disk = float(largest["bytes"]) / est_rows
                rates["copy_bytes_s"] = max(min(rows, est_rows) * row_disk / seconds, 1.0)
                verify_s = self._sample_verify(largest, min(sample_bytes, int(largest["bytes"]) or sample_bytes))
                if verify_s:
                    rates["verify_bytes_s"] = min(sample_bytes, int(largest["bytes"]) or sample_bytes) / verify_s
                rates["measured"] = True
                sample = {
                    "table": largest["qname"],
                    "bytes": copied,
                    "seconds": round(seconds, 3),
                    "mb_per_s": round(copied / 1e6 / seconds, 1),
                    "row_bytes_on_disk": round(row_disk, 1),
                }
            if self.params["verify"] != "checksums":
                rates["verify_bytes_s"] = None if self.params["verify"] == "none" else (rates["verify_bytes_s"] or 0) * 4 or None
            prediction = predict(
                sizes,
                rates,
                jobs=self.jobs,
                method=self.method,
                max_lag_bytes=self.params["max_lag_bytes"],
                sequences=sizes["sequences"],
                tables_count=len(tables),
                verify_in_fence=self.params["verify_point"] == "fence" or self.method != "logical",
            )
            self.log(
                "rehearsal: {0:.1f} MB of tables, sample {1}; predicted copy {2}s, write downtime {3}s ({4})".format(
                    sizes["table_bytes"] / 1e6,
                    "{0:.1f} MB/s on {1}".format(sample["mb_per_s"], sample["table"]) if sample else "none (no tables)",
                    prediction["copy_s"],
                    prediction["write_downtime_s"],
                    self.method,
                )
            )
            rehearsal = {"sizes": sizes, "sample": sample, "predicted": prediction, "state": (state or {}).get("state")}
            if state is not None:
                rehearsal["replication"] = self._replication_status()
        self.changed = state is None or state.get("state") != "done"
        return self._final(rehearsal=rehearsal)

    def _sample_verify(self, table, sample_bytes):
        est_rows = max(int(table["est_rows"]), 1)
        limit = max(1000, int(sample_bytes / max(float(table["bytes"]) / est_rows, 1.0)))
        query = "SELECT count(*), sum({0}) FROM (SELECT * FROM ONLY {1} LIMIT {2}) AS t".format(  # noqa: S608 - identifiers quoted by the catalog (format('%I.%I'))
            row_hash_expression(table, "hash" if min(self.source_major, self.target_major) >= 14 else "md5"), table["qname"], limit
        )
        started = time.monotonic()
        try:
            with self.src.transaction():
                self.src.execute(STABLE_SESSION)
                self.src.execute(query)
        except psycopg.Error:
            return None
        return time.monotonic() - started
