#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rds_cutover
version_added: 0.1.0
short_description: Move a live PostgreSQL database to RDS with a short, measured write fence
description:
  - Copies a PostgreSQL database (the I(source), e.g. the legacy server) into an empty database on another server
    (the I(target), e.g. an RDS instance) while the application keeps writing to the source, then fences writes on the
    source for as short a time as possible, checks that the target has every committed write, and hands over.
  - "Method C(logical): preflight; a logical replication slot (pgoutput) whose exported snapshot the whole copy uses;
    the schema without secondary indexes and constraints (C(pg_dump) pre-data); a parallel C(COPY) of every table
    (big tables split by ctid ranges); indexes, constraints, foreign keys and triggers built in parallel after the data
    (C(pg_restore -j) post-data); a subscription on the target that streams the changes made since the snapshot
    until the lag is below I(max_lag_bytes); then the write fence, catch-up to the fence LSN, sequence sync (owned and
    standalone, never lowering a target value), large objects, verification of every table in parallel, and hand-over
    (replication removed, the source left read-only)."
  - "Method C(dump_restore), for sources that cannot replicate logically: fence first, then the same schema, parallel
    copy, indexes, sequences, large objects and verification. Writes are fenced for the whole copy."
  - "On any failure after the fence, the fence is lifted first (writes on the source restored, I(unfence) run): the
    source stays the database of record and no committed write is lost. The module fails with the phase, the cause and
    what to do."
  - The state of a migration lives in the source database itself (a publication named C(fastier_cutover_<migration_id>)
    and its comment), so I(phase=sync) can leave replication running for a later I(phase=cutover) call from another
    play, and a crashed run can be rolled back. After a successful hand-over an empty publication of that name records
    that the migration is done (a re-run reports C(ok)); C(DROP PUBLICATION) forgets it.
  - "Check mode is a rehearsal: preflight, sizes, a measured copy rate on a sample of the largest table, and a predicted
    copy time and write downtime. It changes nothing on either server (its sessions are read-only)."
  - Runs C(pg_dump), C(pg_restore) and C(psql) where the module runs (the controller for C(localhost)); they must be
    at least the source's major version.
author:
  - Fastier platform team (@fastier)
requirements:
  - psycopg >= 3.1
  - PostgreSQL client tools (pg_dump, pg_restore, psql) >= the source's major version
options:
  source:
    description:
      - The database to move. The user needs C(REPLICATION) (or superuser; C(rds_replication) on RDS) for I(method=logical),
        SELECT on every table, and ownership of the database (or superuser) for the default fence.
    type: dict
    required: true
    suboptions: &endpoint
      host:
        description: Host name or IP address of the server.
        type: str
        default: localhost
      port:
        description: Port of the server.
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
        description: Password (never logged, never in the report).
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
      host_from_target:
        description:
          - Only for I(source). The host the I(target) server uses to reach the source for replication
            (its subscription connects from the target's network). Defaults to I(host).
        type: str
      port_from_target:
        description: Only for I(source). The port the target server uses to reach the source. Defaults to I(port).
        type: int
  target:
    description:
      - The empty database to move into (e.g. the RDS instance's database). The user needs to be superuser or a member
        of C(rds_superuser) (RDS master user) for the subscription, and CREATE on the database.
      - C(host_from_target) and C(port_from_target) are ignored here.
    type: dict
    required: true
    suboptions: *endpoint
  method:
    description:
      - C(logical) replicates changes during and after the copy (short fence); C(dump_restore) fences first and copies
        while writes are stopped.
      - Default C(logical) when the source allows it (C(wal_level=logical) and a replication privilege), otherwise
        C(dump_restore) with a warning.
    type: str
    choices: [logical, dump_restore]
  phase:
    description:
      - C(all) runs everything (and continues a migration left at C(copy) or C(sync)).
      - C(copy) stops after the copy and the indexes; the slot keeps the changes since the snapshot (WAL grows on the
        source until the next call).
      - C(sync) also starts replication and returns when the lag is below I(max_lag_bytes), leaving it running.
      - "C(cutover) continues a migration left at C(copy) or C(sync): fence, catch-up, sequences, large objects,
        verification, hand-over."
      - C(rollback) lifts a fence left by a crashed run, removes the subscription, slot and publication, and leaves the
        target database as it is (drop and recreate it before a new attempt).
      - C(status) only reads where the migration stands from its record on the source (C(state), C(method), C(started),
        C(finished), replication lag); it changes nothing and does not contact the target.
      - "C(fallback), after a hand-over made with I(fallback=true): back to the source without losing the target's writes - the
        target fenced, the source caught up through the fallback replication, sequences and large objects copied back, every
        table verified, the source made writable again and I(handover) commands run (they must now point the application at
        the source); the target stays read-only. State C(rolled_back)."
      - C(release) removes the fallback replication (decommission); a fallback is impossible afterwards.
    type: str
    default: all
    choices: [all, copy, sync, cutover, rollback, status, fallback, release]
  fallback:
    description:
      - At the hand-over (inside the fence, both sides equal), start replication back from the target to the source - a slot and
        publication on the target, a subscription on the source, which stays read-only for the application - so that
        I(phase=fallback) can return to the source later without losing a write made on the target, until I(phase=release).
      - Needs the same PostgreSQL major on both sides, a superuser on the source (C(CREATE SUBSCRIPTION) before PostgreSQL 16),
        C(rds.logical_replication=1) on an RDS target, and the source reaching the target. The slot on the target retains WAL
        until I(phase=release) or I(phase=fallback) - do not leave it for weeks.
    type: bool
    default: false
  migration_id:
    description:
      - Names the migration's replication objects (C(fastier_cutover_<id>), lower-cased, other characters become C(_)).
      - Defaults to the source database name.
    type: str
  jobs:
    description: Parallel workers for the copy, the index builds (C(pg_restore -j)) and the verification (per server).
    type: int
    default: 4
  max_lag_bytes:
    description: The fence starts once the replication lag (source WAL position minus what the target confirmed) is this small.
    type: int
    default: 16777216
  sync_timeout_s:
    description:
      - How long to wait for the lag to fall below I(max_lag_bytes) before giving up (replication is left running, the
        source is never fenced).
    type: int
    default: 3600
  fence_timeout_s:
    description:
      - How long the write fence may last (catch-up, sequences, large objects, verification). When it runs out the fence
        is lifted and the cut-over aborted. With a healthy subscription, replication is left running so that
        I(phase=cutover) can try again without a new copy.
    type: int
    default: 60
  fence:
    description: How writes are stopped on the source, in this order - I(commands), I(sql), I(read_only), I(terminate_sessions).
    type: dict
    suboptions:
      read_only:
        description: C(ALTER DATABASE <db> SET default_transaction_read_only = on) (new sessions cannot write).
        type: bool
        default: true
      terminate_sessions:
        description: End every client session of the database that started before the database turned read-only.
        type: bool
        default: true
      sql:
        description: Extra statements run on the source database (e.g. C(REVOKE CONNECT ON DATABASE app FROM app_user)).
        type: list
        elements: str
        default: []
      commands:
        description:
          - Programs run where the module runs, before the database fence (e.g. C(systemctl stop fastier-worker)).
            Split like a shell would, without a shell; a non-zero exit aborts the cut-over.
        type: list
        elements: str
        default: []
  unfence:
    description:
      - The reverse of I(fence), run only when a cut-over is aborted after the fence (the database setting is restored
        automatically first). After a successful hand-over the source stays read-only and nothing is run.
    type: dict
    suboptions:
      sql:
        description: Statements run on the source database (e.g. C(GRANT CONNECT ...)).
        type: list
        elements: str
        default: []
      commands:
        description: Programs run where the module runs (e.g. C(systemctl start fastier-worker)).
        type: list
        elements: str
        default: []
  handover:
    description:
      - What points the application at the target, run right after the hand-over so that the measured I(write_downtime_s) ends
        when the application can write again (e.g. an environment file switched to the target, then a graceful reload of the
        application server).
    type: dict
    suboptions:
      commands:
        description:
          - Programs run where the module runs, in order, split like a shell would, without a shell.
          - The hand-over is final when they run, so a failing command does not lift the fence - the module fails saying so (the
            source stays read-only; do by hand what the command should have done), and a re-run reports the migration done.
        type: list
        elements: str
        default: []
  verify:
    description:
      - C(checksums) compares row counts and an order-independent checksum of every table (a 64-bit hash per row, summed);
        C(counts) compares row counts only; C(none) skips verification.
      - Verification runs inside the fence, so its duration is part of the write downtime (see the rehearsal's prediction).
    type: str
    default: checksums
    choices: [checksums, counts, none]
  verify_point:
    description:
      - "C(fence): verify every table inside the write fence (both servers still, the strongest check; its duration, which grows
        with the database, is write downtime)."
      - "C(pause): verify every table before the fence, in two snapshots of one consistent point. Writes pause only while
        that point is taken (C(LOCK TABLE ... IN EXCLUSIVE MODE) on the source's tables: reads go on, no session is ended,
        typically tens of milliseconds); the checksums then run while the application writes. Inside the fence remain the
        catch-up to the fence LSN (every change since that point, through the same replication), sequences, large objects,
        unlogged tables and a check that both sides have the same tables, so the write downtime does not grow with the database."
    type: str
    default: fence
    choices: [fence, pause]
  roles:
    description:
      - Roles that own or were granted objects in the source database but do not exist on the target.
      - C(create) creates them (C(LOGIN)/C(NOLOGIN) as on the source, with the source's password hash when the source user
        may read it, i.e. is a superuser; never superuser, replication or bypassrls) and, when the target user is not a
        superuser, grants them to it so ownership can be restored. Memberships between roles are not copied.
      - C(require) fails in preflight when one is missing. C(skip) restores without owners and grants (everything owned by
        the target user).
    type: str
    default: create
    choices: [create, require, skip]
  split_tables_larger_than_mb:
    description: Tables larger than this are copied in several ctid ranges by several workers (0 disables).
    type: int
    default: 256
  target_free_mb:
    description:
      - Free space on the target, for the preflight size check (on RDS the allocated storage minus what is used).
        Without it the check runs only when the target is on this host.
    type: int
  sample_mb:
    description: Check mode reads about this much of the largest table to measure the copy rate.
    type: int
    default: 64
  report_path:
    description: Write the result (phases, tables, sequences, progress lines, failure) as JSON to this file. It holds no secrets.
    type: path
  pg_bin_dir:
    description: Folder with pg_dump, pg_restore and psql. Default the newest C(/usr/lib/postgresql/*/bin), else C(PATH).
    type: path
notes:
  - "No DDL on the source during a migration: logical replication carries rows, not schema changes (verification
    reports a table that differs)."
  - "Materialized views are created and refreshed on the target after the copy; refresh them on your schedule after the
    hand-over. Publications, subscriptions and tablespaces of the source are not copied."
  - "Unlogged tables and large objects are not replicated: they are copied inside the fence (the preflight warns with their size)."
  - "The default fence stops writes of sessions using the database's defaults; a session that explicitly runs
    C(SET default_transaction_read_only = off) could still write. Add I(fence.sql) (e.g. C(REVOKE CONNECT)) or
    I(fence.commands) (stop the application) for a stronger fence."
  - Supports C(check_mode) (a rehearsal) and C(diff) (the migration state before and after).
seealso:
  - name: PostgreSQL logical replication
    description: Publications, subscriptions and replication slots.
    link: https://www.postgresql.org/docs/current/logical-replication.html
  - module: community.postgresql.postgresql_user
"""

EXAMPLES = r"""
- name: Rehearse the cut-over (changes nothing; predicts the write downtime)
  fastier.platform.rds_cutover:
    source: &legacy
      host: legacy.internal
      dbname: fastier
      user: postgres
      password: "{{ legacy_db_password }}"
    target: &rds
      host: "{{ database_outputs.endpoint }}"
      dbname: fastier
      user: fastier_admin
      password: "{{ rds_master_password }}"
      sslmode: require
    jobs: 4
  check_mode: true
  register: rehearsal

- name: Copy and start replication; leave it running
  fastier.platform.rds_cutover:
    source: *legacy
    target: *rds
    phase: sync
    report_path: /var/log/fastier/cutover-sync.json

- name: Cut over (fence, catch up, sequences, verify, hand over)
  fastier.platform.rds_cutover:
    source: *legacy
    target: *rds
    phase: cutover
    max_lag_bytes: 1048576
    fence_timeout_s: 30
    fence:
      commands:
        - systemctl stop fastier-worker
    unfence:
      commands:
        - systemctl start fastier-worker
    report_path: /var/log/fastier/cutover.json
  register: cutover

- name: Show the write downtime
  ansible.builtin.debug:
    msg: "write downtime {{ cutover.write_downtime_s }}s, lag at fence {{ cutover.lag_bytes_at_fence }} bytes"

- name: Abandon a migration (the target database is left as it is)
  fastier.platform.rds_cutover:
    source: *legacy
    target: *rds
    phase: rollback
"""

RETURN = r"""
changed:
  description: Whether anything was created, copied or changed (check mode - whether a run would).
  returned: always
  type: bool
  sample: true
method:
  description: The method used (C(logical) or C(dump_restore)).
  returned: always
  type: str
  sample: logical
migration_id:
  description: The migration's id (its objects are named C(fastier_cutover_<id>)).
  returned: always
  type: str
  sample: fastier
state:
  description:
    - The migration's state after this call - C(copied), C(syncing), C(done), or null when nothing is left (rollback).
    - With I(phase=status) also C(starting), C(copying) (a copy that stopped) or C(fenced) (a run killed while fenced), and null
      when no migration of that id was ever started on the source.
    - C(rolled_back) after I(phase=fallback).
  returned: always
  type: str
  sample: done
started:
  description: When the migration started (UTC), from its record on the source.
  returned: with I(phase=status)
  type: str
  sample: "2025-01-01T12:00:00.000000Z"
finished:
  description: When the hand-over finished (UTC), null until then.
  returned: with I(phase=status)
  type: str
  sample: "2025-01-01T12:05:00.000000Z"
recorded_target:
  description: The target the migration replicates to, as recorded on the source (C(host:port/dbname)).
  returned: with I(phase=status)
  type: str
  sample: fastier-production.abc.eu-west-1.rds.amazonaws.com:5432/fastier
phases:
  description: Each phase run, with its start (UTC) and duration.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "copy", "start": "2025-01-01T12:00:00.000000Z", "seconds": 41.2},
           {"name": "catchup", "start": "2025-01-01T12:01:30.100000Z", "seconds": 0.41}]
write_downtime_s:
  description:
    - Seconds from the fence on to the hand-over, or to the end of I(handover) commands when given (or to the fence lifted, on
      failure). Null when no fence ran.
  returned: always
  type: float
  sample: 1.42
lag_bytes_at_fence:
  description: Bytes of WAL the target had not confirmed when the fence started.
  returned: always
  type: int
  sample: 81920
tables:
  description:
    - Every table (leaf partitions included) after verification, with row counts and checksums of both sides; after
      C(copy) or C(sync) only the bytes copied.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "shop.orders", "rows": 1000000, "bytes": 91234304, "source_rows": 1000000, "target_rows": 1000000,
            "source_checksum": "-2929826257498145110189", "target_checksum": "-2929826257498145110189", "verified": true, "reason": null}]
sequences:
  description: Every sequence (owned by a column or standalone) with the source value and the target value after the sync.
  returned: when the fenced part ran
  type: list
  elements: dict
  sample: [{"name": "shop.invoice_no", "source": 5321, "target": 5321, "owned": false}]
verification:
  description:
    - Where the tables were verified - C(point) C(fence) or C(pause); with C(pause), the source LSN of the consistent point,
      how long writes were paused (C(pause_s)) and how long taking the locks waited (C(lock_wait_s)).
  returned: when verification ran
  type: dict
  sample: {"point": "pause", "mode": "checksums", "lsn": "1/2A3B4C8", "pause_s": 0.042, "lock_wait_s": 0.003}
large_objects:
  description: Large objects copied inside the fence.
  returned: always
  type: dict
  sample: {"count": 3, "bytes": 108000}
roles_created:
  description: Roles created on the target (I(roles=create)), and whether their password hash was copied.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "fastier_app", "login": true, "password_copied": true}]
findings:
  description: Preflight findings (errors stop the cut-over; warnings are informational), each with the object and the fix.
  returned: always
  type: list
  elements: dict
  sample: [{"severity": "warning", "check": "large_objects", "object": "pg_largeobject", "message": "3 large object(s) ...", "fix": "..."}]
copy:
  description: The initial copy - tables, tasks (ctid ranges), bytes streamed, seconds, MB/s, format and jobs.
  returned: when a copy ran
  type: dict
  sample: {"tables": 12, "tasks": 18, "bytes": 1073741824, "seconds": 20.5, "mb_per_s": 52.4, "format": "binary", "jobs": 4}
replication:
  description:
    - Publication, slot, subscription and lag, after C(copy) and C(sync) (and in a failure that left replication running).
    - With I(phase=status) the subscription is null (the target is not contacted).
  returned: when replication is left running, and by I(phase=status) while it runs
  type: dict
  sample: {"publication": "fastier_cutover_fastier", "slot": "fastier_cutover_fastier", "subscription": "fastier_cutover_fastier", "lag_bytes": 1024}
rehearsal:
  description: Check mode only - sizes, the measured sample and the predicted durations (seconds).
  returned: in check mode
  type: dict
  sample: {"sizes": {"table_bytes": 1073741824}, "sample": {"table": "public.pgbench_accounts", "mb_per_s": 60.1},
           "predicted": {"copy_s": 21.0, "indexes_s": 4.0, "catchup_s": 0.3, "verify_s": 6.0, "write_downtime_s": 7.3}}
progress:
  description: The progress lines (also shown with C(-v) and written to the report).
  returned: always
  type: list
  elements: str
  sample: ["[   12.0s] copy: 3/12 tables, 512.0 MB of ~1073.7 MB, 42.7 MB/s"]
source:
  description: The source as C(user@host:port/dbname) (no password).
  returned: always
  type: str
  sample: postgres@legacy.internal:5432/fastier
target:
  description: The target as C(user@host:port/dbname) (no password).
  returned: always
  type: str
  sample: fastier_admin@fastier-production.abc.eu-west-1.rds.amazonaws.com:5432/fastier
report_path:
  description: Where the JSON report was written (null when not asked).
  returned: always
  type: str
  sample: /var/log/fastier/cutover.json
"""

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.fastier.platform.plugins.module_utils.common import FastierModule
from ansible_collections.fastier.platform.plugins.module_utils.pg_cutover.conn import HAS_PSYCOPG
from ansible_collections.fastier.platform.plugins.module_utils.pg_cutover.conn import PSYCOPG_IMPORT_ERROR
from ansible_collections.fastier.platform.plugins.module_utils.pg_cutover.conn import endpoint_spec
from ansible_collections.fastier.platform.plugins.module_utils.pg_cutover.engine import Cutover
from ansible_collections.fastier.platform.plugins.module_utils.pg_cutover.engine import CutoverFailed


def argument_spec():
    return dict(
        source=dict(type="dict", required=True, options=endpoint_spec(with_replication_address=True)),
        target=dict(type="dict", required=True, options=endpoint_spec(with_replication_address=True)),
        method=dict(type="str", choices=["logical", "dump_restore"]),
        phase=dict(type="str", default="all", choices=["all", "copy", "sync", "cutover", "rollback", "status", "fallback", "release"]),
        fallback=dict(type="bool", default=False),
        migration_id=dict(type="str"),
        jobs=dict(type="int", default=4),
        max_lag_bytes=dict(type="int", default=16777216),
        sync_timeout_s=dict(type="int", default=3600),
        fence_timeout_s=dict(type="int", default=60),
        fence=dict(
            type="dict",
            options=dict(
                read_only=dict(type="bool", default=True),
                terminate_sessions=dict(type="bool", default=True),
                sql=dict(type="list", elements="str", default=[]),
                commands=dict(type="list", elements="str", default=[]),
            ),
        ),
        unfence=dict(
            type="dict",
            options=dict(
                sql=dict(type="list", elements="str", default=[]),
                commands=dict(type="list", elements="str", default=[]),
            ),
        ),
        handover=dict(
            type="dict",
            options=dict(
                commands=dict(type="list", elements="str", default=[]),
            ),
        ),
        verify=dict(type="str", default="checksums", choices=["checksums", "counts", "none"]),
        verify_point=dict(type="str", default="fence", choices=["fence", "pause"]),
        roles=dict(type="str", default="create", choices=["create", "require", "skip"]),
        split_tables_larger_than_mb=dict(type="int", default=256),
        target_free_mb=dict(type="int"),
        sample_mb=dict(type="int", default=64),
        report_path=dict(type="path"),
        pg_bin_dir=dict(type="path"),
    )


def main():
    module = FastierModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg"), exception=PSYCOPG_IMPORT_ERROR)
    if module.params["jobs"] < 1:
        module.fail_json(msg="jobs must be 1 or more")

    def run_command(args):
        return module.run_command(args, check_rc=False)

    engine = Cutover(module.params, log=module.progress, run_command=run_command, check_mode=module.check_mode, diff=module._diff)
    try:
        result = engine.run()
    except CutoverFailed as err:
        result = dict(err.result)
        result.pop("progress_log", None)
        result.pop("diff", None)
        module.fail_json(msg=str(err), **result)
    result.pop("progress_log", None)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
