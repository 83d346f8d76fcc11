"""Pure helpers of rds_cutover: copy plan, checksum SQL, names, conninfo, predictions."""

from __future__ import annotations

import os
import stat
from typing import Any

import pytest

from plugins.module_utils.pg_cutover import conn, copy, replication, tools, verify
from plugins.module_utils.pg_cutover.engine import CutoverFailed, predict


def col(name: str, typname: str = "int4", **overrides: Any) -> dict[str, Any]:
    base = {
        "attname": name,
        "generated": False,
        "typname": typname,
        "typtype": "b",
        "typcategory": "N",
        "builtin": True,
        "elem_typname": None,
        "elem_builtin": False,
        "type": typname,
    }
    base.update(overrides)
    return base


def tbl(qname: str, size: int, pages: int = 0, columns: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"qname": qname, "bytes": size, "pages": pages, "est_rows": 1000, "columns": columns or [col("id")]}


# -- copy plan ---------------------------------------------------------------------------


def test_plan_splits_big_tables_into_page_ranges_largest_first():
    big = tbl("shop.orders", 1000, pages=100)
    small = tbl("shop.products", 50, pages=5)
    tasks = copy.plan([small, big], jobs=2, split_bytes=300)
    ranges = [t["range"] for t in tasks if t["table"] is big]
    assert ranges == [(0, 25), (25, 50), (50, 75), (75, None)]  # the last range is open
    assert tasks[-1]["table"] is small and tasks[-1]["range"] is None
    assert copy.plan([big], jobs=2, split_bytes=0)[0]["range"] is None


def test_copy_sql_leaves_generated_columns_out_and_imports_the_snapshot():
    table = tbl("shop.products", 10, columns=[col("id"), col("price", "numeric"), col("price_gross", "numeric", generated=True), col('we"ird')])
    task = {"table": table, "range": (10, 20), "est_bytes": 10}
    src = copy.source_sql(task, "binary", snapshot="00000003-0000001B-1")
    assert src.startswith("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '00000003-0000001B-1'; ")
    assert 'COPY (SELECT "id", "price", "we""ird" FROM ONLY shop.products WHERE ctid >= \'(10,0)\'::tid AND ctid < \'(20,0)\'::tid)' in src
    assert copy.target_sql(task, "binary") == 'SET synchronous_commit = off; COPY shop.products ("id", "price", "we""ird") FROM STDIN (FORMAT binary)'
    assert copy.describe(task) == "shop.products (pages 10-19)"


# -- verification SQL ----------------------------------------------------------------------------


def test_hash_safe_columns_hash_natively_others_as_text():
    columns = [
        col("id", "int8"),
        col("status", "order_status", typtype="e", builtin=False),  # enums hash their OID: text
        col("email", "email", typtype="d", builtin=False),  # domains: text
        col("tags", "_text", typcategory="A", elem_typname="text", elem_builtin=True),
        col("spots", "_point", typcategory="A", elem_typname="point", elem_builtin=True),
        col("payload", "json"),
    ]
    expr = verify.row_hash_expression(tbl("t", 1, columns=columns))
    assert expr == 'hash_record_extended(ROW(t."id", t."status"::text, t."email"::text, t."tags", t."spots"::text, t."payload"::text), 0)'
    md5 = verify.row_hash_expression(tbl("t", 1, columns=columns[:1]), algorithm="md5")
    assert md5 == "('x' || substr(md5(ROW(t.\"id\")::text), 1, 16))::bit(64)::bigint"


def test_table_queries_sum_hashes_over_ranges():
    table = tbl("shop.orders", 1, columns=[col("id")])
    assert verify.table_query(table, "counts", "hash") == "SELECT count(*), NULL FROM ONLY shop.orders AS t"
    query = verify.table_query(table, "checksums", "hash", (0, 8))
    assert query == (
        'SELECT count(*), coalesce(sum(hash_record_extended(ROW(t."id"), 0)), 0)::text FROM ONLY shop.orders AS t '
        "WHERE ctid >= '(0,0)'::tid AND ctid < '(8,0)'::tid"
    )
    assert verify.ranges(10, 4) == [(0, 4), (4, 8), (8, None)]
    assert verify.ranges(3, 4) == [None]


# -- names, conninfo, passfile, LSNs --------------------------------------------------------------------


def test_object_names_follow_slot_rules():
    assert replication.object_name("Fastier Prod-1") == "fastier_cutover_fastier_prod_1"
    assert len(replication.object_name("x" * 100)) == 63
    assert replication.object_name("!!!") == "fastier_cutover_default"


def test_conninfo_quotes_values_and_the_labels_hide_the_password():
    endpoint = conn.Endpoint("source", {"host": "db.internal", "port": 5432, "dbname": "app db", "user": "o'neil", "password": "p@ss w\\rd"}, "m1")
    info = endpoint.subscription_conninfo()
    assert "dbname='app db'" in info and "user='o\\'neil'" in info and "password='p@ss w\\\\rd'" in info
    assert "password" not in endpoint.dsn()
    assert "p@ss" not in endpoint.label() and endpoint.label() == "o'neil@db.internal:5432/app db"
    assert conn.scrub("failed for p@ss w\\rd", [endpoint.password]) == "failed for ********"
    replica = conn.Endpoint("source", {"host": "10.0.0.5", "dbname": "a", "user": "u", "host_from_target": "legacy.vpc", "port_from_target": 6432})
    assert "host=legacy.vpc port=6432" in replica.subscription_conninfo()


def test_passfile_is_private_escaped_and_removed():
    endpoint = conn.Endpoint("target", {"host": "h", "port": 5433, "dbname": "d:b", "user": "u", "password": "a:b\\c"})
    passfile = conn.Passfile([endpoint])
    try:
        assert stat.S_IMODE(os.stat(passfile.path).st_mode) == 0o600
        with open(passfile.path) as handle:
            assert handle.read() == "h:5433:d\\:b:u:a\\:b\\\\c\n"
        assert passfile.env()["PGPASSFILE"] == passfile.path and "PGPASSWORD" not in passfile.env()
    finally:
        passfile.close()
    assert not os.path.exists(passfile.folder)


def test_lsn_arithmetic():
    assert conn.lsn_to_int("16/B374D848") == (0x16 << 32) + 0xB374D848
    assert conn.int_to_lsn(conn.lsn_to_int("0/FAF59F8")) == "0/FAF59F8"
    assert replication.reached("1/0", "0/FFFFFFFF") and not replication.reached("0/10", "0/11") and not replication.reached(None, "0/1")


def test_restore_list_skips_extensions_the_target_has():
    lines = [
        "2; 3079 16638 EXTENSION - citext ",
        "3551; 0 0 COMMENT - EXTENSION citext ",
        "3; 3079 16639 EXTENSION - postgis ",
        "218; 1259 16762 TABLE shop customers shop_owner",
    ]
    assert tools.filter_list(lines, skip_extensions={"citext"}) == [lines[2], lines[3]]


def test_find_bindir_names_what_is_missing(tmp_path):
    with pytest.raises(tools.ToolError, match="does not hold pg_dump, pg_restore, psql"):
        tools.find_bindir(str(tmp_path))


# -- predictions and failures ------------------------------------------------------------------------------


def test_prediction_keeps_the_copy_out_of_the_logical_fence():
    sizes = {"table_bytes": 1_000_000_000, "index_bytes": 200_000_000, "lo_bytes": 0, "unlogged_bytes": 0}
    rates = {"copy_bytes_s": 50_000_000, "verify_bytes_s": 100_000_000}
    logical = predict(sizes, rates, jobs=2, method="logical", max_lag_bytes=16_000_000, sequences=10, tables_count=8)
    dump = predict(sizes, rates, jobs=2, method="dump_restore", max_lag_bytes=16_000_000, sequences=10, tables_count=8)
    assert logical["copy_s"] == pytest.approx(1e9 / (50e6 * 1.8), abs=0.1)
    assert logical["verify_s"] == pytest.approx(1e9 / (100e6 * 1.8), abs=0.1)
    assert logical["write_downtime_s"] == pytest.approx(1.05 + 0.32 + logical["verify_s"], abs=0.1)
    assert dump["write_downtime_s"] > dump["copy_s"] > logical["write_downtime_s"]


def test_failure_message_has_phase_cause_and_advice():
    err = CutoverFailed("catchup", "the target did not reach the fence LSN 0/5", "The fence was lifted.", {"changed": True})
    assert str(err) == "cut-over failed in phase 'catchup': the target did not reach the fence LSN 0/5. The fence was lifted."
    assert err.result == {"changed": True}


def test_prediction_with_verification_before_the_fence_leaves_it_out_of_the_downtime():
    sizes = {"table_bytes": 1_000_000_000, "index_bytes": 0, "lo_bytes": 0, "unlogged_bytes": 0}
    rates = {"copy_bytes_s": 50_000_000, "verify_bytes_s": 100_000_000}
    common = {"jobs": 2, "method": "logical", "max_lag_bytes": 1_000_000, "sequences": 0, "tables_count": 4}
    fenced = predict(sizes, rates, **common)
    paused = predict(sizes, rates, verify_in_fence=False, **common)
    assert paused["verify_s"] == fenced["verify_s"] > 1
    assert paused["write_downtime_s"] == pytest.approx(fenced["write_downtime_s"] - fenced["verify_s"], abs=0.1)
