"""Real PostgreSQL servers behind local RDS DB instances, one cluster each.

An RDS instance is a server of its own, so every local instance is a
PostgreSQL cluster of its own: its own port, roles and databases, in
``<pg_dir>/instances/<db-instance-id>/`` (``data/``, ``postgresql.log`` and
``superuser.pw``, the mode-600 password of the internal ``rdsadmin`` role).

Creating one is a copy, not an ``initdb``: a template data dir is built once
per state dir (``<pg_dir>/template``) and copied for each instance, which then
starts on a free loopback port. Everything that makes a cluster is a copy of a
data dir (:meth:`InstanceCluster.seed_from`): the template's, a snapshot's
(``pg_basebackup`` of a running instance, or a copy of a stopped one), or a
base backup that then replays archived WAL up to a point in time
(``snapshots.py`` keeps those files).

The template looks like an RDS server from the inside: the bootstrap
superuser is ``rdsadmin`` (so a master user may be called ``postgres``), the
roles ``rds_superuser`` and ``rds_replication`` exist, TLS is offered with a
self-signed certificate, and there is no Unix socket (its path could exceed
the 107-byte limit in a deep state dir): the server is reached over TCP on
127.0.0.1 only, with scram-sha-256 passwords.

Nothing here knows moto: an :class:`Instance` carries the moto object it
backs as an opaque ``owner``.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import ipaddress
import logging
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_aws.postgres import Cluster, PostgresError, free_port, port_is_free

from .snapshots import RECOVERY_KEYS, SnapshotFiles, SnapshotStore, WalArchive, allocate, hardlink_copy, install_script, now, safe_name

log = logging.getLogger("local_aws.rds")

ADMIN_ROLE = "rdsadmin"
RDS_ROLES = ("rds_superuser", "rds_replication")
# Bump when the template's content changes: existing templates are rebuilt.
TEMPLATE_LAYOUT = "rds-template-4"
# 1 MiB WAL segments: archive_timeout closes a segment after a few seconds of
# changes, and a short segment costs a few KiB archived instead of 16 MiB.
TEMPLATE_INITDB = ["--wal-segsize=1"]
TEMPLATE_CONF = {
    # TCP on loopback only; no Unix socket (see the module docstring).
    "unix_socket_directories": "''",
    "ssl": "on",
    # A commit RDS acknowledged survives a crash of the server (the kill
    # control route): with synchronous_commit off the last ones would vanish.
    # fsync stays off: the OS keeps what a killed process wrote.
    "synchronous_commit": "on",
    # A failing ALTER ROLE ... PASSWORD must not leave its text (the
    # password) in postgresql.log; the error itself is still logged.
    "log_min_error_statement": "panic",
    # New WAL segments are zero-filled instead of recycled, so the unused end
    # of a segment closed early compresses to nothing in the WAL archive.
    "wal_recycle": "off",
    # pg_last_committed_xact(): tells an idle server (everything archived,
    # LatestRestorableTime is now) from one with commits not archived yet.
    "track_commit_timestamp": "on",
}
# How often a server with unarchived changes closes its WAL segment (seconds):
# the local RPO of point-in-time recovery. LOCAL_RDS_ARCHIVE_TIMEOUT_S overrides.
DEFAULT_ARCHIVE_TIMEOUT_S = 2
_BOOTSTRAP_ROLE = "local_aws_bootstrap"


class LocalRDSError(Exception):
    """A local RDS instance server could not be set up or changed."""


class PortUnavailable(LocalRDSError):
    """The port asked for is used by another program or instance."""


@dataclass(frozen=True)
class MasterUser:
    username: str
    password: str

    def __repr__(self) -> str:  # never show the password
        return f"MasterUser(username={self.username!r})"


def new_password() -> str:
    """A password RDS would accept (printable ASCII without / @ " or space)."""
    return secrets.token_urlsafe(24)


def _sql() -> Any:
    from psycopg import sql  # late: the CLI's --help must work without psycopg

    return sql


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class InstanceCluster(Cluster):
    """The cluster of one DB instance: a copy of a stopped cluster's data."""

    def __init__(self, root: Path, port: int):
        super().__init__(root.name, root.parent, port, logical=True)
        self.archiving = False  # archive_mode is on (set by whoever configured it)

    def ensure_initialized(self) -> bool:
        """Never ``initdb`` an instance: its data comes from :meth:`seed`."""
        if not self.is_initialized():
            raise LocalRDSError(f"no PostgreSQL data in {self.data_dir}")
        return False

    def seed(self, source: Cluster) -> None:
        """Copy the data dir and admin password of the stopped ``source``."""
        if source.is_running():
            raise LocalRDSError(f"cannot copy {source.data_dir} while its server runs")
        self.seed_from(source.data_dir, source.password_file)

    def seed_from(self, data_dir: Path, password_file: Path) -> None:
        """Copy a data dir that no server uses (template, snapshot, base backup)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._chown(self.root)
        subprocess.run(["cp", "-a", "--", str(data_dir), str(self.data_dir)], check=True, capture_output=True)
        for leftover in ("postmaster.pid", "postmaster.opts", "recovery.signal", "standby.signal", "backup_manifest"):
            (self.data_dir / leftover).unlink(missing_ok=True)
        shutil.copy2(password_file, self.password_file)
        self.set_port(self.port)

    def append_conf(self, settings: dict[str, str]) -> None:
        """Add settings to ``postgresql.auto.conf`` (the last value of a name wins)."""
        with (self.data_dir / "postgresql.auto.conf").open("a") as handle:
            for key, value in settings.items():
                handle.write(f"{key} = {value}\n")

    def remove_conf(self, keys: tuple[str, ...]) -> None:
        """Drop settings from ``postgresql.auto.conf`` (read at the next start)."""
        conf = self.data_dir / "postgresql.auto.conf"
        kept = [line for line in conf.read_text().splitlines(keepends=True) if line.split("=", 1)[0].strip() not in keys]
        conf.write_text("".join(kept))

    def _passfile(self) -> Path:
        """A libpq password file for ``rdsadmin`` (mode 600, owned by the server's user)."""
        passfile = self.root / ".pgpass"
        passfile.write_text(f"{self.host}:{self.port}:*:{ADMIN_ROLE}:{self.superuser_password}\n")
        passfile.chmod(0o600)
        self._chown(passfile)
        return passfile

    def backup_to(self, target: Path) -> str:
        """A consistent copy of the data in ``target/data`` (+ ``superuser.pw``).

        A running server is copied with ``pg_basebackup`` (consistent as of the
        end of the backup, the WAL it needs included); a stopped one by copying
        its data dir (a crashed one's copy recovers like the crash would).
        Returns the method used.
        """
        target.mkdir(parents=True, exist_ok=True)
        self._chown(target)
        if self.is_running():
            conninfo = f"host={self.host} port={self.port} user={ADMIN_ROLE} dbname=postgres sslmode=disable"
            args = ["pg_basebackup", "-d", conninfo, "-D", str(target / "data"), "--checkpoint=fast", "--no-sync", "--no-manifest", "-X", "stream"]
            self._run(args, timeout=600, env={"PGPASSFILE": str(self._passfile())})
            method = "pg_basebackup"
        else:
            subprocess.run(["cp", "-a", "--", str(self.data_dir), str(target / "data")], check=True, capture_output=True)
            for leftover in ("postmaster.pid", "postmaster.opts"):
                (target / "data" / leftover).unlink(missing_ok=True)
            for slot in (target / "data" / "pg_replslot").glob("*"):
                shutil.rmtree(slot, ignore_errors=True)  # as pg_basebackup: slots are not part of a copy
            method = "copy"
        shutil.copy2(self.password_file, target / "superuser.pw")
        return method

    def reload(self) -> None:
        self._run(["pg_ctl", "reload", "-D", str(self.data_dir)], timeout=30)

    def switch_wal(self) -> str:
        """Close the current WAL segment; returns its name (the one to wait for in the archive).

        A restore point record first, so that there is always something to
        close (a switch right after another would close nothing).
        """
        with self.admin_connect() as conn:
            conn.execute("SELECT pg_create_restore_point('local_rds')")
            return conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]

    def last_commit_time(self) -> datetime.datetime | None:
        """The time of the last commit since the server started (None: none yet)."""
        with self.admin_connect() as conn:
            return conn.execute("SELECT (pg_last_committed_xact()).timestamp").fetchone()[0]

    def wait_promoted(self, timeout: float = 120) -> None:
        """Wait until recovery has ended (the target was reached) and the server accepts writes."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.admin_connect() as conn:
                    if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        return
            except Exception as exc:  # the server may stop if recovery fails
                if type(exc).__module__.startswith("psycopg") and not self.is_running():
                    raise LocalRDSError(f"point-in-time recovery failed; see {self.log_file}") from exc
                if not type(exc).__module__.startswith("psycopg"):
                    raise
            if time.monotonic() > deadline:
                raise LocalRDSError(f"recovery did not end within {timeout:.0f}s; see {self.log_file}")
            time.sleep(0.05)

    def start(self) -> bool:
        if not self.is_running() and not port_is_free(self.port):
            raise PortUnavailable(f"port {self.port} on 127.0.0.1 is taken by another program")
        started = super().start()
        if started and self.archiving:
            # The checkpointer, which enforces archive_timeout, computes its first
            # sleep while startup still runs and then sleeps checkpoint_timeout
            # (5 min) before it looks at archive_timeout. A reload wakes it.
            self.reload()
        return started

    def kill(self) -> bool:
        """Stop abruptly, as a crash would (``pg_ctl stop -m immediate``)."""
        if not self.is_running():
            return False
        self._run(["pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", "30"], timeout=60)
        return True

    def restart(self) -> None:
        self.stop()
        self.start()

    def move(self, port: int) -> None:
        """Listen on another port from now on (restarts a running server)."""
        running = self.is_running()
        self.stop()
        self.set_port(port)
        if running:
            self.start()

    def destroy(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` or ``immediate``) and delete its files."""
        if self.is_initialized():
            (self.kill if mode == "immediate" else self.stop)()
        shutil.rmtree(self.root, ignore_errors=True)

    def postmaster_pid(self) -> int | None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def admin_connect(self, dbname: str = "postgres") -> Any:
        """A superuser session as ``rdsadmin`` (TCP; the password is in its file)."""
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            dbname=dbname,
            user=ADMIN_ROLE,
            password=self.superuser_password,
            sslmode="disable",
            autocommit=True,
            connect_timeout=10,
        )

    def rotate_admin_password(self) -> None:
        """Give this copy an ``rdsadmin`` password of its own."""
        sql = _sql()
        password = new_password()
        with self.admin_connect() as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(ADMIN_ROLE), sql.Literal(password)))
        self.password_file.write_text(password + "\n")

    def create_master(self, master: MasterUser, db_name: str | None) -> None:
        """The master role and, when asked, its database (as RDS does at creation)."""
        sql = _sql()
        role = sql.Identifier(master.username)
        with self.admin_connect() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN SUPERUSER CREATEDB CREATEROLE PASSWORD {}").format(role, sql.Literal(master.password)),
            )
            conn.execute(sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(sql.Identifier(RDS_ROLES[0]), role))
            if db_name and db_name != "postgres":
                # FILE_COPY (PostgreSQL 14's way) writes a few WAL records instead of
                # the whole template (8 MiB that every base backup and archive would carry).
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} STRATEGY FILE_COPY").format(sql.Identifier(db_name), role))

    def set_role_password(self, username: str, password: str) -> None:
        sql = _sql()
        with self.admin_connect() as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(username), sql.Literal(password)))


def write_self_signed_certificate(cluster: Cluster) -> None:
    """``server.crt``/``server.key`` in the data dir, for ``ssl = on``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_file = cluster.data_dir / "server.key"
    cert_file = cluster.data_dir / "server.crt"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key_file.chmod(0o600)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    for path in (key_file, cert_file):
        cluster._chown(path)  # noqa: SLF001 - same package family, the server reads them as postgres


class Template:
    """The stopped cluster every instance is copied from (built once)."""

    def __init__(self, pg_dir: Path):
        self.cluster = Cluster("template", pg_dir, port=0, logical=True, extra_conf=TEMPLATE_CONF, initdb_args=TEMPLATE_INITDB)
        self.marker = self.cluster.root / "READY"
        self._lock = threading.Lock()

    def ensure(self) -> Cluster:
        """The ready template; builds it when missing, stale or half-built."""
        with self._lock:
            if not self._ready():
                self._build()
            return self.cluster

    def warm(self) -> None:
        """Build ahead of the first CreateDBInstance (run in a thread)."""
        try:
            self.ensure()
        except Exception:  # the first create retries and reports the reason
            log.exception("building the RDS template cluster failed")

    def stop(self) -> None:
        with self._lock:
            if self.cluster.is_initialized():
                self.cluster.stop()

    def _ready(self) -> bool:
        try:
            layout = self.marker.read_text().strip()
        except OSError:
            return False
        return layout == TEMPLATE_LAYOUT and self.cluster.is_initialized() and not self.cluster.is_running()

    def _build(self) -> None:
        started = time.monotonic()
        if self.cluster.is_initialized():
            self.cluster.stop()
        shutil.rmtree(self.cluster.root, ignore_errors=True)
        self.cluster.port = free_port()
        self.cluster.ensure_initialized()
        write_self_signed_certificate(self.cluster)
        self.cluster.start()
        try:
            _make_rds_roles(self.cluster)
        finally:
            self.cluster.stop()
        self.marker.write_text(TEMPLATE_LAYOUT + "\n")
        log.info("RDS template cluster built in %.1fs", time.monotonic() - started)


def _make_rds_roles(cluster: Cluster) -> None:
    """Rename the bootstrap superuser to ``rdsadmin`` and add the rds_* roles.

    A session user cannot be renamed, so a temporary superuser does it.
    """
    import psycopg

    sql = _sql()
    boot_password = new_password()
    with cluster.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} SUPERUSER LOGIN PASSWORD {}").format(sql.Identifier(_BOOTSTRAP_ROLE), sql.Literal(boot_password)))
    boot = {"host": cluster.host, "port": cluster.port, "dbname": "postgres", "sslmode": "disable", "autocommit": True}
    with psycopg.connect(**boot, user=_BOOTSTRAP_ROLE, password=boot_password) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} RENAME TO {}").format(sql.Identifier("postgres"), sql.Identifier(ADMIN_ROLE)))
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(ADMIN_ROLE), sql.Literal(cluster.superuser_password)))
    with psycopg.connect(**boot, user=ADMIN_ROLE, password=cluster.superuser_password) as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(_BOOTSTRAP_ROLE)))
        for role in RDS_ROLES:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(sql.Identifier("rds_replication"), sql.Identifier("rds_superuser")))


@dataclass
class Instance:
    """A running (or stopped) server and the moto object it backs."""

    owner: Any
    cluster: InstanceCluster
    master_username: str
    region: str = ""
    archive: WalArchive | None = None  # automated backups (BackupRetentionPeriod > 0)
    base_backup: threading.Thread | None = field(default=None, repr=False)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _latest: tuple[float, datetime.datetime | None] | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        return self.cluster.port


@dataclass(frozen=True)
class SnapshotSeed:
    """Restore from a DB snapshot's files."""

    files: SnapshotFiles


@dataclass(frozen=True)
class PointInTimeSeed:
    """Restore ``source``'s automated backups to ``target`` (None: the latest time)."""

    source: Instance
    target: datetime.datetime | None


def archive_timeout_s() -> int:
    value = os.environ.get("LOCAL_RDS_ARCHIVE_TIMEOUT_S", "")
    try:
        return max(1, int(value)) if value else DEFAULT_ARCHIVE_TIMEOUT_S
    except ValueError:
        log.warning("LOCAL_RDS_ARCHIVE_TIMEOUT_S=%r is not a number of seconds; using %s", value, DEFAULT_ARCHIVE_TIMEOUT_S)
        return DEFAULT_ARCHIVE_TIMEOUT_S


class Fleet:
    """Every instance server of one local AWS endpoint process, and their backups."""

    # How long LatestRestorableTime of a running instance is reused (DescribeDBInstances
    # polls would otherwise connect to every server each time).
    LATEST_CACHE_S = 1.0
    ARCHIVE_WAIT_S = 30.0

    def __init__(self, pg_dir: Path):
        self.template = Template(pg_dir)
        self.instances_dir = Path(pg_dir) / "instances"
        self.wal_dir = Path(pg_dir) / "wal"
        self.snapshots = SnapshotStore(pg_dir)
        self.owner_file = self.instances_dir / ".owner"
        self.archive_timeout_s = archive_timeout_s()
        self._lock = threading.Lock()
        self._instances: dict[int, Instance] = {}
        self._version: str | None = None
        self._script: Path | None = None

    # -- registry ---------------------------------------------------------------
    def get(self, owner: Any) -> Instance | None:
        return self._instances.get(id(owner))

    def all(self) -> list[Instance]:
        with self._lock:
            return list(self._instances.values())

    def server_version(self) -> str:
        """``major.minor`` of the PostgreSQL that really runs (e.g. ``15.18``)."""
        if self._version is None:
            out = self.template.cluster._run(["postgres", "--version"]).stdout  # noqa: SLF001
            match = re.search(r"\)\s+(\d+(?:\.\d+)?)", out)
            self._version = match.group(1) if match else out.strip()
        return self._version

    def check_port(self, port: int, instance: Instance | None = None) -> None:
        """Raise :class:`PortUnavailable` unless ``port`` can be used for ``instance``."""
        taken = {i.port for i in self._instances.values() if i is not instance}
        if port in taken:
            raise PortUnavailable(f"port {port} is used by another local RDS instance")
        if not port_is_free(port):
            raise PortUnavailable(f"port {port} on 127.0.0.1 is taken by another program")

    def _allocate_port(self, requested: int | None) -> int:
        if requested:
            self.check_port(requested)
            return requested
        taken = {i.port for i in self._instances.values()}
        for _ in range(50):
            port = free_port()
            if port not in taken:
                return port
        raise LocalRDSError("no free loopback port")

    def _allocate_root(self, name: str) -> Path:
        used = {i.cluster.root for i in self._instances.values()}
        for n in range(1, 1000):
            root = self.instances_dir / (name if n == 1 else f"{name}-{n}")
            if root not in used and not root.exists():
                return root
        raise LocalRDSError(f"no free data folder for {name} in {self.instances_dir}")

    def _register(self, owner: Any, name: str, master_username: str, *, port: int | None, region: str, archive: bool) -> Instance:
        with self._lock:
            cluster = InstanceCluster(self._allocate_root(name), self._allocate_port(port))
            cluster.root.mkdir(parents=True)  # reserves the folder
            instance = Instance(owner, cluster, master_username, region)
            if archive:
                instance.archive = self._new_archive(name, region, cluster)
            self._instances[id(owner)] = instance
        return instance

    def _new_archive(self, name: str, region: str, cluster: InstanceCluster) -> WalArchive:
        if self._script is None or not self._script.exists():
            self._script = install_script(self.wal_dir)
        taken = {i.archive.root for i in self._instances.values() if i.archive is not None}
        root = allocate(self.wal_dir / safe_name(region or "local"), safe_name(name), taken)
        archive = WalArchive(root, self._script, cluster.bindir, self.archive_timeout_s)
        archive.archive_dir.mkdir(parents=True)
        for path in (root, archive.archive_dir):
            cluster._chown(path)  # noqa: SLF001 - the server's archive_command writes there
        return archive

    def _configure(self, instance: Instance) -> None:
        """Archive settings of a seeded, not yet started cluster."""
        cluster = instance.cluster
        if instance.archive is not None:
            cluster.append_conf(instance.archive.server_conf())
            cluster.archiving = True
        else:
            cluster.append_conf({"archive_mode": "off"})

    def _start_base_backup(self, instance: Instance, on_ready: Callable[[Instance], None] | None) -> None:
        """The base backup point-in-time recovery starts from, in the background.

        As RDS backs up a new instance after it is created: until it is done,
        the instance has no restorable window (no ``LatestRestorableTime``) and
        its automated snapshot is ``creating``. ``on_ready`` runs once it is done.
        """
        if instance.archive is None:
            return
        thread = threading.Thread(target=self._base_backup, args=(instance, on_ready), name=f"rds-base-{instance.cluster.name}", daemon=True)
        instance.base_backup = thread
        thread.start()

    def _base_backup(self, instance: Instance, on_ready: Callable[[Instance], None] | None) -> None:
        archive = instance.archive
        assert archive is not None
        try:
            with instance.lock:
                if self.get(instance.owner) is not instance:
                    return  # deleted meanwhile
                started = time.monotonic()
                instance.cluster.backup_to(archive.base.root)
                archive.earliest = now()
                log.info("RDS instance %s: base backup in %.2fs", instance.cluster.name, time.monotonic() - started)
            if on_ready is not None:
                on_ready(instance)
        except Exception:
            log.exception("the base backup of RDS instance %s failed: it has no point-in-time recovery", instance.cluster.name)

    def wait_base_backup(self, owner: Any, timeout: float = 60) -> bool:
        """Wait for the background base backup (True when there is one, done)."""
        instance = self._require(owner)
        if instance.base_backup is not None:
            instance.base_backup.join(timeout)
        return instance.archive is not None and instance.archive.earliest is not None

    # -- lifecycle ------------------------------------------------------------------
    def create(
        self,
        owner: Any,
        name: str,
        master: MasterUser,
        db_name: str | None,
        *,
        port: int | None = None,
        region: str = "",
        archive: bool = False,
        on_ready: Callable[[Instance], None] | None = None,
    ) -> Instance:
        """A new server from the template with the master role and database.

        With ``archive``, its WAL is archived from the start and a base backup
        follows in the background (``on_ready`` runs when it is done).
        """
        started = time.monotonic()
        template = self.template.ensure()
        instance = self._register(owner, name, master.username, port=port, region=region, archive=archive)
        cluster = instance.cluster
        try:
            cluster.seed(template)
            self._configure(instance)
            cluster.start()
            cluster.rotate_admin_password()
            cluster.create_master(master, db_name)
        except Exception:
            self.destroy(owner, mode="immediate")
            raise
        log.info("RDS instance %s: PostgreSQL on 127.0.0.1:%s in %.2fs", name, cluster.port, time.monotonic() - started)
        self._start_base_backup(instance, on_ready)
        return instance

    def restore(
        self,
        owner: Any,
        name: str,
        master_username: str,
        seed: SnapshotSeed | PointInTimeSeed,
        *,
        port: int | None = None,
        region: str = "",
        archive: bool = False,
        on_ready: Callable[[Instance], None] | None = None,
    ) -> Instance:
        """A new server from a snapshot, or from automated backups at a point in time."""
        started = time.monotonic()
        instance = self._register(owner, name, master_username, port=port, region=region, archive=archive)
        cluster = instance.cluster
        try:
            if isinstance(seed, SnapshotSeed):
                cluster.seed_from(seed.files.data_dir, seed.files.password_file)
                self._configure(instance)
                cluster.start()  # a pg_basebackup copy recovers from its backup_label, a stopped copy just starts
            else:
                self._recover(instance, seed)
            cluster.rotate_admin_password()
        except Exception:
            self.destroy(owner, mode="immediate")
            raise
        log.info("RDS instance %s restored on 127.0.0.1:%s in %.2fs", name, cluster.port, time.monotonic() - started)
        self._start_base_backup(instance, on_ready)
        return instance

    def _recover(self, instance: Instance, seed: PointInTimeSeed) -> None:
        """Base backup + archived WAL up to the target, then promote."""
        source, cluster = seed.source, instance.cluster
        if source.archive is None:
            raise LocalRDSError("the source DB instance keeps no automated backups")
        wal = cluster.root / "restore-wal"
        with source.lock:
            if seed.target is None:
                self._seal(source)  # the latest restorable time is now: archive the current segment
            plan = source.archive.plan(seed.target)
            cluster.seed_from(Path(plan.base) / "data", Path(plan.base) / "superuser.pw")
            plan.link_segments(wal)
        self._configure(instance)
        cluster.append_conf(plan.recovery_conf(wal))
        signal_file = cluster.data_dir / "recovery.signal"
        signal_file.touch()
        cluster._chown(signal_file)  # noqa: SLF001
        cluster.start()
        cluster.wait_promoted()
        cluster.remove_conf(RECOVERY_KEYS)
        shutil.rmtree(wal, ignore_errors=True)
        if cluster.archiving:
            cluster.reload()  # wake the checkpointer now that recovery is over (see start())

    def _require(self, owner: Any) -> Instance:
        instance = self.get(owner)
        if instance is None:
            raise LocalRDSError("this DB instance has no local PostgreSQL server")
        return instance

    def destroy(self, owner: Any, mode: str = "fast") -> None:
        with self._lock:
            instance = self._instances.pop(id(owner), None)
        if instance is not None:
            with instance.lock:
                instance.cluster.destroy(mode)
                if instance.archive is not None:
                    instance.archive.destroy()

    def _do(self, owner: Any, action: str, *args: Any) -> Any:
        instance = self._require(owner)
        with instance.lock:
            return getattr(instance.cluster, action)(*args)

    def start(self, owner: Any) -> bool:
        return self._do(owner, "start")

    def stop(self, owner: Any) -> bool:
        instance = self._require(owner)
        with instance.lock:
            self._seal_before_stop(instance)
            return instance.cluster.stop()

    def kill(self, owner: Any) -> bool:
        instance = self._require(owner)
        with instance.lock:
            if instance.archive is not None:
                instance.archive.complete_until = None  # a crash: what was not archived waits in pg_wal
            return instance.cluster.kill()

    def restart(self, owner: Any) -> None:
        instance = self._require(owner)
        with instance.lock:
            self._seal_before_stop(instance)
            instance.cluster.restart()

    def move(self, owner: Any, port: int) -> None:
        instance = self._require(owner)
        with self._lock:
            self.check_port(port, instance)
        with instance.lock:
            self._seal_before_stop(instance)
            instance.cluster.move(port)

    def set_master_password(self, owner: Any, password: str) -> None:
        instance = self._require(owner)
        with instance.lock:
            instance.cluster.set_role_password(instance.master_username, password)

    def is_running(self, owner: Any) -> bool:
        return self._do(owner, "is_running")

    # -- backups ----------------------------------------------------------------------
    def _seal(self, instance: Instance) -> None:
        """Archive every change made so far (before a clean stop, or for the latest restore)."""
        archive, cluster = instance.archive, instance.cluster
        if archive is None or not cluster.is_running():
            return
        segment = cluster.switch_wal()
        deadline = time.monotonic() + self.ARCHIVE_WAIT_S
        while not archive.has(segment):
            if time.monotonic() > deadline:
                raise LocalRDSError(f"WAL segment {segment} was not archived within {self.ARCHIVE_WAIT_S:.0f}s; see {cluster.log_file}")
            time.sleep(0.02)
        archive.complete_until = now()
        instance._latest = None  # noqa: SLF001

    def _seal_before_stop(self, instance: Instance) -> None:
        """Archive what is left before a clean stop; a stop never fails for it."""
        try:
            self._seal(instance)
        except Exception:
            log.exception("could not archive the last WAL of RDS instance %s before stopping it", instance.cluster.name)

    def snapshot(self, owner: Any, snapshot: Any, identifier: str, region: str) -> SnapshotFiles:
        """``CreateDBSnapshot``: a consistent copy of the instance's data now."""
        instance = self._require(owner)
        files = self.snapshots.reserve(snapshot, identifier, region)
        try:
            with instance.lock:
                started = time.monotonic()
                method = instance.cluster.backup_to(files.root)
                files.taken = now()
        except BaseException:
            self.snapshots.delete(snapshot)
            raise
        log.info("RDS snapshot %s of %s (%s) in %.2fs", identifier, instance.cluster.name, method, time.monotonic() - started)
        return files

    def adopt_base(self, owner: Any, snapshot: Any, identifier: str, region: str) -> SnapshotFiles | None:
        """The automated snapshot RDS makes at creation: the base backup's data (hard links)."""
        instance = self.get(owner)
        if instance is None or instance.archive is None or instance.archive.earliest is None:
            return None
        files = self.snapshots.reserve(snapshot, identifier, region)
        try:
            files.root.rmdir()
            hardlink_copy(instance.archive.base.root, files.root)
            files.taken = instance.archive.earliest
        except BaseException:
            self.snapshots.delete(snapshot)
            raise
        return files

    def restorable_window(self, owner: Any) -> tuple[datetime.datetime | None, datetime.datetime | None]:
        """(EarliestRestorableTime, LatestRestorableTime); (None, None) without automated backups.

        The latest time is the last commit in archived WAL, or now when the
        server runs and has committed nothing since (an idle instance, or one
        whose changes are all archived), or the time of a clean stop.
        """
        instance = self._require(owner)
        archive = instance.archive
        if archive is None or archive.earliest is None:
            return None, None
        cached = instance._latest  # noqa: SLF001
        if cached is not None and time.monotonic() - cached[0] < self.LATEST_CACHE_S:
            return archive.earliest, cached[1]
        latest = archive.last_commit()
        fresh = latest is not None and (now() - latest).total_seconds() <= archive.timeout_s + 1
        # Only the server can tell whether it committed anything not archived yet
        # (a fresh archive needs no asking: it lags at most archive_timeout).
        if not fresh and instance.lock.acquire(timeout=5):
            try:
                running = instance.cluster.postmaster_pid() is not None
                last_commit = instance.cluster.last_commit_time() if running else None
            except Exception as exc:  # a server that just crashed: the archive tells
                if not type(exc).__module__.startswith("psycopg"):
                    raise
                running, last_commit = False, None
            finally:
                instance.lock.release()
            checked = now()
            if running and last_commit is None and archive.complete_until is not None:
                latest = checked  # no commit since a clean stop sealed the archive
            elif running and last_commit is not None and latest is not None and last_commit <= latest:
                latest = checked  # every commit is archived
            elif not running and archive.complete_until is not None:
                latest = max(latest or archive.complete_until, archive.complete_until)
        if latest is None or latest < archive.earliest:
            latest = archive.earliest  # the base backup alone restores that moment
        instance._latest = (time.monotonic(), latest)  # noqa: SLF001
        return archive.earliest, latest

    # -- the endpoint process starting and stopping ------------------------------------
    def claim(self) -> None:
        """Own the instances folder; clear what a crashed run left there."""
        self.instances_dir.mkdir(parents=True, exist_ok=True)
        previous = _read_pid(self.owner_file)
        if previous and previous != os.getpid() and _pid_alive(previous) and _is_local_aws(previous):
            raise LocalRDSError(f"another local AWS endpoint (pid {previous}) uses {self.instances_dir}; stop it first")
        stop_leftovers(self.instances_dir.parent)
        self.owner_file.write_text(f"{os.getpid()}\n")

    def shutdown(self) -> None:
        """Stop every instance server and discard its data and backups (moto's state dies with us)."""
        started = time.monotonic()
        with self._lock:
            instances = list(self._instances.values())
            self._instances.clear()

        def end(instance: Instance) -> None:
            with instance.lock:  # after a backup that is running
                instance.cluster.destroy("fast")
                if instance.archive is not None:
                    instance.archive.destroy()

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(end, instances))
        self.snapshots.clear()
        shutil.rmtree(self.wal_dir, ignore_errors=True)
        self.template.stop()
        self.owner_file.unlink(missing_ok=True)
        log.info("stopped %d RDS instance server(s) in %.1fs", len(instances), time.monotonic() - started)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_local_aws(pid: int) -> bool:
    try:
        return b"local_aws" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def stop_leftovers(pg_dir: Path) -> list[str]:
    """Stop instance servers (and a template) left running, delete instance data.

    For a state dir whose endpoint process is gone (crashed or killed): its
    moto state is lost, so its instance servers are orphans, and so are the
    snapshots and WAL archives it kept. Returns the names of the instance
    folders removed.
    """
    pg_dir = Path(pg_dir)
    instances_dir = pg_dir / "instances"
    removed = []
    for root in sorted(p for p in instances_dir.glob("*") if p.is_dir()) if instances_dir.is_dir() else []:
        try:
            InstanceCluster(root, 0).destroy("immediate")
        except PostgresError:
            log.exception("could not stop the leftover server in %s", root)
            continue
        removed.append(root.name)
    for backups in (pg_dir / "snapshots", pg_dir / "wal"):
        shutil.rmtree(backups, ignore_errors=True)
    template = Cluster("template", pg_dir, port=0)
    if template.is_running():
        template._run(["pg_ctl", "stop", "-D", str(template.data_dir), "-m", "immediate", "-w"])  # noqa: SLF001
    if removed:
        log.info("removed %d RDS instance server(s) left by a previous run: %s", len(removed), ", ".join(removed))
    return removed
