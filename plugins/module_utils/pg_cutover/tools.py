# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""PostgreSQL's client tools: pg_dump and pg_restore for the schema, psql for COPY.

The schema is dumped once (custom format, schema only, in the copy's
snapshot) and restored in two sections: ``pre-data`` (types, tables, functions:
no secondary indexes, constraints or triggers) before the data, ``post-data``
(indexes, constraints, foreign keys, triggers) after it, with ``pg_restore -j``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import re
import shutil
import subprocess

from .conn import scrub

TOOLS = ("pg_dump", "pg_restore", "psql")


class ToolError(Exception):
    """A client tool failed; the message has its stderr (never a password)."""


def find_bindir(preferred=None):
    """The folder with pg_dump, pg_restore and psql: ``preferred``, the newest
    ``/usr/lib/postgresql/*/bin`` or ``/usr/pgsql-*/bin``, else ``PATH``."""
    if preferred:
        if all(os.path.exists(os.path.join(preferred, tool)) for tool in TOOLS):
            return preferred
        raise ToolError("pg_bin_dir {0} does not hold {1}".format(preferred, ", ".join(TOOLS)))
    candidates = glob.glob("/usr/lib/postgresql/*/bin") + glob.glob("/usr/pgsql-*/bin")

    def version_of(path):
        digits = re.findall(r"(\d+)", path)
        return int(digits[-1]) if digits else 0

    for folder in sorted(candidates, key=version_of, reverse=True):
        if all(os.path.exists(os.path.join(folder, tool)) for tool in TOOLS):
            return folder
    found = shutil.which("pg_dump")
    if found and all(shutil.which(tool) for tool in TOOLS):
        return os.path.dirname(found)
    raise ToolError("pg_dump, pg_restore and psql were not found: install the PostgreSQL client (e.g. postgresql-client-15) or set pg_bin_dir")


def tool_major(bindir, tool="pg_dump"):
    out = subprocess.run([os.path.join(bindir, tool), "--version"], capture_output=True, text=True, check=False, timeout=30).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else 0


def run_tool(args, env, secrets=(), timeout=None, what=None):
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False, timeout=timeout)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip().splitlines()
        raise ToolError("{0} failed (exit {1}): {2}".format(what or os.path.basename(args[0]), proc.returncode, scrub(" | ".join(detail[-6:]), secrets)))
    return proc


def dump_schema(bindir, source, path, env, *, snapshot=None, secrets=()):
    """pg_dump the schema (custom format) in ``snapshot``: both sections in one file."""
    args = [
        os.path.join(bindir, "pg_dump"),
        "--format=custom",
        "--schema-only",
        "--no-publications",
        "--no-subscriptions",
        "--no-tablespaces",
        "--file",
        path,
    ]
    if snapshot:
        args.append("--snapshot=" + snapshot)
    args += ["--dbname", source.dsn()]
    run_tool(args, env, secrets, what="pg_dump --schema-only of the source")


def restore_list(bindir, path, env, section):
    """The TOC lines pg_restore would run for ``section``."""
    proc = run_tool([os.path.join(bindir, "pg_restore"), "--list", "--section", section, path], env, what="pg_restore --list")
    return [line for line in proc.stdout.splitlines() if line and not line.startswith(";")]


def filter_list(lines, skip_extensions=()):
    """Drop TOC entries that cannot or need not be restored on the target.

    Extensions already installed on the target (plpgsql, and whatever the
    target provides) and their comments are skipped: re-creating them fails
    for a non-superuser and changes nothing.
    """
    kept = []
    skip = set(skip_extensions)
    for line in lines:
        match = re.match(r"^\d+; \d+ \d+ (EXTENSION|COMMENT) - (?:EXTENSION )?(\S+)", line)
        if match and match.group(2) in skip:
            continue
        kept.append(line)
    return kept


def restore_section(bindir, path, target, env, section, *, jobs=1, skip_extensions=(), no_owner=False, secrets=()):
    """pg_restore one section into the target, stopping at the first error."""
    list_path = path + "." + section + ".list"
    lines = filter_list(restore_list(bindir, path, env, section), skip_extensions)
    with open(list_path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    args = [os.path.join(bindir, "pg_restore"), "--exit-on-error", "--section", section, "--use-list", list_path]
    if jobs > 1:
        args += ["--jobs", str(jobs)]
    if no_owner:
        args += ["--no-owner", "--no-privileges"]
    args += ["--dbname", target.dsn(), path]
    run_tool(args, env, secrets, what="pg_restore --section={0} on the target".format(section))
    return len(lines)


def psql_args(bindir, endpoint, command):
    return [os.path.join(bindir, "psql"), "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--dbname", endpoint.dsn(), "--command", command]
