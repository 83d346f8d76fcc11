#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_recovery_check
version_added: 0.1.0
short_description: Check that a restored PostgreSQL database holds what the live one held at the recovery point
description:
  - Compares a restored database (from a snapshot or a point-in-time restore) with the live database as of the recovery
    point, and measures the recovery point objective actually achieved - for restores and disaster-recovery drills.
  - For each key table - its rows in the copy; with a timestamp column, the rows the live database holds up to the recovery
    point must all be in the copy, and the copy must hold no row newer than the point; the newest timestamp in the copy.
  - The canary - the newest marker written on the live database before the recovery point must be in the copy.
  - "C(rpo_s) = I(reference_time) (when the disaster is declared, for example the drill's start) minus the newest data in
    the copy (key tables and canary)."
  - Read-only on both databases (its sessions are read-only), so check mode runs it as well.
  - Rows stamped within I(boundary_s) of the recovery point are left out of the comparison - a timestamp is usually when its
    transaction started, not when it committed. Counts as of the point assume rows are not deleted afterwards (orders, page
    views, canaries); pick key tables of that kind.
author:
  - Fastier platform team (@fastier)
requirements:
  - psycopg >= 3.1
options:
  restored:
    description: The restored database (e.g. the drill's temporary instance).
    type: dict
    required: true
    suboptions: &endpoint
      host:
        description: Host name or IP address.
        type: str
        default: localhost
      port:
        description: Port.
        type: int
        default: 5432
      dbname:
        description: Database name.
        type: str
        required: true
      user:
        description: User name.
        type: str
        required: true
      password:
        description: Password (never logged).
        type: str
      sslmode:
        description: libpq C(sslmode).
        type: str
        default: prefer
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
      connect_timeout:
        description: Seconds to wait for a connection.
        type: int
        default: 10
  live:
    description: The live database, to compare with as of the recovery point. Without it only the copy is examined.
    type: dict
    suboptions: *endpoint
  recovery_time:
    description: The recovery point (ISO 8601) - the snapshot's creation time, or the time restored to.
    type: str
    required: true
  reference_time:
    description: When the disaster is declared (ISO 8601), for C(rpo_s); default now.
    type: str
  key_tables:
    description: Tables to compare, each C(name) (C(table) or C(schema.table)) and optional C(timestamp_column).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The table.
        type: str
        required: true
      timestamp_column:
        description: A column with the time each row was written (e.g. C(created_at)).
        type: str
  canary:
    description: A table of markers written on the live database (e.g. by the drill before the backup), C(table) and C(column).
    type: dict
    suboptions:
      table:
        description: The canary table.
        type: str
        required: true
      column:
        description: Its timestamp column.
        type: str
        default: written_at
  boundary_s:
    description: Seconds around the recovery point left out of the comparison.
    type: float
    default: 2.0
  fail_on_mismatch:
    description: Fail (with every problem listed) when the copy is not what the live database held at the point.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: The drill's copy holds the data of the snapshot
  fastier.platform.pg_recovery_check:
    restored: {host: "{{ drill.endpoint }}", dbname: fastier, user: fastier, password: "{{ drill_password }}", sslmode: require}
    live: {host: "{{ database_outputs.endpoint_address }}", dbname: fastier, user: fastier, password: "{{ master_password }}", sslmode: require}
    recovery_time: "{{ snapshot.snapshot_create_time }}"
    reference_time: "{{ drill_started_at }}"
    key_tables:
      - {name: orders, timestamp_column: created_at}
      - {name: page_views, timestamp_column: viewed_at}
    canary: {table: fastier_dr.canary}
  register: recovered
"""

RETURN = r"""
verified:
  description: Whether the copy is what the live database held at the recovery point (no problem found).
  returned: always
  type: bool
  sample: true
problems:
  description: What does not match, one sentence each.
  returned: always
  type: list
  elements: str
  sample: ["orders: 120 row(s) restored, 121 the live database held up to the recovery point"]
recovery_time:
  description: The recovery point (UTC).
  returned: always
  type: str
  sample: "2026-11-22T18:00:00.000000Z"
reference_time:
  description: The reference time (UTC).
  returned: always
  type: str
  sample: "2026-11-22T18:05:00.000000Z"
newest_data:
  description: The newest timestamp found in the copy (key tables and canary).
  returned: always
  type: str
  sample: "2026-11-22T17:59:58.120000Z"
rpo_s:
  description: Seconds of data the copy lacks - reference time minus newest data. Null when the copy has no timestamped row.
  returned: always
  type: float
  sample: 301.88
tables:
  description: Per key table - rows in the copy, rows the live database held up to the point, newest timestamp, problems.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "orders", "restored_rows": 121, "live_rows_at_recovery_point": 121, "restored_newest": "2026-11-22T17:59:58.120000Z",
            "restored_after_recovery_point": 0, "verified": true, "problems": []}]
canary:
  description: The canary found in the copy and the one expected from the live database.
  returned: when I(canary) is given
  type: dict
  sample: {"table": "fastier_dr.canary", "restored_newest": "2026-11-22T17:59:30.000000Z",
           "live_newest_before_recovery_point": "2026-11-22T17:59:30.000000Z", "verified": true, "problems": []}
restored:
  description: The copy as C(user@host:port/dbname) (no password).
  returned: always
  type: str
  sample: fastier@127.0.0.1:41234/fastier
"""

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.fastier.platform.plugins.module_utils.common import FastierModule
from ansible_collections.fastier.platform.plugins.module_utils.pg_cutover.conn import HAS_PSYCOPG
from ansible_collections.fastier.platform.plugins.module_utils.pg_cutover.conn import PSYCOPG_IMPORT_ERROR
from ansible_collections.fastier.platform.plugins.module_utils.pg_cutover.conn import Endpoint
from ansible_collections.fastier.platform.plugins.module_utils.pg_cutover.conn import endpoint_spec
from ansible_collections.fastier.platform.plugins.module_utils.pg_cutover.conn import scrub
from ansible_collections.fastier.platform.plugins.module_utils import recovery


def connect(module, role, params, secrets):
    endpoint = Endpoint(role, params, "recovery_check")
    try:
        conn = endpoint.connect(autocommit=True)
        conn.execute("SET default_transaction_read_only = on")
        conn.execute("SET TimeZone = 'UTC'")
        return endpoint, conn
    except Exception as err:  # pylint: disable=broad-except  # psycopg's errors: say which side, never the password
        module.fail_json(msg="cannot connect to the {0} database {1}: {2}".format(role, endpoint.label(), scrub(str(err).strip(), secrets)))


def main():
    module = FastierModule(
        argument_spec=dict(
            restored=dict(type="dict", required=True, options=endpoint_spec()),
            live=dict(type="dict", options=endpoint_spec()),
            recovery_time=dict(type="str", required=True),
            reference_time=dict(type="str"),
            # "key" as in key tables, not a secret
            key_tables=dict(
                type="list", elements="dict", default=[], no_log=False, options=dict(name=dict(type="str", required=True), timestamp_column=dict(type="str"))
            ),
            canary=dict(type="dict", options=dict(table=dict(type="str", required=True), column=dict(type="str", default="written_at"))),
            boundary_s=dict(type="float", default=2.0),
            fail_on_mismatch=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    if not HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg"), exception=PSYCOPG_IMPORT_ERROR)
    params = module.params
    secrets = [p["password"] for p in (params["restored"], params["live"]) if p and p.get("password")]
    try:
        recovery.parse_time(params["recovery_time"])
        if params["reference_time"]:
            recovery.parse_time(params["reference_time"])
        for table in params["key_tables"]:
            recovery.qualified(table["name"])
    except ValueError as err:
        module.fail_json(msg="invalid input: {0}".format(err))
    restored, restored_conn = connect(module, "restored", params["restored"], secrets)
    live_conn = None
    if params["live"]:
        live_conn = connect(module, "live", params["live"], secrets)[1]
    try:
        verdict = recovery.check(
            restored_conn,
            live_conn,
            params["recovery_time"],
            params["key_tables"],
            canary=params["canary"],
            reference_time=params["reference_time"],
            boundary_s=params["boundary_s"],
        )
    except Exception as err:  # pylint: disable=broad-except  # a missing table or column: say which
        module.fail_json(msg="checking the restored database {0} failed: {1}".format(restored.label(), scrub(str(err).strip(), secrets)))
    finally:
        for conn in (restored_conn, live_conn):
            if conn is not None:
                conn.close()
    verdict["restored"] = restored.label()
    if params["fail_on_mismatch"] and not verdict["verified"]:
        module.fail_json(msg="the restored database is not what the live one held at the recovery point: " + "; ".join(verdict["problems"]), **verdict)
    module.exit_json(changed=False, **verdict)


if __name__ == "__main__":
    main()
