"""Preflight rules of rds_cutover (pure: facts in, findings out)."""

from __future__ import annotations

import copy
from typing import Any

from plugins.module_utils.pg_cutover import preflight


def table(qname: str, **overrides: Any) -> dict[str, Any]:
    base = {
        "qname": qname,
        "relkind": "r",
        "relpersistence": "p",
        "relreplident": "d",
        "has_pk": True,
        "has_ri_index": True,
        "relrowsecurity": False,
        "bytes": 8192,
    }
    base.update(overrides)
    return base


PRIV = {
    "rolsuper": True,
    "rolreplication": False,
    "rolbypassrls": False,
    "db_owner": True,
    "rds_superuser": False,
    "rds_replication": False,
    "signal_backend": False,
    "can_create": True,
}

FACTS: dict[str, Any] = {
    "bindir": "/usr/lib/postgresql/15/bin",
    "tool_major": 15,
    "source_major": 15,
    "target_major": 15,
    "source_settings": {"wal_level": "logical", "max_replication_slots": "10", "max_wal_senders": "10"},
    "target_settings": {"max_logical_replication_workers": "4"},
    "source_priv": PRIV,
    "target_priv": PRIV,
    "tables": [table("shop.orders")],
    "source_extensions": {"plpgsql": "1.0", "citext": "1.6"},
    "target_available_extensions": {"plpgsql", "citext", "pgcrypto"},
    "slots_used": 0,
    "senders_used": 0,
    "target_subs_used": 0,
    "lo_count": 0,
    "lo_bytes": 0,
    "db_bytes": 10_000_000,
    "target_free_bytes": None,
    "target_relations": (0, []),
    "source_read_only": None,
    "prepared": 0,
    "unreadable_tables": [],
    "not_owned_tables": [],
}


def facts(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(FACTS)
    out.update(changes)
    return out


def checks(found: list[dict[str, Any]], severity: str = "error") -> list[str]:
    return [f["check"] for f in found if f["severity"] == severity]


def test_a_healthy_pair_has_no_finding():
    assert preflight.findings(facts(), "logical", None) == []


def test_tables_without_identity_are_named_with_the_fixes():
    tables = [
        table("shop.orders"),
        table("audit.log_lines", has_pk=False),
        table("audit.full", has_pk=False, relreplident="f"),
        table("audit.nothing", relreplident="n"),
        table("audit.parent", relkind="p", has_pk=False),
    ]
    found = preflight.findings(facts(tables=tables), "logical", None)
    named = {f["object"]: f for f in found if f["check"] == "replica_identity"}
    assert set(named) == {"audit.log_lines", "audit.nothing"}  # FULL is fine; a partitioned parent holds no rows
    assert "no primary key" in named["audit.log_lines"]["message"]
    assert "ALTER TABLE audit.log_lines REPLICA IDENTITY FULL" in named["audit.log_lines"]["fix"]
    assert "dump_restore" in named["audit.log_lines"]["fix"]
    # dump_restore does not need replica identity
    assert preflight.findings(facts(tables=tables), "dump_restore", None) == []


def test_logical_needs_wal_level_slots_senders_and_workers():
    found = preflight.findings(
        facts(
            source_settings={"wal_level": "replica", "max_replication_slots": "2", "max_wal_senders": "2"},
            slots_used=2,
            senders_used=2,
            target_subs_used=4,
        ),
        "logical",
        None,
    )
    assert checks(found) == ["wal_level", "replication_slots", "wal_senders", "replication_workers"]
    assert "rds.logical_replication = 1" in found[0]["fix"]


def test_versions_tools_and_extensions():
    found = preflight.findings(facts(target_major=14, tool_major=14, source_extensions={"plpgsql": "1.0", "postgis": "3.4"}), "logical", None)
    assert checks(found) == ["versions", "client_tools", "extensions"]
    assert found[2]["object"] == "postgis"
    assert "postgresql-client-15" in found[1]["fix"]


def test_a_non_empty_target_is_refused_unless_the_migration_is_resumed():
    busy = facts(target_relations=(12, ["public.a", "public.b"]))
    found = preflight.findings(busy, "logical", None)
    assert checks(found) == ["target_not_empty"]
    assert "12 relation(s) (public.a, public.b, ...)" in found[0]["message"]
    assert "DROP DATABASE" in found[0]["fix"]
    assert preflight.findings(busy, "logical", None, resuming=True) == []


def test_privileges_on_both_sides():
    weak = dict(PRIV, rolsuper=False, db_owner=False, signal_backend=False)
    found = preflight.findings(facts(source_priv=weak, target_priv=weak, not_owned_tables=["shop.orders"]), "logical", None)
    assert checks(found) == ["privileges"] * 4
    assert checks(found, "warning") == ["privileges"]  # sessions of other roles cannot be ended
    messages = " ".join(f["message"] for f in found)
    assert "may not replicate" in messages and "subscription" in messages and "read-only" in messages
    # An RDS source (rds_replication) and an RDS master target (rds_superuser) are enough.
    rds = dict(PRIV, rolsuper=False, rds_replication=True, rds_superuser=True, signal_backend=True)
    assert preflight.findings(facts(source_priv=rds, target_priv=rds), "logical", {"read_only": True}) == []


def test_unlogged_tables_and_large_objects_are_warnings_that_say_the_fence_grows():
    tables = [table("shop.orders"), table("shop.cache", relpersistence="u", bytes=5_000_000)]
    found = preflight.findings(facts(tables=tables, lo_count=3, lo_bytes=2_000_000), "logical", None)
    assert checks(found) == []
    warnings = {f["check"]: f for f in found}
    assert "copied again inside the write fence" in warnings["unlogged_tables"]["message"]
    assert "5.0 MB" in warnings["unlogged_tables"]["message"]
    assert "3 large object(s) (2.0 MB)" in warnings["large_objects"]["message"]


def test_space_rls_read_only_source_and_unreadable_tables():
    found = preflight.findings(
        facts(
            target_free_bytes=5_000_000,
            tables=[table("shop.secrets", relrowsecurity=True)],
            source_priv=dict(PRIV, rolsuper=False, rolreplication=True),
            source_read_only="on",
            unreadable_tables=["shop.secrets"],
        ),
        "logical",
        None,
    )
    assert sorted(checks(found)) == ["privileges", "row_security", "source_read_only", "target_space"]
    space = next(f for f in found if f["check"] == "target_space")
    assert "needs about 11.0 MB" in space["message"]


def test_summary_lists_each_error_with_its_fix():
    found = preflight.findings(facts(tables=[table("audit.log_lines", has_pk=False)]), "logical", None)
    text = preflight.summary(found)
    assert text.startswith("audit.log_lines [replica_identity]: audit.log_lines has no primary key")
    assert "-> add a primary key" in text


def test_logical_is_the_default_only_when_the_source_allows_it():
    assert preflight.logical_possible(facts())
    assert not preflight.logical_possible(facts(source_settings={"wal_level": "replica"}))
    assert not preflight.logical_possible(facts(source_priv=dict(PRIV, rolsuper=False)))
