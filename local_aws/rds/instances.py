"""Real PostgreSQL servers behind local RDS DB instances, one cluster each.

An RDS instance is a server of its own, so every local instance is a
PostgreSQL cluster of its own: its own port, roles and databases, in
``<pg_dir>/instances/<db-instance-id>/`` (``data/``, ``postgresql.log`` and
``superuser.pw``, the mode-600 password of the internal ``rdsadmin`` role).

Creating one is a copy, not an ``initdb``: a template data dir is built once
per state dir (``<pg_dir>/template``) and copied for each instance, which then
starts on a free loopback port. Everything that makes a cluster is a copy of a
stopped data dir (:meth:`InstanceCluster.seed`), so a snapshot can later be a
stopped copy (or ``pg_basebackup``) of an instance and a restore a new
instance seeded from it.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_aws.postgres import Cluster, PostgresError, free_port, port_is_free

log = logging.getLogger("local_aws.rds")

ADMIN_ROLE = "rdsadmin"
RDS_ROLES = ("rds_superuser", "rds_replication")
# Bump when the template's content changes: existing templates are rebuilt.
TEMPLATE_LAYOUT = "rds-template-3"
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
}
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

    def ensure_initialized(self) -> bool:
        """Never ``initdb`` an instance: its data comes from :meth:`seed`."""
        if not self.is_initialized():
            raise LocalRDSError(f"no PostgreSQL data in {self.data_dir}")
        return False

    def seed(self, source: Cluster) -> None:
        """Copy the data dir and admin password of the stopped ``source``."""
        if source.is_running():
            raise LocalRDSError(f"cannot copy {source.data_dir} while its server runs")
        self.root.mkdir(parents=True, exist_ok=True)
        self._chown(self.root)
        subprocess.run(["cp", "-a", "--", str(source.data_dir), str(self.data_dir)], check=True, capture_output=True)
        shutil.copy2(source.password_file, self.password_file)
        self.set_port(self.port)

    def start(self) -> bool:
        if not self.is_running() and not port_is_free(self.port):
            raise PortUnavailable(f"port {self.port} on 127.0.0.1 is taken by another program")
        return super().start()

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
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db_name), role))

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
        self.cluster = Cluster("template", pg_dir, port=0, logical=True, extra_conf=TEMPLATE_CONF)
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
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def port(self) -> int:
        return self.cluster.port


class Fleet:
    """Every instance server of one local AWS endpoint process."""

    def __init__(self, pg_dir: Path):
        self.template = Template(pg_dir)
        self.instances_dir = Path(pg_dir) / "instances"
        self.owner_file = self.instances_dir / ".owner"
        self._lock = threading.Lock()
        self._instances: dict[int, Instance] = {}
        self._version: str | None = None

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

    # -- lifecycle ------------------------------------------------------------------
    def create(self, owner: Any, name: str, master: MasterUser, db_name: str | None, port: int | None = None) -> Instance:
        """A new server from the template with the master role and database."""
        started = time.monotonic()
        template = self.template.ensure()
        with self._lock:
            cluster = InstanceCluster(self._allocate_root(name), self._allocate_port(port))
            cluster.root.mkdir(parents=True)  # reserves the folder
            instance = Instance(owner, cluster, master.username)
            self._instances[id(owner)] = instance
        try:
            cluster.seed(template)
            cluster.start()
            cluster.rotate_admin_password()
            cluster.create_master(master, db_name)
        except Exception:
            self.destroy(owner, mode="immediate")
            raise
        log.info("RDS instance %s: PostgreSQL on 127.0.0.1:%s in %.2fs", name, cluster.port, time.monotonic() - started)
        return instance

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

    def _do(self, owner: Any, action: str, *args: Any) -> Any:
        instance = self._require(owner)
        with instance.lock:
            return getattr(instance.cluster, action)(*args)

    def start(self, owner: Any) -> bool:
        return self._do(owner, "start")

    def stop(self, owner: Any) -> bool:
        return self._do(owner, "stop")

    def kill(self, owner: Any) -> bool:
        return self._do(owner, "kill")

    def restart(self, owner: Any) -> None:
        self._do(owner, "restart")

    def move(self, owner: Any, port: int) -> None:
        instance = self._require(owner)
        with self._lock:
            self.check_port(port, instance)
        self._do(owner, "move", port)

    def set_master_password(self, owner: Any, password: str) -> None:
        instance = self._require(owner)
        with instance.lock:
            instance.cluster.set_role_password(instance.master_username, password)

    def is_running(self, owner: Any) -> bool:
        return self._do(owner, "is_running")

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
        """Stop every instance server and discard its data (moto's state dies with us)."""
        started = time.monotonic()
        with self._lock:
            instances = list(self._instances.values())
            self._instances.clear()
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda i: i.cluster.destroy("fast"), instances))
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
    moto state is lost, so its instance servers are orphans. Returns the
    names of the instance folders removed.
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
    template = Cluster("template", pg_dir, port=0)
    if template.is_running():
        template._run(["pg_ctl", "stop", "-D", str(template.data_dir), "-m", "immediate", "-w"])  # noqa: SLF001
    if removed:
        log.info("removed %d RDS instance server(s) left by a previous run: %s", len(removed), ", ".join(removed))
    return removed
