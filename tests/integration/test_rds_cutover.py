"""rds_cutover's engine against two real PostgreSQL servers on loopback.

The source runs with ``wal_level=logical``; the target is a plain server. Each
test uses its own pair of databases (and so its own migration id). A writer
thread inserts, updates and deletes on the source while the copy and the
replication run; afterwards an independent query checks that every write it
saw commit is on the target. Fault tests use the engine's hooks (the test
seam: a callable at a fixed point of the run) to kill the target, stall or
break replication, or corrupt a row; each ends with the source writable and
a failure that names the phase and the cause.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from local_aws.postgres import Cluster, free_port
from plugins.module_utils.pg_cutover.engine import Cutover, CutoverFailed
from tests.integration import pgdata


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Cluster]]:
    root = Path(tempfile.mkdtemp(prefix="cutover-it-"))
    root.chmod(0o755)  # the postgres OS user must reach the data dirs
    pair = {
        "source": Cluster("source", root, free_port(), logical=True),
        "target": Cluster("target", root, free_port(), logical=True),
    }
    try:
        for cluster in pair.values():
            cluster.start()
        yield pair
    finally:
        for cluster in pair.values():
            with contextlib.suppress(Exception):  # best effort: a killed cluster is already down
                cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


class Migration:
    """A source database with the data set, an empty target database, and the module's params."""

    def __init__(self, servers: dict[str, Cluster], name: str, rows: int, full_identity: bool = True) -> None:
        self.servers = servers
        self.src_db, self.dst_db = f"src_{name}", f"dst_{name}"
        for side, db in (("source", self.src_db), ("target", self.dst_db)):
            with servers[side].connect() as conn:
                conn.execute(f'CREATE DATABASE "{db}"')
        with self.connect("source") as conn:
            pgdata.build(conn, rows=rows, full_identity=full_identity)

    def endpoint(self, side: str) -> dict[str, Any]:
        cluster = self.servers[side]
        info = cluster.conninfo(self.src_db if side == "source" else self.dst_db)
        return {"host": info["host"], "port": info["port"], "dbname": info["dbname"], "user": info["user"], "password": info["password"]}

    def conninfo(self, side: str) -> dict[str, Any]:
        return self.servers[side].conninfo(self.src_db if side == "source" else self.dst_db)

    def connect(self, side: str) -> psycopg.Connection:
        return psycopg.connect(**self.conninfo(side), autocommit=True, connect_timeout=10)

    def params(self, **extra: Any) -> dict[str, Any]:
        return {"source": self.endpoint("source"), "target": self.endpoint("target"), "jobs": 2, "fence_timeout_s": 60, "sync_timeout_s": 120, **extra}

    def run(self, check_mode: bool = False, hooks: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        return Cutover(self.params(**extra), hooks=hooks, check_mode=check_mode).run()

    def fail(self, hooks: dict[str, Any] | None = None, **extra: Any) -> CutoverFailed:
        with pytest.raises(CutoverFailed) as caught:
            self.run(hooks=hooks, **extra)
        return caught.value

    def source_accepts_writes(self) -> bool:
        """A fresh session (as the application would open) can write on the source."""
        with self.connect("source") as conn:
            conn.execute("INSERT INTO audit.log_lines (line) VALUES ('after the cut-over attempt')")
        return True

    def replication_objects(self) -> dict[str, list]:
        with self.connect("source") as src, self.connect("target") as dst:
            return {
                "publications": [r[0] for r in src.execute("SELECT pubname FROM pg_publication")],
                "slots": [r[0] for r in src.execute("SELECT slot_name FROM pg_replication_slots WHERE database = current_database()")],
                "subscriptions": [
                    r[0]
                    for r in dst.execute("SELECT subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())")
                ],
            }


def assert_target_complete(mig: Migration, writer: pgdata.Writer | None, result: dict[str, Any]) -> None:
    """Independent checks (not the module's own verification)."""
    with mig.connect("source") as src, mig.connect("target") as dst:
        if writer is not None:
            assert writer.committed > 0, writer.errors[-5:]
            lost = pgdata.missing_writes(dst, writer)
            assert lost == [], f"{len(lost)} committed source writes missing on the target: {lost[:5]}"
        assert pgdata.sequences_behind(src, dst) == []
        assert pgdata.table_counts(src) == pgdata.table_counts(dst)
        # Large objects with the same OIDs and bytes; the materialized view populated; the generated column computed.
        lo = "SELECT oid, md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY oid"
        assert src.execute(lo).fetchall() == dst.execute(lo).fetchall()
        assert dst.execute("SELECT count(*) > 0 FROM shop.daily_sales").fetchone()[0]
        assert dst.execute("SELECT price_gross = round(price * 1.2, 2) FROM shop.products WHERE id = 7").fetchone()[0]
        # Indexes and constraints exist on the target (built after the copy).
        assert (
            dst.execute("SELECT count(*) FROM pg_indexes WHERE schemaname IN ('shop', 'audit')").fetchone()[0]
            == src.execute("SELECT count(*) FROM pg_indexes WHERE schemaname IN ('shop', 'audit')").fetchone()[0]
        )
        assert dst.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f'").fetchone()[0] == 3
        # Hand-over: the source refuses writes, the target takes them (identity and standalone sequences continue).
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            src.execute("INSERT INTO audit.log_lines (line) VALUES ('late')")
        new_id = dst.execute("INSERT INTO shop.orders (customer_id, total) VALUES (1, 1) RETURNING id").fetchone()[0]
        assert new_id > src.execute("SELECT max(id) FROM shop.orders").fetchone()[0]
        dst.execute("INSERT INTO shop.invoices (order_id, amount) VALUES (1, 1)")
    assert result["state"] == "done" and result["changed"] is True
    assert all(t["verified"] for t in result["tables"]), [t for t in result["tables"] if not t["verified"]]
    assert {t["name"] for t in result["tables"]} >= {"shop.orders", "audit.events_2024", "audit.log_lines"}


def test_logical_cutover_under_writes_loses_no_committed_write(servers: dict[str, Cluster], tmp_path: Path) -> None:
    mig = Migration(servers, "writes", rows=5_000)
    writer = pgdata.Writer(mig.conninfo("source")).start()
    writer.wait_for(50)
    report = tmp_path / "report.json"
    copied = threading.Event()
    try:
        result = mig.run(report_path=str(report), hooks={"table_copied": lambda name: copied.set()})
    finally:
        writer.stop()
    assert copied.is_set()
    assert_target_complete(mig, writer, result)
    assert writer.refused > 0 or writer.ambiguous or writer.committed, "the writer ran through the fence"
    names = [p["name"] for p in result["phases"]]
    assert names == [
        "preflight",
        "snapshot",
        "schema",
        "copy",
        "indexes",
        "subscribe",
        "sync",
        "fence",
        "catchup",
        "sequences",
        "large_objects",
        "verify",
        "handover",
    ]
    assert 0 < result["write_downtime_s"] < 30
    assert result["lag_bytes_at_fence"] is not None
    seqs = {s["name"]: s for s in result["sequences"]}
    assert seqs["shop.invoice_no"]["owned"] is False and seqs["shop.invoice_no"]["target"] >= 5000
    assert {r["name"] for r in result["roles_created"]} <= {pgdata.ROLE_OWNER, pgdata.ROLE_APP}
    with mig.connect("target") as dst:
        owner = dst.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'shop'").fetchone()[0]
        assert owner == pgdata.ROLE_OWNER
    # The report has the figures and no password; the replication objects are gone.
    text = report.read_text()
    assert mig.endpoint("source")["password"] not in text and mig.endpoint("target")["password"] not in text
    assert json.loads(text)["write_downtime_s"] == result["write_downtime_s"]
    objects = mig.replication_objects()
    assert objects["slots"] == [] and objects["subscriptions"] == []
    assert objects["publications"] == ["fastier_cutover_src_writes"]  # the empty "done" record
    # Re-running changes nothing; rollback of a finished migration is refused.
    again = mig.run()
    assert again["changed"] is False and again["state"] == "done"
    refused = mig.fail(phase="rollback")
    assert "database of record" in str(refused)


@pytest.mark.slow
def test_million_rows_split_by_ctid_ranges(servers: dict[str, Cluster]) -> None:
    mig = Migration(servers, "million", rows=1_000_000)
    writer = pgdata.Writer(mig.conninfo("source"), pause_s=0.005).start()
    writer.wait_for(20)
    try:
        result = mig.run(split_tables_larger_than_mb=16, verify="checksums")
    finally:
        writer.stop()
    assert_target_complete(mig, writer, result)
    orders = next(t for t in result["tables"] if t["name"] == "shop.orders")
    assert orders["source_rows"] >= 1_000_000 and orders["source_checksum"] == orders["target_checksum"]
    assert result["copy"]["tasks"] > result["copy"]["tables"]  # big tables went in several ctid ranges


def test_check_mode_rehearses_and_changes_nothing(servers: dict[str, Cluster]) -> None:
    mig = Migration(servers, "check", rows=5_000)
    with mig.connect("source") as src, mig.connect("target") as dst:
        before = (pgdata.catalog_fingerprint(src), pgdata.catalog_fingerprint(dst))
    result = mig.run(check_mode=True, sample_mb=1)
    with mig.connect("source") as src, mig.connect("target") as dst:
        after = (pgdata.catalog_fingerprint(src), pgdata.catalog_fingerprint(dst))
    assert after == before
    rehearsal = result["rehearsal"]
    assert rehearsal["sample"]["table"] == "shop.orders" and rehearsal["sample"]["bytes"] > 0
    assert rehearsal["sizes"]["large_objects"] == 3
    predicted = rehearsal["predicted"]
    assert predicted["write_downtime_s"] > 0 and predicted["copy_s"] >= 0
    assert result["changed"] is True and result["method"] == "logical"


def test_preflight_names_tables_without_replica_identity(servers: dict[str, Cluster]) -> None:
    mig = Migration(servers, "nopk", rows=1_000, full_identity=False)
    failure = mig.fail()
    assert failure.phase == "preflight"
    message = str(failure)
    assert "audit.log_lines" in message and "no primary key" in message
    assert "REPLICA IDENTITY FULL" in message and "dump_restore" in message
    assert mig.replication_objects() == {"publications": [], "slots": [], "subscriptions": []}
    with mig.connect("target") as dst:
        assert pgdata.catalog_fingerprint(dst)["relations"] == []
    # The same source moves with dump_restore (no replication needed).
    result = mig.run(method="dump_restore")
    assert_target_complete(mig, None, result)
    assert result["method"] == "dump_restore"
    assert [p["name"] for p in result["phases"]][:3] == ["preflight", "fence", "schema"]


def test_target_dies_mid_copy(servers: dict[str, Cluster]) -> None:
    mig = Migration(servers, "killed", rows=5_000)
    target = servers["target"]

    def kill_target(name: str) -> None:
        target._run(["pg_ctl", "stop", "-D", str(target.data_dir), "-m", "immediate", "-w"])

    try:
        failure = mig.fail(hooks={"table_copied": kill_target}, split_tables_larger_than_mb=0, jobs=1)
    finally:
        target.start()
    assert failure.phase == "copy"
    assert "target" in failure.cause and "partial copy" in failure.advice
    assert mig.source_accepts_writes()
    with mig.connect("source") as src:
        assert src.execute("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'fastier_cutover_src_killed'").fetchone()[0] == 0
        assert src.execute("SELECT count(*) FROM pg_publication WHERE pubname = 'fastier_cutover_src_killed'").fetchone()[0] == 0


def test_fence_timeout_lifts_the_fence_keeps_replication_and_retries(servers: dict[str, Cluster]) -> None:
    mig = Migration(servers, "stall", rows=2_000)
    writer = pgdata.Writer(mig.conninfo("source")).start()
    writer.wait_for(20)
    blocker = mig.connect("target")

    def stall_apply(engine: Any) -> None:
        # The apply worker waits for this lock, so the target cannot reach the fence LSN.
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE shop.orders IN ACCESS EXCLUSIVE MODE")
        writer.wait_for(writer.committed + 5)

    try:
        failure = mig.fail(hooks={"before_fence": stall_apply}, fence_timeout_s=1)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert failure.phase == "catchup"
    assert "did not reach the fence LSN" in failure.cause and "fence_timeout_s=1" in failure.cause
    assert "Replication keeps running" in failure.advice
    assert failure.result["write_downtime_s"] < 10
    assert mig.source_accepts_writes()
    writer.wait_for(writer.committed + 20)  # the application writes again
    assert mig.replication_objects()["slots"] == ["fastier_cutover_src_stall"]
    # A later call cuts over without a new copy, and loses nothing.
    try:
        result = mig.run(phase="cutover")
    finally:
        writer.stop()
    assert "copy" not in [p["name"] for p in result["phases"]]
    assert_target_complete(mig, writer, result)


def test_broken_subscription_during_fence_aborts_and_cleans_up(servers: dict[str, Cluster]) -> None:
    mig = Migration(servers, "broken", rows=2_000)

    def disable(engine: Any) -> None:
        # Replication stops; a write the target will never receive comes after.
        with mig.connect("target") as dst:
            dst.execute("ALTER SUBSCRIPTION fastier_cutover_src_broken DISABLE")
        with mig.connect("source") as src:
            while src.execute("SELECT active FROM pg_replication_slots WHERE slot_name = 'fastier_cutover_src_broken'").fetchone()[0]:
                time.sleep(0.05)
            src.execute("INSERT INTO audit.log_lines (line) VALUES ('never replicated')")

    failure = mig.fail(hooks={"before_fence": disable})
    assert failure.phase == "catchup"
    assert "stopped applying changes (disabled)" in failure.cause
    assert "fence was lifted" in failure.advice and "lost nothing" in failure.advice
    assert mig.source_accepts_writes()
    assert mig.replication_objects() == {"publications": [], "slots": [], "subscriptions": []}


def test_verification_mismatch_aborts_and_restores_writes(servers: dict[str, Cluster]) -> None:
    mig = Migration(servers, "mismatch", rows=2_000)

    def corrupt(engine: Any) -> None:
        with mig.connect("target") as dst:
            dst.execute("UPDATE shop.products SET price = price + 1 WHERE id = 3")

    failure = mig.fail(hooks={"before_verify": corrupt})
    assert failure.phase == "verify"
    assert "shop.products: checksum differs with the same row count (200 rows)" in failure.cause
    assert "fence was lifted" in failure.advice
    bad = [t for t in failure.result["tables"] if not t["verified"]]
    assert [t["name"] for t in bad] == ["shop.products"]
    assert mig.source_accepts_writes()
    assert mig.replication_objects() == {"publications": [], "slots": [], "subscriptions": []}


def test_copy_then_sync_then_rollback(servers: dict[str, Cluster]) -> None:
    mig = Migration(servers, "phases", rows=2_000)
    before = mig.run(phase="status")
    assert before["state"] is None and before["changed"] is False
    copied = mig.run(phase="copy")
    assert copied["state"] == "copied" and copied["replication"]["subscription"] is None
    assert mig.replication_objects()["slots"] == ["fastier_cutover_src_phases"]
    with mig.connect("source") as src:
        src.execute("INSERT INTO shop.invoices (order_id, amount) VALUES (42, 4.2)")  # after the snapshot
    synced = mig.run(phase="sync")
    assert synced["state"] == "syncing" and synced["replication"]["subscription"] == "fastier_cutover_src_phases"
    with mig.connect("target") as dst:
        assert dst.execute("SELECT count(*) FROM shop.invoices WHERE order_id = 42").fetchone()[0] == 1  # streamed
    again = mig.run(phase="sync")
    assert again["changed"] is False
    # status reads the record on the source only: the target may be unreachable.
    status = Cutover({**mig.params(phase="status"), "target": {**mig.endpoint("target"), "port": 9}}).run()
    assert status["state"] == "syncing" and status["method"] == "logical" and status["changed"] is False
    assert status["replication"]["slot"] == "fastier_cutover_src_phases" and status["replication"]["lag_bytes"] is not None
    rolled = mig.run(phase="rollback")
    assert rolled["changed"] is True and rolled["state"] is None
    assert mig.replication_objects() == {"publications": [], "slots": [], "subscriptions": []}
    assert mig.run(phase="rollback")["changed"] is False
    assert mig.run(phase="status")["state"] is None
    assert mig.source_accepts_writes()


def test_handover_commands_repoint_inside_the_downtime_and_a_failure_never_unfences(servers: dict[str, Cluster], tmp_path: Path) -> None:
    marker = tmp_path / "repointed"
    mig = Migration(servers, "repoint", rows=500)
    done = mig.run(handover={"commands": [f"touch {marker}"]})
    assert marker.exists() and done["state"] == "done"
    assert [p["name"] for p in done["phases"]][-2:] == ["handover", "repoint"]
    # write_downtime_s runs to the end of the commands: it covers the fence and every phase after it.
    fenced = sum(p["seconds"] for p in done["phases"][[p["name"] for p in done["phases"]].index("fence") :])
    assert done["write_downtime_s"] >= fenced - 0.01

    broken = Migration(servers, "repoint_fails", rows=500)
    failure = broken.fail(handover={"commands": ["false"]})
    assert failure.phase == "repoint" and "database of record" in str(failure)
    assert failure.result["state"] == "done" and failure.result["write_downtime_s"] > 0
    # The hand-over stands: the source stays read-only, nothing was unfenced; a re-run is ok.
    with broken.connect("source") as src, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        src.execute("INSERT INTO audit.log_lines (line) VALUES ('after the hand-over')")
    again = broken.run(handover={"commands": ["false"]})
    assert again["state"] == "done" and again["changed"] is False


def test_fallback_after_the_handover_returns_every_target_write_to_the_source(servers: dict[str, Cluster]) -> None:
    mig = Migration(servers, "fallback", rows=1_000)
    done = mig.run(fallback=True)
    assert done["state"] == "done" and "start_fallback" in [p["name"] for p in done["phases"]]
    assert mig.run(phase="status")["fallback_running"] is True
    # The application now writes to the target; the source stays read-only for it but receives every change.
    writer = pgdata.Writer(mig.conninfo("target")).start()
    try:
        writer.wait_for(40)
        with mig.connect("source") as src, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            src.execute("INSERT INTO audit.log_lines (line) VALUES ('the app writes to the target now')")
        back = mig.run(phase="fallback", handover={"commands": ["true"]})
    finally:
        writer.stop()
    assert back["state"] == "rolled_back" and back["changed"] is True and back["write_downtime_s"] > 0
    assert all(t["verified"] for t in back["tables"])
    # Independent checks: every write committed on the target is on the source, no sequence of the source is behind.
    with mig.connect("source") as src, mig.connect("target") as dst:
        assert writer.committed > 40, writer.errors[-3:]
        assert pgdata.missing_writes(src, writer) == []
        assert pgdata.sequences_behind(dst, src) == []
        assert pgdata.table_counts(src) == pgdata.table_counts(dst)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):  # the target is the old primary now
            dst.execute("INSERT INTO audit.log_lines (line) VALUES ('late')")
    assert mig.source_accepts_writes()
    objects = mig.replication_objects()
    assert objects["slots"] == [] and objects["subscriptions"] == []
    assert mig.run(phase="fallback")["changed"] is False
    assert mig.run(phase="rollback")["changed"] is False
    assert "rolled back" in str(mig.fail())  # a new attempt needs a fresh target


def test_release_ends_the_fallback_replication(servers: dict[str, Cluster]) -> None:
    mig = Migration(servers, "release", rows=300)
    mig.run(fallback=True)
    with mig.connect("target") as dst:
        assert dst.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0] == 1
    released = mig.run(phase="release")
    assert released["changed"] is True and released["state"] == "done"
    with mig.connect("source") as src, mig.connect("target") as dst:
        assert dst.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0] == 0
        assert src.execute("SELECT count(*) FROM pg_subscription").fetchone()[0] == 0
    assert mig.run(phase="release")["changed"] is False
    assert "no fallback replication" in str(mig.fail(phase="fallback"))


def test_verify_at_a_paused_point_keeps_checksums_out_of_the_fence(servers: dict[str, Cluster]) -> None:
    mig = Migration(servers, "pause", rows=5_000)
    writer = pgdata.Writer(mig.conninfo("source")).start()
    writer.wait_for(50)
    during: list[int] = []

    def count_writes(engine: Any) -> None:
        during.append(writer.committed)

    try:
        result = mig.run(verify_point="pause", hooks={"at_verification_point": count_writes})
    finally:
        writer.stop()
    assert_target_complete(mig, writer, result)
    names = [p["name"] for p in result["phases"]]
    assert names.index("verify_at_pause") < names.index("fence") < names.index("verify")
    verification = result["verification"]
    assert verification["point"] == "pause" and verification["lsn"] and verification["pause_s"] < 5
    # Writes went on while the checksums ran (the pause ended before them).
    assert writer.committed > during[0]
    seconds = {p["name"]: p["seconds"] for p in result["phases"]}
    assert seconds["verify"] < seconds["verify_at_pause"]


def test_mismatch_at_the_paused_point_never_fences(servers: dict[str, Cluster]) -> None:
    mig = Migration(servers, "pausebad", rows=2_000)

    def corrupt(engine: Any) -> None:
        with mig.connect("target") as dst:
            dst.execute("DELETE FROM shop.order_items WHERE order_id = 1")

    failure = mig.fail(verify_point="pause", hooks={"before_verify": corrupt})
    assert failure.phase == "verify_at_pause"
    assert "shop.order_items: row count differs" in failure.cause
    assert "never fenced" in failure.advice
    assert failure.result["write_downtime_s"] is None
    assert mig.source_accepts_writes()
    assert mig.replication_objects() == {"publications": [], "slots": [], "subscriptions": []}


class Crash(BaseException):
    """Stands for the module being killed: the engine's handlers do not catch it."""


def crash(engine: Any) -> None:
    raise Crash


def test_a_run_killed_while_fenced_is_resumed_by_the_next_call(servers: dict[str, Cluster]) -> None:
    mig = Migration(servers, "crash", rows=2_000)
    with pytest.raises(Crash):
        mig.run(hooks={"after_fence": crash})
    with mig.connect("source") as src, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        src.execute("INSERT INTO audit.log_lines (line) VALUES ('fenced')")  # the killed run left the fence
    result = mig.run()  # lifts that fence, fences again, finishes
    assert any("left the source fenced" in line for line in result["progress_log"])
    assert_target_complete(mig, None, result)


def test_rollback_lifts_the_fence_of_a_killed_dump_restore(servers: dict[str, Cluster]) -> None:
    mig = Migration(servers, "crashdump", rows=1_000)
    with pytest.raises(Crash):
        mig.run(method="dump_restore", hooks={"after_fence": crash})
    refused = mig.fail(method="dump_restore")
    assert "stopped while the source was fenced" in refused.cause and "phase: rollback" in refused.advice
    rolled = mig.run(phase="rollback")
    assert rolled["changed"] is True
    assert mig.source_accepts_writes()
    assert mig.replication_objects() == {"publications": [], "slots": [], "subscriptions": []}
