# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The PostgreSQL cut-over behind ``fastier.platform.rds_cutover``.

One question, one file:

* ``conn``: endpoints (connection keywords, safe labels, the subscription's
  conninfo, the passfile the client tools read), psycopg import guard;
* ``catalog``: what is in a database (tables, columns, sequences, large
  objects, roles, settings) - read-only queries;
* ``preflight``: the findings that stop a cut-over before it starts;
* ``tools``: pg_dump / pg_restore / psql (schema sections, list filtering);
* ``copy``: the parallel COPY engine (chunks by ctid, relays between psql
  processes, progress);
* ``verify``: row counts and order-independent checksums, in parallel;
* ``replication``: publication, slot, subscription, lag, and the migration
  state kept in the source database (the publication's comment);
* ``fence``: stopping and restoring writes on the source;
* ``engine``: the phases, failure handling, rehearsal and the report.
"""
