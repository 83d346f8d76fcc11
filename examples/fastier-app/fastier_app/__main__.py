"""Command line of the Fastier app (run from the app folder, or with it on PYTHONPATH).

    python -m fastier_app migrate                     apply pending migrations
    python -m fastier_app seed --customers N --orders M [--force]
    python -m fastier_app verify-writes --log FILE    acknowledged writes of a writer log are in the database?
    python -m fastier_app show-config                 which database, version, environment (no credentials)
    python -m fastier_app serve [--port 8000]         development server (use gunicorn for anything else)

The database comes from the same settings as the web app (``DATABASE_URL``,
``DATABASE_SECRET_ARN`` + ``DB_*``, or ``PG*``; ``FASTIER_ENV_FILE`` too).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

import psycopg

from .config import ConfigError, DatabaseConfig, Settings


def _connect(config: DatabaseConfig) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(**config.params(), autocommit=True)
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SystemExit(f"error: cannot connect to {config.address()}: {config.scrub(first)}") from None


def cmd_migrate(args: argparse.Namespace, config: DatabaseConfig) -> int:
    from .migrations import MigrationError, migrate

    print(f"database {config.address()}")
    with _connect(config) as conn:
        try:
            migrate(conn, lock_timeout=args.lock_timeout)
        except MigrationError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


def cmd_seed(args: argparse.Namespace, config: DatabaseConfig) -> int:
    from .seed import SeedError, seed

    print(f"database {config.address()}")
    with _connect(config) as conn:
        try:
            seed(conn, customers=args.customers, orders=args.orders, products=args.products, rng_seed=args.seed, force=args.force)
        except SeedError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


def verify_writes(conn: psycopg.Connection[Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Compare a writer log's acknowledged writes with the database (plain SQL on the tables).

    Every acknowledged create must be there (same id, customer, total and
    items, found by its client_ref). Every order the writer updated must have
    the last acknowledged status, or the target of a later update whose answer
    was lost (it may have committed: the log cannot tell).
    """
    creates = {r["client_ref"]: r for r in records if r.get("op") == "create" and r.get("ok")}
    last_ack: dict[str, str] = {}
    unconfirmed: dict[str, set[str]] = {}
    for record in records:
        if record.get("op") != "update":
            continue
        ref = record["client_ref"]
        if record.get("ok"):
            last_ack[ref] = record["order_status"]
            unconfirmed.pop(ref, None)
        elif record.get("http_status") is None or record["http_status"] >= 500:
            unconfirmed.setdefault(ref, set()).add(record["order_status"])
    refs = sorted(set(creates) | set(last_ack))
    found: dict[str, dict[str, Any]] = {}
    with conn.cursor() as cur:
        cur.execute(
            """SELECT o.client_ref::text, o.id, o.customer_id, o.total_cents, o.status,
                      (SELECT coalesce(jsonb_agg(jsonb_build_array(i.product_id, i.quantity) ORDER BY i.product_id, i.quantity), '[]')
                         FROM order_items i WHERE i.order_id = o.id) AS items
                 FROM orders o WHERE o.client_ref = ANY(%s::uuid[])""",
            (refs,),
        )
        for ref, oid, customer, total, status, items in cur:
            found[ref] = {"id": oid, "customer_id": customer, "total_cents": total, "status": status, "items": items}
    missing, mismatched, wrong_status = [], [], []
    for ref, ack in creates.items():
        row = found.get(ref)
        if row is None:
            missing.append({"client_ref": ref, "id": ack["id"], "ts": ack["ts"]})
            continue
        expected_items = sorted([item["product_id"], item["quantity"]] for item in ack["items"])
        if (row["id"], row["customer_id"], row["total_cents"], sorted(row["items"])) != (ack["id"], ack["customer_id"], ack["total_cents"], expected_items):
            mismatched.append({"client_ref": ref, "acknowledged": {k: ack[k] for k in ("id", "customer_id", "total_cents", "items")}, "database": row})
    for ref, status in last_ack.items():
        row = found.get(ref)
        if row is None:
            if ref not in creates:
                missing.append({"client_ref": ref, "updated_to": status})
            continue
        if row["status"] != status and row["status"] not in unconfirmed.get(ref, set()):
            wrong_status.append({"client_ref": ref, "id": row["id"], "acknowledged": status, "database": row["status"]})
    counts = Counter((r.get("op"), bool(r.get("ok"))) for r in records)
    return {
        "acknowledged_creates": len(creates),
        "acknowledged_updates": counts[("update", True)],
        "failed_requests": sum(v for (op, ok), v in counts.items() if not ok and op in ("create", "update")),
        "found": len([ref for ref in creates if ref in found]),
        "missing": missing,
        "mismatched": mismatched,
        "wrong_status": wrong_status,
        "ok": not (missing or mismatched or wrong_status),
    }


def cmd_verify_writes(args: argparse.Namespace, config: DatabaseConfig) -> int:
    from .writer import read_log

    records = read_log(args.log)
    with _connect(config) as conn:
        result = verify_writes(conn, records)
    result["database"] = config.address()
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


def cmd_show_config(args: argparse.Namespace, config: DatabaseConfig) -> int:
    settings = config.settings
    print(
        json.dumps(
            {
                "version": settings.version,
                "environment": settings.environment,
                "database": config.address(),
                "database_config": config.source,
                "env_file": settings.env_file,
                "env_file_error": settings.env_file_error,
                "problems": settings.problems,
            },
            indent=2,
        )
    )
    return 0


def cmd_serve(args: argparse.Namespace, config: DatabaseConfig) -> int:
    from .web import create_app

    create_app().run(host="127.0.0.1", port=args.port, debug=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastier_app", description="Fastier sample app: database tasks.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("migrate", help="apply pending migrations (each in its own transaction)")
    p.add_argument("--lock-timeout", type=float, default=60.0, help="seconds to wait for another migration run (default 60)")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser("seed", help="load demo data (refuses a non-empty database unless --force)")
    p.add_argument("--customers", type=int, default=1000)
    p.add_argument("--orders", type=int, default=5000)
    p.add_argument("--products", type=int, default=60, help="products, when the catalogue is empty (default 60)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42: the same data every time)")
    p.add_argument("--force", action="store_true", help="add rows to a database that has some")
    p.set_defaults(func=cmd_seed)
    p = sub.add_parser("verify-writes", help="check a writer log's acknowledged writes against the database")
    p.add_argument("--log", required=True)
    p.set_defaults(func=cmd_verify_writes)
    p = sub.add_parser("show-config", help="print the database address, version and environment (no credentials)")
    p.set_defaults(func=cmd_show_config)
    p = sub.add_parser("serve", help="development server on 127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve)
    args = parser.parse_args(argv)
    settings = Settings.load()
    return int(args.func(args, DatabaseConfig(settings)))


if __name__ == "__main__":
    sys.exit(main())
