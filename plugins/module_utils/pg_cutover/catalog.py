# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What is in a database: read-only catalog queries, plain dicts out."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

USER_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'"
NOT_EXTENSION_MEMBER = "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')"

TABLES_SQL = """
SELECT c.oid, n.nspname, c.relname, format('%I.%I', n.nspname, c.relname) AS qname, c.relkind,
       c.relpersistence, c.relreplident, c.relispartition, c.relrowsecurity,
       pg_table_size(c.oid) AS bytes, greatest(c.reltuples, 0)::bigint AS est_rows,
       pg_relation_size(c.oid) / current_setting('block_size')::int AS pages,
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk,
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident) AS has_ri_index
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f') AND {schemas} AND {not_ext}
ORDER BY bytes DESC, qname
""".format(schemas=USER_SCHEMAS, not_ext=NOT_EXTENSION_MEMBER)  # noqa: S608 - identifiers quoted by the catalog (format('%I.%I'))

COLUMNS_SQL = """
SELECT a.attrelid, a.attname, a.attgenerated <> '' AS generated,
       t.typname, t.typtype, t.typcategory, t.typnamespace = 'pg_catalog'::regnamespace AS builtin,
       et.typname AS elem_typname, coalesce(et.typnamespace = 'pg_catalog'::regnamespace, false) AS elem_builtin,
       format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

SEQUENCES_SQL = """
SELECT format('%I.%I', n.nspname, c.relname) AS qname, s.seqincrement,
       EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
               AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')) AS owned
FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {schemas} AND {not_ext}
ORDER BY 1
""".format(schemas=USER_SCHEMAS, not_ext=NOT_EXTENSION_MEMBER)  # noqa: S608 - identifiers quoted by the catalog (format('%I.%I'))

ROLES_SQL = """
WITH used AS (
    SELECT d.refobjid AS oid FROM pg_shdepend d
    WHERE d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND d.refclassid = 'pg_authid'::regclass
    UNION
    SELECT acl.grantee FROM pg_namespace n, aclexplode(n.nspacl) acl WHERE {schemas}
    UNION
    SELECT n.nspowner FROM pg_namespace n WHERE {schemas}
)
SELECT r.rolname, r.rolcanlogin, r.rolinherit, r.rolconnlimit, r.rolvaliduntil::text, r.rolsuper
FROM pg_roles r JOIN used ON used.oid = r.oid
WHERE r.rolname !~ '^pg_'
ORDER BY 1
""".format(schemas=USER_SCHEMAS)  # noqa: S608 - identifiers quoted by the catalog (format('%I.%I'))

PRIVILEGES_SQL = """
SELECT r.rolsuper, r.rolreplication, r.rolbypassrls,
       pg_get_userbyid(d.datdba) = current_user AS db_owner,
       coalesce((SELECT pg_has_role(current_user, 'rds_superuser', 'MEMBER') FROM pg_roles WHERE rolname = 'rds_superuser'), false) AS rds_superuser,
       coalesce((SELECT pg_has_role(current_user, 'rds_replication', 'MEMBER') FROM pg_roles WHERE rolname = 'rds_replication'), false) AS rds_replication,
       pg_has_role(current_user, 'pg_signal_backend', 'MEMBER') AS signal_backend,
       has_database_privilege(current_database(), 'CREATE') AS can_create
FROM pg_roles r, pg_database d
WHERE r.rolname = current_user AND d.datname = current_database()
"""

SETTINGS = (
    "wal_level",
    "max_replication_slots",
    "max_wal_senders",
    "max_logical_replication_workers",
    "max_worker_processes",
    "server_version",
    "data_directory",
)


def rows_as_dicts(cursor):
    names = [col.name for col in cursor.description]
    return [dict((name, row[i]) for i, name in enumerate(names)) for row in cursor.fetchall()]


def tables(conn):
    """Every user table (regular, partitioned parent, foreign) with sizes and identity facts."""
    found = rows_as_dicts(conn.execute(TABLES_SQL))
    by_oid = dict((t["oid"], t) for t in found)
    for table in found:
        table["columns"] = []
    if by_oid:
        for col in rows_as_dicts(conn.execute(COLUMNS_SQL, (list(by_oid),))):
            by_oid[col.pop("attrelid")]["columns"].append(col)
    return found


def copyable(all_tables):
    """The tables that hold rows: regular tables and leaf partitions."""
    return [t for t in all_tables if t["relkind"] == "r"]


def sequences(conn):
    return rows_as_dicts(conn.execute(SEQUENCES_SQL))


def sequence_values(conn, names):
    """{qname: (last_value, is_called)} read from each sequence itself."""
    values = {}
    names = list(names)
    for start in range(0, len(names), 200):
        batch = names[start : start + 200]
        query = " UNION ALL ".join("SELECT {0}::text, last_value, is_called FROM {1}".format(quote_literal(name), name) for name in batch)  # noqa: S608 - identifiers quoted by the catalog (format('%I.%I'))
        for name, last_value, is_called in conn.execute(query):
            values[name] = (int(last_value), bool(is_called))
    return values


def quote_literal(text):
    return "'" + str(text).replace("'", "''") + "'"


def large_objects(conn):
    """[(oid, owner)] of every large object."""
    return [(int(r[0]), r[1]) for r in conn.execute("SELECT oid, pg_get_userbyid(lomowner) FROM pg_largeobject_metadata ORDER BY oid")]


def large_object_bytes(conn):
    """Total size of the large objects, or None when this user may not read pg_largeobject."""
    try:
        with conn.transaction():
            return int(conn.execute("SELECT coalesce(sum(octet_length(data)), 0) FROM pg_largeobject").fetchone()[0])
    except Exception:  # pylint: disable=broad-except  # privilege: knowable only to superusers
        return None


def settings(conn):
    found = dict(conn.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(SETTINGS),)).fetchall())
    found["server_version_num"] = int(conn.info.server_version)
    return found


def privileges(conn):
    return rows_as_dicts(conn.execute(PRIVILEGES_SQL))[0]


def roles_used(conn):
    """Roles that own or were granted something in this database (not predefined ones)."""
    return rows_as_dicts(conn.execute(ROLES_SQL))


def role_password_hashes(conn, names):
    """{role: password hash} when this user may read pg_authid (superuser), else {}."""
    try:
        with conn.transaction():
            return dict(
                conn.execute("SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(%s) AND rolpassword IS NOT NULL", (list(names),)).fetchall()
            )
    except Exception:  # pylint: disable=broad-except  # not a superuser: roles get no password
        return {}


def existing_roles(conn):
    return set(r[0] for r in conn.execute("SELECT rolname FROM pg_roles"))


def extensions(conn):
    return dict(conn.execute("SELECT extname, extversion FROM pg_extension ORDER BY 1").fetchall())


def available_extensions(conn):
    return set(r[0] for r in conn.execute("SELECT name FROM pg_available_extensions"))


def database_size(conn):
    return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])


def user_relations(conn, limit=5):
    """(count, first few names) of relations a cut-over would collide with."""
    query = (  # noqa: S608 - identifiers quoted by the catalog (format('%I.%I'))
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {0} AND {1} ORDER BY 1"
    ).format(USER_SCHEMAS, NOT_EXTENSION_MEMBER)
    names = [r[0] for r in conn.execute(query)]
    return len(names), names[:limit]


def database_read_only_setting(conn):
    """The database-level default_transaction_read_only ('on', 'off' or None when unset)."""
    row = conn.execute(
        "SELECT setconfig FROM pg_db_role_setting WHERE setrole = 0 AND setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchone()
    for item in row[0] if row and row[0] else []:
        key, dummy, value = item.partition("=")
        if key == "default_transaction_read_only":
            return value
    return None


def populated_matviews(conn):
    return [r[0] for r in conn.execute("SELECT format('%I.%I', schemaname, matviewname) FROM pg_matviews WHERE ispopulated ORDER BY 1")]


def prepared_transactions(conn):
    return int(conn.execute("SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()").fetchone()[0])
