# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Preflight: everything that would stop a cut-over, found before it starts.

``findings(facts, method, ...)`` is pure (facts in, findings out) so every
rule is unit-tested. A finding names the object and the fix:

    {"severity": "error" | "warning", "check": "replica_identity",
     "object": "audit.log_lines", "message": "...", "fix": "..."}

Errors stop the cut-over (all of them are reported at once); warnings are
returned and logged.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def finding(severity, check, obj, message, fix):
    return {"severity": severity, "check": check, "object": obj, "message": message, "fix": fix}


def mb(value):
    return "{0:.1f} MB".format((value or 0) / 1e6)


def identity_problems(tables):
    """Tables logical replication cannot update or delete in: (qname, why)."""
    out = []
    for table in tables:
        if table["relkind"] != "r" or table["relpersistence"] != "p":
            continue
        ident = table["relreplident"]
        if ident == "n":
            out.append((table["qname"], "REPLICA IDENTITY NOTHING"))
        elif ident == "d" and not table["has_pk"]:
            out.append((table["qname"], "no primary key"))
        elif ident == "i" and not table["has_ri_index"]:
            out.append((table["qname"], "replica identity index missing"))
    return out


def logical_possible(facts):
    """Whether the source allows the ``logical`` method (for the default method)."""
    priv = facts["source_priv"]
    return facts["source_settings"].get("wal_level") == "logical" and (priv["rolsuper"] or priv["rolreplication"] or priv["rds_replication"])


def findings(facts, method, fence_spec, resuming=False):
    out = []
    src_major, tgt_major = facts["source_major"], facts["target_major"]
    src_priv, tgt_priv = facts["source_priv"], facts["target_priv"]
    tables = facts["tables"]

    # -- versions and tools ----------------------------------------------------------------
    if tgt_major < src_major:
        out.append(
            finding(
                "error",
                "versions",
                "target",
                "the target runs PostgreSQL {0}, older than the source's {1}".format(tgt_major, src_major),
                "create the target with engine version {0} or later".format(src_major),
            )
        )
    if facts["tool_major"] < src_major:
        out.append(
            finding(
                "error",
                "client_tools",
                facts.get("bindir") or "pg_dump",
                "pg_dump {0} cannot dump a PostgreSQL {1} server".format(facts["tool_major"], src_major),
                "install postgresql-client-{0} (or newer) where the module runs, or set pg_bin_dir".format(src_major),
            )
        )
    if method == "logical" and src_major < 10:
        out.append(
            finding("error", "versions", "source", "PostgreSQL {0} has no logical replication (10 or later)".format(src_major), "use method: dump_restore")
        )

    # -- extensions -------------------------------------------------------------------------------
    for name in sorted(set(facts["source_extensions"]) - set(facts["target_available_extensions"])):
        out.append(
            finding(
                "error",
                "extensions",
                name,
                "extension {0} is installed on the source but not available on the target".format(name),
                "install it on the target server (on RDS: pick an engine version that supports it) or drop it from the source",
            )
        )

    # -- replication settings ----------------------------------------------------------------
    if method == "logical":
        settings = facts["source_settings"]
        if settings.get("wal_level") != "logical":
            out.append(
                finding(
                    "error",
                    "wal_level",
                    "source",
                    "wal_level is {0}; logical replication needs logical".format(settings.get("wal_level")),
                    "set wal_level = logical and restart the source (RDS: rds.logical_replication = 1), or use method: dump_restore",
                )
            )
        free_slots = int(settings.get("max_replication_slots") or 0) - facts["slots_used"]
        if free_slots < 1:
            out.append(
                finding(
                    "error",
                    "replication_slots",
                    "source",
                    "no free replication slot ({0} of {1} used)".format(facts["slots_used"], settings.get("max_replication_slots")),
                    "drop an unused slot (pg_replication_slots) or raise max_replication_slots and restart",
                )
            )
        free_senders = int(settings.get("max_wal_senders") or 0) - facts["senders_used"]
        if free_senders < 1:
            out.append(
                finding(
                    "error",
                    "wal_senders",
                    "source",
                    "no free WAL sender ({0} of {1} used)".format(facts["senders_used"], settings.get("max_wal_senders")),
                    "raise max_wal_senders and restart the source",
                )
            )
        workers = int(facts["target_settings"].get("max_logical_replication_workers") or 0) - facts["target_subs_used"]
        if workers < 1:
            out.append(
                finding(
                    "error",
                    "replication_workers",
                    "target",
                    "no free logical replication worker on the target",
                    "raise max_logical_replication_workers on the target (RDS: parameter group) or drop an unused subscription",
                )
            )
        for qname, why in identity_problems(tables):
            out.append(
                finding(
                    "error",
                    "replica_identity",
                    qname,
                    "{0} has {1}: its UPDATEs and DELETEs cannot be replicated (and would fail on the source once it is published)".format(qname, why),
                    "add a primary key, or ALTER TABLE {0} REPLICA IDENTITY FULL (slower apply), or use method: dump_restore".format(qname),
                )
            )
        if not (src_priv["rolsuper"] or src_priv["rolreplication"] or src_priv["rds_replication"]):
            out.append(
                finding(
                    "error",
                    "privileges",
                    "source",
                    "the source user may not replicate (needs REPLICATION, superuser, or rds_replication on RDS)",
                    "ALTER ROLE <source user> REPLICATION, or connect as a superuser",
                )
            )
        if not src_priv["rolsuper"] and facts["not_owned_tables"]:
            out.append(
                finding(
                    "error",
                    "privileges",
                    ", ".join(facts["not_owned_tables"][:5]),
                    "a publication of {0} table(s) needs a superuser or their owner".format(len(facts["not_owned_tables"])),
                    "connect to the source as a superuser or as the owner of every table",
                )
            )
        if not (tgt_priv["rolsuper"] or tgt_priv["rds_superuser"]):
            out.append(
                finding(
                    "error",
                    "privileges",
                    "target",
                    "the target user may not create a subscription (superuser, or rds_superuser on RDS)",
                    "connect to the target as its master user",
                )
            )

    # -- what the copy cannot carry or carries inside the fence ----------------------------------
    unlogged = [t for t in tables if t["relkind"] == "r" and t["relpersistence"] == "u"]
    if unlogged and method == "logical":
        out.append(
            finding(
                "warning",
                "unlogged_tables",
                ", ".join(t["qname"] for t in unlogged[:10]),
                "{0} unlogged table(s) ({1}) are not replicated: they are copied again inside the write fence".format(
                    len(unlogged), mb(sum(t["bytes"] for t in unlogged))
                ),
                "ALTER TABLE ... SET LOGGED to keep them out of the write downtime",
            )
        )
    foreign = [t["qname"] for t in tables if t["relkind"] == "f"]
    if foreign:
        out.append(
            finding(
                "warning",
                "foreign_tables",
                ", ".join(foreign[:10]),
                "{0} foreign table(s) are created on the target but their data stays where it is".format(len(foreign)),
                "check that the target can reach the foreign server",
            )
        )
    if facts["lo_count"]:
        out.append(
            finding(
                "warning",
                "large_objects",
                "pg_largeobject",
                "{0} large object(s){1} are not replicated: they are copied inside the write fence".format(
                    facts["lo_count"], " ({0})".format(mb(facts["lo_bytes"])) if facts["lo_bytes"] is not None else ""
                ),
                "move them to bytea columns to keep them out of the write downtime",
            )
        )
    unreadable = facts["unreadable_tables"]
    if unreadable:
        out.append(
            finding(
                "error",
                "privileges",
                ", ".join(unreadable[:10]),
                "the source user cannot SELECT {0} table(s)".format(len(unreadable)),
                "GRANT SELECT on them to the source user, or connect as a superuser",
            )
        )
    rls = [t["qname"] for t in tables if t["relrowsecurity"]]
    if rls and not (src_priv["rolsuper"] or src_priv["rolbypassrls"]):
        out.append(
            finding(
                "error",
                "row_security",
                ", ".join(rls[:10]),
                "row-level security would hide rows of {0} table(s) from the copy".format(len(rls)),
                "connect as a superuser or a role with BYPASSRLS",
            )
        )

    # -- space and emptiness ------------------------------------------------------------------------
    needed = int(facts["db_bytes"] * 1.1)
    free = facts.get("target_free_bytes")
    if free is not None and free < needed:
        out.append(
            finding(
                "error",
                "target_space",
                "target",
                "the source database is {0}; the target has {1} free (needs about {2})".format(mb(facts["db_bytes"]), mb(free), mb(needed)),
                "grow the target's storage (RDS: allocated_storage) before the cut-over",
            )
        )
    count, names = facts["target_relations"]
    if count and not resuming:
        out.append(
            finding(
                "error",
                "target_not_empty",
                "target",
                "the target database already has {0} relation(s) ({1}{2})".format(count, ", ".join(names), ", ..." if count > len(names) else ""),
                "cut over into an empty database: drop and recreate it (DROP DATABASE / CREATE DATABASE), or point target.dbname at an empty one",
            )
        )
    if not tgt_priv["can_create"] and not tgt_priv["rolsuper"]:
        out.append(
            finding("error", "privileges", "target", "the target user may not CREATE in the target database", "connect as the database owner or master user")
        )

    # -- the fence ---------------------------------------------------------------------------------
    if facts["source_read_only"] == "on" and not resuming:
        out.append(
            finding(
                "error",
                "source_read_only",
                "source",
                "the source database is already read-only (ALTER DATABASE ... SET default_transaction_read_only = on): is a cut-over done or half done?",
                "check the source; ALTER DATABASE <db> RESET default_transaction_read_only if it should accept writes",
            )
        )
    if (fence_spec or {}).get("read_only", True) and not (src_priv["rolsuper"] or src_priv["db_owner"]):
        out.append(
            finding(
                "error",
                "privileges",
                "source",
                "the fence sets the source database read-only: that needs its owner or a superuser",
                "connect to the source as the database owner, or set fence.read_only: false and fence writes with fence.commands",
            )
        )
    if (fence_spec or {}).get("terminate_sessions", True) and not (src_priv["rolsuper"] or src_priv["signal_backend"]):
        out.append(
            finding(
                "warning",
                "privileges",
                "source",
                "the source user can end only its own role's sessions at the fence",
                "GRANT pg_signal_backend TO <source user>, or stop the application with fence.commands",
            )
        )
    if facts["prepared"]:
        out.append(
            finding(
                "warning",
                "prepared_transactions",
                "source",
                "{0} prepared transaction(s) are open on the source; the fence cannot end them".format(facts["prepared"]),
                "COMMIT PREPARED or ROLLBACK PREPARED them before the cut-over",
            )
        )
    return out


def errors(found):
    return [f for f in found if f["severity"] == "error"]


def summary(found):
    """One line per error, for the failure message."""
    return "; ".join("{0} [{1}]: {2} -> {3}".format(f["object"], f["check"], f["message"], f["fix"]) for f in errors(found))
