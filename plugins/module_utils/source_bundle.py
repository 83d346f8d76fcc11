# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Deterministic Elastic Beanstalk source bundles (used by ``eb_source_bundle``).

The same source gives the same zip, byte for byte, whatever the files'
modification times, the umask they were created under or the order the file
system lists them in:

* entries sorted by their path in the bundle, files only (no directory
  entries), names in POSIX form;
* every timestamp 1980-01-01 00:00 (the earliest a zip can hold);
* permissions normalised: 0755 when any execute bit is set (or a generated
  file starts with ``#!``), else 0644; always "made on Unix" so unzip on the
  instance applies them;
* one compression method and level, no archive comment, no extra fields.

Plain Python (no Ansible import) so the unit tests import it directly.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import hashlib
import os
import posixpath
import re
import stat
import zipfile

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
COMPRESSION = {"deflated": zipfile.ZIP_DEFLATED, "stored": zipfile.ZIP_STORED}
COMPRESS_LEVEL = 9

# Never packed unless a generated file (``files``/``copy``) puts it there:
# version control, caches, virtualenvs, dependencies installed locally,
# tests, and local environment files, which hold secrets.
DEFAULT_EXCLUDES = (
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    "*.pyc",
    "*.pyo",
    ".venv",
    "venv",
    "env",
    "node_modules",
    "tests",
    "*.egg-info",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".tox",
    ".coverage",
    ".DS_Store",
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
)

LABEL_MAX = 100  # Elastic Beanstalk's VersionLabel limit
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class BundleError(Exception):
    """The bundle cannot be built; the message says what to change."""


# -- paths and exclusions ---------------------------------------------------------------


def bundle_path(path, what="bundle path"):
    """``path`` as a relative POSIX path inside the bundle, or BundleError when it would escape it."""
    if not isinstance(path, str) or not path.strip():
        raise BundleError("{0} {1!r} is empty".format(what, path))
    if "\\" in path:
        raise BundleError("{0} {1!r} contains a backslash; write paths inside the bundle with '/'".format(what, path))
    if path.startswith("/"):
        raise BundleError("{0} {1!r} is absolute; paths inside the bundle are relative to its root".format(what, path))
    normalized = posixpath.normpath(path)
    if normalized in (".", "..") or normalized.startswith("../"):
        raise BundleError("{0} {1!r} escapes the bundle (it resolves to {2!r})".format(what, path, normalized))
    return normalized


def is_excluded(relpath, patterns):
    """Whether a bundle path matches an exclusion glob.

    A pattern without ``/`` is matched against every component of the path
    (``__pycache__`` excludes that directory wherever it is, ``*.pyc`` every
    such file); a pattern with ``/`` against the whole path from the root
    (``docs/*.md``). Matching is case sensitive.
    """
    parts = relpath.split("/")
    for raw in patterns:
        pattern = raw.strip("/")
        if not pattern:
            continue
        if "/" in pattern:
            if fnmatch.fnmatchcase(relpath, pattern) or fnmatch.fnmatchcase(relpath, pattern + "/*"):
                return True
            # a directory pattern also excludes what is under it
            if any(fnmatch.fnmatchcase("/".join(parts[:i]), pattern) for i in range(1, len(parts))):
                return True
        elif any(fnmatch.fnmatchcase(part, pattern) for part in parts):
            return True
    return False


def _inside(path, root):
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def scan_source(source_dir, patterns, skip=()):
    """The files of ``source_dir`` to pack: ``({bundle path: absolute path}, excluded paths)``.

    Symbolic links to files inside the source are packed as the file they point
    to; a link that leads outside the source, or to a directory, is an error
    (exclude it, or replace it). ``skip`` holds absolute paths never packed
    (the bundle being written, when it lies inside the source).
    """
    if not os.path.isdir(source_dir):
        raise BundleError("source_dir {0} is not a directory".format(source_dir))
    skip = set(os.path.realpath(p) for p in skip)
    found, excluded = {}, []
    root = os.path.abspath(source_dir)
    for current, dirs, names in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(current, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        keep_dirs = []
        for name in sorted(dirs):
            rel = rel_dir + name
            full = os.path.join(current, name)
            if is_excluded(rel, patterns):
                excluded.append(rel + "/")
            elif os.path.islink(full):
                raise BundleError(
                    "{0} in the source is a symbolic link to a directory ({1}); the bundle holds files only: "
                    "exclude it or replace it by a real directory".format(rel, os.path.realpath(full))
                )
            else:
                keep_dirs.append(name)
        dirs[:] = keep_dirs
        for name in sorted(names):
            rel = rel_dir + name
            full = os.path.join(current, name)
            if os.path.realpath(full) in skip:
                continue
            if is_excluded(rel, patterns):
                excluded.append(rel)
                continue
            if os.path.islink(full):
                target = os.path.realpath(full)
                if not _inside(target, root):
                    raise BundleError("{0} in the source is a symbolic link to {1}, outside source_dir; exclude it or copy the file in".format(rel, target))
                if not os.path.isfile(target):
                    raise BundleError("{0} in the source is a symbolic link to {1}, which is not a file".format(rel, target))
            elif not os.path.isfile(full):
                continue  # sockets, fifos: nothing to pack
            found[rel] = full
    return found, excluded


def file_mode(path):
    """0755 when the file has any execute bit, else 0644 (umask and owner bits do not matter)."""
    return 0o755 if os.stat(path).st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH) else 0o644


def content_mode(data):
    """Generated content: 0755 for a script (``#!``), else 0644."""
    return 0o755 if data.startswith(b"#!") else 0o644


# -- building ---------------------------------------------------------------------------


class Entry:
    """One file of the bundle: its path, bytes (or a file to read them from), mode and origin."""

    __slots__ = ("path", "data", "source", "mode", "origin")

    def __init__(self, path, mode, origin, data=None, source=None):
        self.path, self.mode, self.origin, self.data, self.source = path, mode, origin, data, source

    def read(self):
        if self.data is not None:
            return self.data
        with open(self.source, "rb") as handle:
            return handle.read()


def plan_entries(source_dir, files=None, copy=None, *, exclude=(), default_excludes=True, skip=()):
    """Every entry of the bundle, sorted by path, and what was excluded.

    ``files`` (bundle path -> text) and ``copy`` (bundle path -> file on the
    controller) are added after the source and win over a source file at the
    same path; they are never excluded. Returns ``(entries, excluded, overridden)``.
    """
    patterns = list(DEFAULT_EXCLUDES if default_excludes else ()) + list(exclude or ())
    source, excluded = scan_source(source_dir, patterns, skip=skip)
    entries = dict((rel, Entry(rel, file_mode(full), "source", source=full)) for rel, full in source.items())
    overridden = []
    generated = {}
    for rel, text in sorted((files or {}).items()):
        path = bundle_path(rel, "files key")
        data = text if isinstance(text, bytes) else ("" if text is None else str(text)).encode("utf-8")
        generated[path] = Entry(path, content_mode(data), "files", data=data)
    for rel, src in sorted((copy or {}).items()):
        path = bundle_path(rel, "copy key")
        if path in generated:
            raise BundleError("{0} is given both in files and in copy; keep one".format(path))
        if not src or not os.path.isfile(src):
            raise BundleError("copy: {0} -> {1}: {1} is not a file on the controller".format(rel, src))
        generated[path] = Entry(path, file_mode(src), "copy", source=os.path.abspath(src))
    paths = set(entries)
    for path, entry in generated.items():
        if path in entries:
            overridden.append(path)
        # a generated file cannot sit where the source has a directory (or the reverse)
        clash = [p for p in paths if p.startswith(path + "/")] or [p for p in paths if path.startswith(p + "/")]
        if clash:
            raise BundleError("{0} ({1}) clashes with {2} of the source: one is a directory of the other".format(path, entry.origin, clash[0]))
        entries[path] = entry
        paths.add(path)
    return [entries[p] for p in sorted(entries)], excluded, sorted(overridden)


def write_zip(entries, handle, compression="deflated"):
    """Write the entries as a deterministic zip to ``handle`` (a seekable binary file)."""
    method = COMPRESSION[compression]
    level = COMPRESS_LEVEL if method == zipfile.ZIP_DEFLATED else None
    with zipfile.ZipFile(handle, "w", compression=method, allowZip64=True) as archive:
        for entry in entries:
            info = zipfile.ZipInfo(entry.path, date_time=FIXED_DATE_TIME)
            info.create_system = 3  # Unix: unzip applies the mode bits
            info.external_attr = (stat.S_IFREG | entry.mode) << 16
            info.compress_type = method
            archive.writestr(info, entry.read(), compress_type=method, compresslevel=level)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def zip_listing(path):
    """One line per entry (path, mode, CRC-32, size): what ``--diff`` compares. Empty when there is no readable zip."""
    if not path or not os.path.isfile(path):
        return []
    try:
        with zipfile.ZipFile(path) as archive:
            return [
                "{0} {1:04o} crc32={2:08x} size={3}".format(info.filename, (info.external_attr >> 16) & 0o7777, info.CRC, info.file_size)
                for info in archive.infolist()
            ]
    except (zipfile.BadZipFile, OSError):
        return ["(not a zip file)"]


# -- version labels -------------------------------------------------------------------------


def read_version_file(source_dir, name="VERSION"):
    path = os.path.join(source_dir, name)
    if not os.path.isfile(path):
        raise BundleError("no version given and {0} does not exist; give the version or add a {1} file to the source".format(path, name))
    with open(path, "r") as handle:
        version = handle.read().strip()
    if not version:
        raise BundleError("{0} is empty; write the application's version in it (e.g. 1.4.2)".format(path))
    return version


def version_label(prefix, version, sha256):
    """``<prefix>-<version>-<first 12 hex of sha256>`` (``<version>-<sha12>`` without a prefix)."""
    if not VERSION_RE.match(version or ""):
        raise BundleError(
            "version {0!r} cannot go in a version label and an S3 key: use letters, digits, '.', '_', '+' and '-', starting with a letter or digit".format(
                version
            )
        )
    if prefix and not PREFIX_RE.match(prefix):
        raise BundleError("label_prefix {0!r} must be letters, digits, '.', '_' and '-', starting with a letter or digit".format(prefix))
    label = "-".join(part for part in (prefix, version, sha256[:12]) if part)
    if len(label) > LABEL_MAX:
        raise BundleError(
            "version label {0} is {1} characters; Elastic Beanstalk allows {2}: shorten label_prefix or version".format(label, len(label), LABEL_MAX)
        )
    return label


# -- pinned requirements ------------------------------------------------------------------

_COMMENT = re.compile(r"(^|\s+)#.*$")
_NAME = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*(.*)$")
_PINNED = re.compile(r"^===?\s*[^\s,*;=<>!~]+$")
_INCLUDE = re.compile(r"^(-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+|(?<=-r)|(?<=-c))(\S+)$")
_EDITABLE = re.compile(r"^(-e|--editable)(\s|=|$)")
# Global options pip accepts in a requirements file; they pin nothing and need no pin.
_GLOBAL_OPTIONS = (
    "-i",
    "--index-url",
    "--extra-index-url",
    "--no-index",
    "-f",
    "--find-links",
    "--no-binary",
    "--only-binary",
    "--prefer-binary",
    "--require-hashes",
    "--pre",
    "--trusted-host",
    "--use-feature",
)
_IMMUTABLE_URL = re.compile(r"(@[0-9a-f]{40}(#.*)?$)|(\.(whl|tar\.gz|zip)(#.*)?$)")


def canonical_name(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def logical_lines(text):
    """(line number, text) of a requirements file: comments removed, continuations joined, blanks dropped."""
    out, buffer, start = [], "", None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if start is None:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        cleaned = _COMMENT.sub("", buffer).strip()
        if cleaned:
            out.append((start, cleaned))
        buffer, start = "", None
    if buffer.strip():
        out.append((start, _COMMENT.sub("", buffer).strip()))
    return out


def requirement_pin(line):
    """``(name, reason)`` of a requirement line: reason is None when it is pinned with ``==``."""
    # per-requirement options (--hash=..., --config-settings ...) follow the requirement
    requirement = re.split(r"\s+--?[A-Za-z]", " " + line, maxsplit=1)[0].strip() if " -" in line else line
    spec = requirement.split(";", 1)[0].strip()  # environment markers do not pin anything
    match = _NAME.match(spec)
    if not match or "://" in spec.split("@", 1)[0] or spec.startswith((".", "/")):
        return spec, "not a named requirement (a path or URL); use name==version"
    name, rest = match.group(1), match.group(3).strip()
    if rest.startswith("@"):
        url = rest[1:].strip()
        if _IMMUTABLE_URL.search(url):
            return name, None
        return name, "direct reference to a URL that can change; use name==version (or a commit hash / an archive)"
    if not rest:
        return name, "no version"
    if _PINNED.match(rest.replace(" ", "")):
        return name, None
    return name, "{0} is a range, not one version".format(rest.replace(" ", ""))


def unpinned_requirements(source_dir, files):
    """Lines of the requirement files that do not pin one version with ``==``.

    Returns ``["requirements.txt:3: flask>=2.0 (a range, not one version)", ...]``.
    ``-r``/``--requirement`` files are checked too (paths relative to the file
    that includes them, inside ``source_dir``); names pinned with ``==`` in a
    ``-c``/``--constraint`` file count as pinned; ``-e``/``--editable`` is
    refused; global options (``--index-url`` ...) and per-requirement options
    (``--hash``) are accepted.
    """
    root = os.path.realpath(source_dir)
    problems, seen = [], set()
    requirements, constrained = [], set()

    def load(rel, chain):
        path = os.path.realpath(os.path.join(root, rel))
        shown = os.path.relpath(path, root).replace(os.sep, "/")
        if not _inside(path, root):
            problems.append("{0}: includes {1}, outside the source".format(chain, rel))
            return []
        if not os.path.isfile(path):
            problems.append("{0}: {1} does not exist".format(chain or "requirements", shown))
            return []
        if path in seen:
            return []
        seen.add(path)
        with open(path, "r") as handle:
            return [(shown, number, line) for number, line in logical_lines(handle.read())]

    def walk(rel, chain, is_constraint):
        for shown, number, line in load(rel, chain):
            where = "{0}:{1}".format(shown, number)
            include = _INCLUDE.match(line)
            if include:
                target = posixpath.join(posixpath.dirname(shown), include.group(2))
                walk(target, where, is_constraint or include.group(1) in ("-c", "--constraint"))
            elif _EDITABLE.match(line):
                problems.append("{0}: {1} (an editable install is not reproducible)".format(where, line))
            elif line.startswith("-"):
                option = re.split(r"[\s=]", line, maxsplit=1)[0]
                if option not in _GLOBAL_OPTIONS:
                    problems.append("{0}: {1} (unknown option)".format(where, line))
            elif is_constraint:
                name, reason = requirement_pin(line)
                if reason is None:
                    constrained.add(canonical_name(name))
            else:
                requirements.append((where, line))

    for rel in files:
        walk(rel, "", False)
    for where, line in requirements:
        name, reason = requirement_pin(line)
        if reason is not None and canonical_name(name) not in constrained:
            problems.append("{0}: {1} ({2})".format(where, line, reason))
    return problems


# -- the whole build ------------------------------------------------------------------------


def build(source_dir, dest_handle, files=None, copy=None, *, exclude=(), default_excludes=True, compression="deflated", skip=()):
    """Write the bundle to ``dest_handle``; returns a summary dict (without the hash)."""
    entries, excluded, overridden = plan_entries(source_dir, files, copy, exclude=exclude, default_excludes=default_excludes, skip=skip)
    if not entries:
        raise BundleError("nothing to pack: {0} holds no file that is not excluded".format(source_dir))
    write_zip(entries, dest_handle, compression)
    return {
        "files": len(entries),
        "excluded": excluded,
        "overridden": overridden,
        "generated": sorted(e.path for e in entries if e.origin != "source"),
    }
