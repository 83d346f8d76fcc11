#!/usr/bin/env python3
"""Cut-over benchmark: our copy against pg_dump/pg_restore and pgcopydb, under write load.

    .venv/bin/python -m bench.cutover [--size-mb 1024] [--jobs 2] [--skip-pgcopydb] [--json out.json]

Builds one source database of about ``--size-mb`` (pgbench tables, scale
from the size, plus the cut-over test data set: enums, jsonb, partitions,
large objects...) in a throwaway PostgreSQL 15 with ``wal_level=logical``,
and copies it, under a pgbench write load on the source (``-R`` limited so
the load is the same for every tool), into fresh databases of a second
server with:

* ``pg_dump -Fd -j N`` then ``pg_restore -j N`` (dump and restore times);
* ``pgcopydb clone --table-jobs N --index-jobs N`` (installed with apt-get
  when missing and we are root);
* ``rds_cutover`` (this collection's engine, ``jobs=N``): the copy to a
  usable target (schema, data, indexes), then replication, the fence,
  catch-up, sequences, verification and hand-over; one run per ``--ours``
  entry (default: checksums in the fence, counts in the fence, checksums at a
  paused point before the fence), each on a fresh target database.

Prints one table (times, MB/s of table data, ratios to ours) and the fence
figures (write_downtime_s, lag at fence, catch-up and verify seconds). A
benchmark, not a test: it asserts nothing. Everything runs on loopback and
is removed at the end (``--keep`` keeps the clusters' folder).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from local_aws.postgres import Cluster, find_bindir, free_port
from plugins.module_utils.pg_cutover.engine import Cutover
from tests.integration import pgdata

MB = 1e6


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def dsn(cluster: Cluster, dbname: str, url: bool = False) -> str:
    if url:
        return f"postgresql://postgres@{cluster.host}:{cluster.port}/{dbname}"
    return f"host={cluster.host} port={cluster.port} user=postgres dbname={dbname}"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix="bench-cutover-"))
        self.root.chmod(0o755)
        self.bindir = find_bindir()
        self.source = Cluster("source", self.root, free_port(), logical=True, extra_conf={"shared_buffers": "'256MB'", "max_wal_size": "'4GB'"})
        self.target = Cluster("target", self.root, free_port(), extra_conf={"shared_buffers": "'256MB'", "max_wal_size": "'4GB'"})
        self.passfile = self.root / "pgpass"
        self.load: subprocess.Popen | None = None
        self.rows: list[dict[str, Any]] = []
        self.fences: list[dict[str, Any]] = []

    # -- setup ---------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        return {**os.environ, "PGPASSFILE": str(self.passfile), "PATH": f"{self.bindir}:{os.environ.get('PATH', '')}"}

    def start(self) -> None:
        for cluster in (self.source, self.target):
            cluster.start()
        lines = [f"{c.host}:{c.port}:*:postgres:{c.superuser_password}" for c in (self.source, self.target)]
        self.passfile.write_text("\n".join(lines) + "\n")
        self.passfile.chmod(0o600)

    def build(self) -> int:
        scale = max(1, round(self.args.size_mb / 15.5))
        with self.source.connect() as conn:
            conn.execute("CREATE DATABASE bench")
        with self.target.connect() as conn:  # roles are per server: the other tools do not create them
            conn.execute(f"CREATE ROLE {pgdata.ROLE_OWNER} NOLOGIN")
            conn.execute(f"CREATE ROLE {pgdata.ROLE_APP} LOGIN")
        log(f"building the source: pgbench scale {scale} (generated server-side) + the cut-over data set")
        started = time.monotonic()
        subprocess.run(
            [f"{self.bindir}/pgbench", "-i", "-q", "-s", str(scale), "--init-steps=dtGvp", dsn(self.source, "bench")],
            env=self.env(),
            check=True,
            capture_output=True,
        )
        with psycopg.connect(**self.source.conninfo("bench"), autocommit=True) as conn:
            conn.execute("ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY")
            pgdata.build(conn, rows=self.args.rows)
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
            self.table_bytes = int(
                conn.execute(
                    "SELECT sum(pg_table_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
                ).fetchone()[0]
            )
        log(f"source ready in {time.monotonic() - started:.0f}s: database {size / MB:.0f} MB, tables {self.table_bytes / MB:.0f} MB")
        return size

    # -- write load ----------------------------------------------------------------------------
    def start_load(self) -> None:
        self.stop_load()
        self.load = subprocess.Popen(  # noqa: S603 - fixed argv
            [f"{self.bindir}/pgbench", "-n", "-c", "2", "-j", "1", "-R", str(self.args.tps), "-T", "36000", dsn(self.source, "bench")],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop_load(self) -> None:
        if self.load is not None:
            self.load.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.load.wait(timeout=10)
            if self.load.poll() is None:
                self.load.kill()
            self.load = None

    def fresh_target(self, name: str) -> None:
        with self.target.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')

    # -- the contenders ----------------------------------------------------------------------------
    def run_pg_dump(self) -> None:
        jobs = str(self.args.jobs)
        self.fresh_target("dump")
        folder = self.root / "dump"
        self.start_load()
        started = time.monotonic()
        subprocess.run(
            [f"{self.bindir}/pg_dump", "-Fd", "-j", jobs, "-f", str(folder), dsn(self.source, "bench")], env=self.env(), check=True, capture_output=True
        )
        dumped = time.monotonic()
        subprocess.run([f"{self.bindir}/pg_restore", "-j", jobs, "-d", dsn(self.target, "dump"), str(folder)], env=self.env(), check=True, capture_output=True)
        done = time.monotonic()
        self.stop_load()
        shutil.rmtree(folder, ignore_errors=True)
        total = done - started
        self.rows.append(
            {
                "method": f"pg_dump -Fd -j{jobs} + pg_restore -j{jobs}",
                "total_s": total,
                "copy_mb_s": self.table_bytes / MB / total,
                "note": f"dump {dumped - started:.1f}s, restore {done - dumped:.1f}s",
            }
        )
        log(f"pg_dump/pg_restore: {total:.1f}s")

    def ensure_pgcopydb(self) -> str | None:
        found = shutil.which("pgcopydb")
        if found:
            return found
        if os.geteuid() != 0:
            log("pgcopydb is not installed and we are not root: skipped")
            return None
        log("installing pgcopydb (apt-get)")
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        proc = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "pgcopydb"],
            check=False,
            capture_output=True,
            text=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if proc.returncode != 0:
            log(f"apt-get install pgcopydb failed: {proc.stderr.strip()[-300:]}")
            return None
        return shutil.which("pgcopydb")

    def run_pgcopydb(self) -> None:
        binary = self.ensure_pgcopydb()
        if not binary:
            return
        jobs = str(self.args.jobs)
        self.fresh_target("pgcopydb")
        work = self.root / "pgcopydb"
        self.start_load()
        started = time.monotonic()
        proc = subprocess.run(
            [
                binary,
                "clone",
                "--source",
                dsn(self.source, "bench", url=True),
                "--target",
                dsn(self.target, "pgcopydb", url=True),
                "--table-jobs",
                jobs,
                "--index-jobs",
                jobs,
                "--dir",
                str(work),
                "--no-owner",
                "--no-acl",
            ],  # fmt: skip
            env=self.env(),
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
        total = time.monotonic() - started
        self.stop_load()
        if proc.returncode != 0:
            log(f"pgcopydb failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-600:]}")
            return
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout.strip().splitlines()
        self.rows.append(
            {
                "method": f"pgcopydb clone --table-jobs {jobs} --index-jobs {jobs}",
                "total_s": total,
                "copy_mb_s": self.table_bytes / MB / total,
                "note": (version or [""])[0][:40],
            }
        )
        log(f"pgcopydb: {total:.1f}s")

    def run_ours(self, verify: str, point: str) -> None:
        name = f"ours_{verify}_{point}"
        self.fresh_target(name)
        # A fresh migration id per run; the source stays writable between runs
        # (the previous hand-over left it read-only: undo that for the next run).
        with psycopg.connect(**self.source.conninfo("bench"), autocommit=True) as conn:
            conn.execute("SET default_transaction_read_only = off")
            conn.execute("ALTER DATABASE bench RESET default_transaction_read_only")
        params = {
            "source": {"host": self.source.host, "port": self.source.port, "dbname": "bench", "user": "postgres", "password": self.source.superuser_password},
            "target": {"host": self.target.host, "port": self.target.port, "dbname": name, "user": "postgres", "password": self.target.superuser_password},
            "jobs": self.args.jobs,
            "verify": verify,
            "verify_point": point,
            "migration_id": name,
            "max_lag_bytes": self.args.max_lag_mb * 1024 * 1024,
            "fence_timeout_s": 600,
            "report_path": str(self.root / f"{name}.json"),
        }
        self.start_load()
        time.sleep(2)
        started = time.monotonic()
        result = Cutover(params, log=lambda m: log("  " + m) if self.args.verbose else None).run()
        total = time.monotonic() - started
        self.stop_load()
        phases = {p["name"]: p["seconds"] for p in result["phases"]}
        to_copied = sum(phases.get(n, 0) for n in ("preflight", "snapshot", "schema", "copy", "indexes"))
        copy_s = phases["copy"]
        self.rows.append(
            {
                "method": f"rds_cutover jobs={self.args.jobs} (to a copied target)",
                "total_s": to_copied,
                "copy_mb_s": self.table_bytes / MB / to_copied,
                "note": f"copy phase {copy_s:.1f}s = {self.table_bytes / MB / copy_s:.0f} MB/s of tables, {result['copy']['mb_per_s']} MB/s streamed",
                "ours": True,
                "verify": f"verify={verify}@{point}",
            }
        )
        self.fences.append(
            {
                "verify": f"{verify}@{point}",
                "total_to_handover_s": round(total, 1),
                "pause_s": (result.get("verification") or {}).get("pause_s"),
                "verify_at_pause_s": phases.get("verify_at_pause"),
                "write_downtime_s": result["write_downtime_s"],
                "lag_bytes_at_fence": result["lag_bytes_at_fence"],
                "fence_s": phases.get("fence"),
                "catchup_s": phases.get("catchup"),
                "sequences_s": phases.get("sequences"),
                "large_objects_s": phases.get("large_objects"),
                "verify_s": phases.get("verify", 0.0),
                "handover_s": phases.get("handover"),
                "tables_verified": sum(1 for t in result["tables"] if t.get("verified")),
            }
        )
        log(f"rds_cutover ({verify}@{point}): copied in {to_copied:.1f}s, hand-over after {total:.1f}s, write downtime {result['write_downtime_s']}s")

    def rehearse(self) -> dict[str, Any]:
        self.fresh_target("rehearsal")
        params = {
            "source": {"host": self.source.host, "port": self.source.port, "dbname": "bench", "user": "postgres", "password": self.source.superuser_password},
            "target": {
                "host": self.target.host,
                "port": self.target.port,
                "dbname": "rehearsal",
                "user": "postgres",
                "password": self.target.superuser_password,
            },
            "jobs": self.args.jobs,
            "migration_id": "rehearsal",
        }
        return Cutover(params, check_mode=True).run()["rehearsal"]

    # -- output --------------------------------------------------------------------------------------
    def report(self, db_bytes: int, rehearsal: dict[str, Any] | None) -> dict[str, Any]:
        ours = next((r for r in self.rows if r.get("ours")), None)
        print()
        load = f"pgbench -c2 -R{self.args.tps}"
        print(f"database {db_bytes / MB:.0f} MB, tables {self.table_bytes / MB:.0f} MB, jobs {self.args.jobs}, write load {load} on the source")
        print(f"{'method':68} {'total s':>8} {'MB/s':>7} {'time / ours':>11}  note")
        for row in self.rows:
            ratio = row["total_s"] / ours["total_s"] if ours else float("nan")
            label = row["method"] + (f" [{row['verify']}]" if row.get("verify") else "")
            print(f"{label:68} {row['total_s']:8.1f} {row['copy_mb_s']:7.1f} {ratio:11.2f}  {row['note']}")
        print()
        heads = ["to hand-over s", "write_downtime_s", "lag@fence B", "fence s", "catchup s", "seq s", "LO s", "verify s", "handover s", "pause s"]
        print(f"{'verify@point':20} " + " ".join(f"{h:>{max(len(h), 7)}}" for h in heads))
        keys = [
            "total_to_handover_s",
            "write_downtime_s",
            "lag_bytes_at_fence",
            "fence_s",
            "catchup_s",
            "sequences_s",
            "large_objects_s",
            "verify_s",
            "handover_s",
            "pause_s",
        ]
        for fence in self.fences:
            cells = []
            for head, key in zip(heads, keys, strict=True):
                value = fence[key] or 0
                cells.append(
                    f"{value:>{max(len(head), 7)}d}" if isinstance(value, int) and key == "lag_bytes_at_fence" else f"{float(value):>{max(len(head), 7)}.3f}"
                )
            print(f"{fence['verify']:20} " + " ".join(cells))
        if rehearsal:
            sample = rehearsal["sample"] or {}
            print()
            print(f"rehearsal (check mode) predicted: {json.dumps(rehearsal['predicted'])}")
            print(f"  sample {sample.get('mb_per_s')} MB/s on {sample.get('table')}")
        return {"database_bytes": db_bytes, "table_bytes": self.table_bytes, "rows": self.rows, "fences": self.fences, "rehearsal": rehearsal}

    def close(self) -> None:
        self.stop_load()
        for cluster in (self.source, self.target):
            with contextlib.suppress(Exception):
                cluster.stop()
        if not self.args.keep:
            shutil.rmtree(self.root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="approximate database size (default 1024)")
    parser.add_argument("--rows", type=int, default=50_000, help="orders in the cut-over data set part (default 50000)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--tps", type=int, default=200, help="pgbench write load, transactions per second (default 200)")
    parser.add_argument("--max-lag-mb", type=int, default=16)
    parser.add_argument("--skip-pgcopydb", action="store_true")
    parser.add_argument("--skip-dump", action="store_true")
    parser.add_argument(
        "--ours", default="checksums:fence,counts:fence,checksums:pause", help="our runs as verify:verify_point, comma-separated (default: all three)"
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the clusters' folder")
    parser.add_argument("--verbose", action="store_true", help="print the module's progress lines")
    args = parser.parse_args()
    bench = Bench(args)
    try:
        bench.start()
        db_bytes = bench.build()
        rehearsal = bench.rehearse()
        if not args.skip_dump:
            bench.run_pg_dump()
        if not args.skip_pgcopydb:
            bench.run_pgcopydb()
        for spec in args.ours.split(","):
            verify, point = spec.split(":")
            bench.run_ours(verify, point)
        figures = bench.report(db_bytes, rehearsal)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2, default=str) + "\n")
    finally:
        bench.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
