"""Snapshots and automated backups of local RDS instances: real data on disk.

Two kinds of backup exist, as on RDS:

* **DB snapshots** (manual, final, copied, automated): a consistent copy of
  an instance's PostgreSQL data in ``<pg_dir>/snapshots/<region>/<id>/``
  (``data/`` plus ``superuser.pw``, the ``rdsadmin`` password of that
  moment). A running server is copied with ``pg_basebackup`` (the copy is
  consistent as of the end of the backup); a stopped one with a plain copy of
  its data dir. Snapshot files never change once written, so copying a
  snapshot (``CopyDBSnapshot``, also to another region) hard-links them.

* **Automated backups** for point-in-time recovery, per instance with
  ``BackupRetentionPeriod > 0``, in ``<pg_dir>/wal/<region>/<id>/``: a base
  backup taken when the instance became available (``base/``), and every
  WAL segment the server completes (``archive/``, gzip'd, by
  PostgreSQL's ``archive_command``, see :data:`ARCHIVE_SCRIPT`). Segments are
  1 MiB (the template is initialised with ``--wal-segsize=1``) and
  ``archive_timeout`` closes a segment that holds changes after a few seconds,
  which bounds how far ``LatestRestorableTime`` lags behind the last commit.
  Next to each archived segment, a ``.commit`` file holds the time of its
  last commit (read with ``pg_waldump`` when it is archived), so the newest
  restorable time is known without reading WAL.

A point-in-time restore (:meth:`WalArchive.plan`) copies the base backup,
hard-links the archived segments it may replay into the new instance's folder
(so later archiving and a deleted source change nothing), and sets
``recovery_target_time`` when a commit after the target is archived, or
replays everything archived when none is (then everything archived is, by the
restorable window's definition, the state at the target).

Nothing here knows moto: a snapshot's files are registered under the moto
object they back, as an opaque ``owner``.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("local_aws.rds")

UTC = datetime.UTC
SEGMENT = re.compile(r"^[0-9A-F]{24}$")

# PostgreSQL's archive_command for local RDS: ARCHIVE_DIR BINDIR %p %f.
# Runs as the server's OS user, in the data dir. Writes the segment's last
# commit time beside it first, then the gzip'd segment under a temporary
# name renamed at the end, so a file named like a segment is always complete.
# Segments are created zero-filled (wal_recycle=off), so a segment closed
# early by archive_timeout compresses to a few KiB.
ARCHIVE_SCRIPT = r"""#!/bin/sh
# local_aws: archive_command of local RDS instances (see local_aws/rds/snapshots.py)
set -e
dir=$1 bin=$2 path=$3 name=$4
case "$name" in
  *.*) ;;
  *)
    TZ=UTC "$bin/pg_waldump" -r Transaction "$path" 2>/dev/null \
      | sed -n 's/.*desc: COMMIT \([0-9][0-9-]* [0-9:.]*\) UTC.*/\1/p' | tail -n 1 > "$dir/.$name.commit.tmp" || true
    mv -f "$dir/.$name.commit.tmp" "$dir/$name.commit"
    ;;
esac
gzip -1 -c "$path" > "$dir/.$name.gz.tmp"
mv -f "$dir/.$name.gz.tmp" "$dir/$name.gz"
"""
SCRIPT_NAME = "archive-wal"


def now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


def safe_name(identifier: str) -> str:
    """A folder name for an identifier (``rds:db-2024-...`` has a colon)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", identifier) or "_"


def allocate(parent: Path, name: str, taken: set[Path]) -> Path:
    """``parent/name``, or ``name-2``, ``name-3`` … when taken (as instance folders)."""
    for n in range(1, 1000):
        root = parent / (name if n == 1 else f"{name}-{n}")
        if root not in taken and not root.exists():
            return root
    raise OSError(f"no free folder for {name} in {parent}")


def hardlink_copy(source: Path, target: Path) -> None:
    """Copy a tree of files that never change again by hard-linking them."""
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-al", "--", str(source), str(target)], check=True, capture_output=True)


def parse_commit_time(text: str) -> datetime.datetime | None:
    """``2026-01-31 12:00:00.123456`` (UTC, as pg_waldump prints it)."""
    text = text.strip()
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        return None


def install_script(wal_root: Path) -> Path:
    """Write the archive_command script (readable by the server's OS user)."""
    wal_root.mkdir(parents=True, exist_ok=True)
    script = wal_root / SCRIPT_NAME
    if not script.exists() or script.read_text() != ARCHIVE_SCRIPT:
        tmp = script.with_suffix(".tmp")
        tmp.write_text(ARCHIVE_SCRIPT)
        tmp.chmod(0o755)
        tmp.replace(script)
    return script


# -- DB snapshots --------------------------------------------------------------------------------
@dataclass
class SnapshotFiles:
    """The data of one DB snapshot (or of a base backup)."""

    owner: Any
    root: Path
    region: str
    taken: datetime.datetime = field(default_factory=now)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def password_file(self) -> Path:
        return self.root / "superuser.pw"

    def size(self) -> int:
        total = 0
        for path in self.root.rglob("*"):
            try:
                if path.is_file() and not path.is_symlink():
                    total += path.stat().st_size
            except OSError:  # deleted meanwhile
                continue
        return total


class SnapshotStore:
    """Every DB snapshot's files, under ``<pg_dir>/snapshots/<region>/``."""

    def __init__(self, pg_dir: Path):
        self.root = Path(pg_dir) / "snapshots"
        self._lock = threading.Lock()
        self._files: dict[int, SnapshotFiles] = {}

    def get(self, owner: Any) -> SnapshotFiles | None:
        return self._files.get(id(owner))

    def all(self) -> list[SnapshotFiles]:
        with self._lock:
            return list(self._files.values())

    def reserve(self, owner: Any, identifier: str, region: str) -> SnapshotFiles:
        """A new, empty folder for ``owner``'s data (registered; :meth:`delete` undoes it)."""
        with self._lock:
            taken = {f.root for f in self._files.values()}
            root = allocate(self.root / safe_name(region), safe_name(identifier), taken)
            root.parent.mkdir(parents=True, exist_ok=True)
            root.mkdir()
            files = SnapshotFiles(owner, root, region)
            self._files[id(owner)] = files
            return files

    def copy(self, source: SnapshotFiles, owner: Any, identifier: str, region: str) -> SnapshotFiles:
        """``CopyDBSnapshot``: the same data under a new identifier (and region)."""
        files = self.reserve(owner, identifier, region)
        try:
            files.root.rmdir()
            hardlink_copy(source.root, files.root)
            files.taken = source.taken
        except BaseException:
            self.delete(owner)
            raise
        return files

    def delete(self, owner: Any) -> bool:
        with self._lock:
            files = self._files.pop(id(owner), None)
        if files is None:
            return False
        shutil.rmtree(files.root, ignore_errors=True)
        return True

    def clear(self) -> None:
        """Forget every snapshot and delete the folder (moto's state ends with the endpoint)."""
        with self._lock:
            self._files.clear()
        shutil.rmtree(self.root, ignore_errors=True)


# -- automated backups: base backup + archived WAL -------------------------------------------------
@dataclass
class RestorePlan:
    """What a point-in-time restore replays: a base backup, segments, a target."""

    base: Path
    segments: list[Path]
    target: datetime.datetime | None  # None: replay everything in ``segments``

    def recovery_conf(self, wal_dir: Path) -> dict[str, str]:
        restore = f'test -f "{wal_dir}/%f.gz" && gzip -dc "{wal_dir}/%f.gz" > "%p"'
        conf = {"restore_command": _quote(restore), "recovery_target_timeline": "'latest'"}
        if self.target is not None:
            conf["recovery_target_time"] = _quote(self.target.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00"))
            conf["recovery_target_inclusive"] = "on"
            conf["recovery_target_action"] = "'promote'"
        return conf

    def link_segments(self, wal_dir: Path) -> None:
        wal_dir.mkdir(parents=True, exist_ok=True)
        for segment in self.segments:
            os.link(segment, wal_dir / segment.name)


RECOVERY_KEYS = ("restore_command", "recovery_target_timeline", "recovery_target_time", "recovery_target_inclusive", "recovery_target_action")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class WalArchive:
    """One instance's automated backups: a base backup and its archived WAL."""

    root: Path
    script: Path
    bindir: Path
    timeout_s: int
    earliest: datetime.datetime | None = None  # when the base backup was complete
    complete_until: datetime.datetime | None = None  # set by a clean stop: nothing after it to archive
    _commits: dict[str, datetime.datetime | None] = field(default_factory=dict, repr=False)

    @property
    def archive_dir(self) -> Path:
        return self.root / "archive"

    @property
    def base(self) -> SnapshotFiles:
        return SnapshotFiles(None, self.root / "base", "")

    def server_conf(self) -> dict[str, str]:
        """Settings of the server whose WAL this archive keeps."""
        command = f'"{self.script}" "{self.archive_dir}" "{self.bindir}" "%p" "%f"'
        return {"archive_mode": "on", "archive_command": _quote(command), "archive_timeout": str(self.timeout_s)}

    def has(self, segment: str) -> bool:
        return (self.archive_dir / f"{segment}.gz").exists()

    def segments(self) -> list[Path]:
        """Every archived file (segments, histories, partial segments), gzip'd."""
        try:
            return sorted(p for p in self.archive_dir.iterdir() if p.name.endswith(".gz") and not p.name.startswith("."))
        except FileNotFoundError:
            return []

    def commit_time(self, segment: Path) -> datetime.datetime | None:
        """The last commit archived in ``segment`` (cached: archived files never change)."""
        name = segment.name.removesuffix(".gz")
        if name not in self._commits:
            if not SEGMENT.match(name):
                self._commits[name] = None
            else:
                try:
                    self._commits[name] = parse_commit_time((self.archive_dir / f"{name}.commit").read_text())
                except OSError:
                    return None  # archived but its .commit not readable: do not cache
        return self._commits[name]

    def last_commit(self, segments: list[Path] | None = None) -> datetime.datetime | None:
        times = [t for t in (self.commit_time(s) for s in (self.segments() if segments is None else segments)) if t is not None]
        return max(times) if times else None

    def plan(self, target: datetime.datetime | None) -> RestorePlan:
        """The restore of ``target`` (None: everything archived) from what is archived now."""
        segments = self.segments()
        last = self.last_commit(segments)
        if target is not None and (last is None or target >= last):
            target = None  # no commit after it is archived: the end of the archive is the state at target
        return RestorePlan(self.base.root, segments, target)

    def destroy(self) -> None:
        """Delete the archive and base backup (renamed at once, deleted in the background)."""
        trash = self.root.parent / f".deleted-{self.root.name}-{os.getpid()}-{threading.get_ident()}-{id(self)}"
        try:
            self.root.rename(trash)
        except OSError:
            shutil.rmtree(self.root, ignore_errors=True)
            return
        threading.Thread(target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True}, name="rds-wal-cleanup", daemon=True).start()
