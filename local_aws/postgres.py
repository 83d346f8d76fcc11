"""Local PostgreSQL clusters on loopback, from Debian's postgresql binaries.

* ``legacy`` (started by ``local_aws up``): stands in for the database on
  Fastier's t3.medium (``wal_level=logical`` so the cut-over can replicate
  from it);
* local RDS (``local_aws.rds``) runs one cluster per DB instance, copied from a
  template cluster, because RDS instances are separate servers (own port, own
  master role, a primary and its restored copy both holding ``fastier``).

PostgreSQL refuses to run as root, so when we are root the server runs as the
``postgres`` OS user, in a directory that user owns. Host connections use
scram-sha-256 passwords (as RDS does); the superuser's password is generated at
``initdb`` and kept in a mode-600 file beside the data, never printed. These
clusters are disposable development data: ``fsync`` is off for speed.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

SUPERUSER = "postgres"


class PostgresError(RuntimeError):
    pass


def find_bindir() -> Path:
    """The newest installed server's bin folder (``LOCAL_PG_BIN`` overrides)."""
    override = os.environ.get("LOCAL_PG_BIN")
    if override:
        path = Path(override)
        if (path / "initdb").exists():
            return path
        raise PostgresError(f"LOCAL_PG_BIN={override} has no initdb")
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresError(
        "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb). "
        "Install them with `make postgres` (apt-get install postgresql) or set LOCAL_PG_BIN."
    )


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Cluster:
    """One PostgreSQL cluster in ``<root>/<name>`` listening on 127.0.0.1:port."""

    def __init__(
        self,
        name: str,
        root: Path,
        port: int,
        logical: bool = False,
        extra_conf: dict[str, str] | None = None,
        *,
        initdb_args: list[str] | None = None,
    ):
        self.name = name
        self.root = Path(root) / name
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log_file = self.root / "postgresql.log"
        self.password_file = self.root / "superuser.pw"
        self.port = port
        self.logical = logical
        self.extra_conf = extra_conf or {}
        self.initdb_args = list(initdb_args or [])
        self.host = "127.0.0.1"
        self._bindir: Path | None = None

    # -- running commands as the right OS user -------------------------------
    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_bindir()
        return self._bindir

    @staticmethod
    def _as_root() -> bool:
        return os.geteuid() == 0

    def _run(self, args: list[str], check: bool = True, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run a PostgreSQL program as the server's OS user; ``env`` adds variables (runuser keeps them)."""
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root():
            cmd = ["runuser", "-u", SUPERUSER, "--", *cmd]
        full_env = {**os.environ, **env} if env else None
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=full_env)
        if check and proc.returncode != 0:
            raise PostgresError(f"{args[0]} failed for cluster {self.name} (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def _chown(self, path: Path) -> None:
        if self._as_root():
            entry = pwd.getpwnam(SUPERUSER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _check_traversable(self) -> None:
        """The postgres user must reach the data dir through every parent."""
        if not self._as_root():
            return
        probe = subprocess.run(["runuser", "-u", SUPERUSER, "--", "test", "-w", str(self.root)], check=False)
        if probe.returncode != 0:
            raise PostgresError(
                f"the '{SUPERUSER}' OS user cannot write {self.root}; PostgreSQL must run as that user. "
                "Give it access to every parent folder (chmod o+x) or set LOCAL_AWS_STATE_DIR to a folder it can reach."
            )

    # -- lifecycle -------------------------------------------------------------
    @property
    def superuser_password(self) -> str:
        return self.password_file.read_text().strip()

    def is_initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def ensure_initialized(self) -> bool:
        """initdb once; returns True when it created the cluster."""
        if self.is_initialized():
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        self._chown(self.root)
        self._check_traversable()
        password = secrets.token_urlsafe(24)
        self.password_file.write_text(password + "\n")
        os.chmod(self.password_file, 0o600)
        pwfile = self.root / ".initdb-pw"
        pwfile.write_text(password + "\n")
        os.chmod(pwfile, 0o600)
        self._chown(pwfile)
        try:
            self._run(
                [
                    "initdb",
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--pwfile",
                    str(pwfile),
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    *self.initdb_args,
                ],
                timeout=300,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self._chown(self.socket_dir)
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "password_encryption": "'scram-sha-256'",
            "max_connections": "200",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "wal_level": "logical" if self.logical else "replica",
            "max_replication_slots": "20",
            "max_wal_senders": "20",
            "max_logical_replication_workers": "8",
            "max_worker_processes": "16",
            "logging_collector": "off",
        }
        conf.update(self.extra_conf)
        with (self.data_dir / "postgresql.auto.conf").open("a") as handle:
            handle.write("# written by local_aws.postgres\n")
            for key, value in conf.items():
                handle.write(f"{key} = {value}\n")
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "# local_aws: loopback only, passwords required over TCP\n"
            "local   all             all                                     trust\n"
            "local   replication     all                                     trust\n"
            "host    all             all             127.0.0.1/32            scram-sha-256\n"
            "host    replication     all             127.0.0.1/32            scram-sha-256\n"
        )
        self._chown(hba)
        return True

    def is_running(self) -> bool:
        if not self.is_initialized():
            return False
        return self._run(["pg_ctl", "status", "-D", str(self.data_dir)], check=False).returncode == 0

    def set_port(self, port: int) -> None:
        """Move a stopped cluster to another port (state dirs outlive ports)."""
        self.port = port
        with (self.data_dir / "postgresql.auto.conf").open("a") as handle:
            handle.write(f"port = {port}\n")

    def start(self) -> bool:
        """Start the cluster; returns False when it was already running."""
        self.ensure_initialized()
        if self.is_running():
            return False
        if not port_is_free(self.port):
            raise PostgresError(
                f"port {self.port} for PostgreSQL cluster '{self.name}' is taken by another program; set LOCAL_PG_{self.name.upper()}_PORT to a free port"
            )
        self.log_file.touch()
        self._chown(self.log_file)
        self._run(
            ["pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60", "-o", f"-p {self.port}"],
            timeout=90,
        )
        self.wait_ready()
        return True

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self._run(["pg_isready", "-h", self.host, "-p", str(self.port)], check=False, timeout=10)
            if proc.returncode == 0:
                return
            time.sleep(0.2)
        raise PostgresError(f"cluster {self.name} did not accept connections on {self.host}:{self.port} within {timeout}s; see {self.log_file}")

    def stop(self) -> bool:
        if not self.is_running():
            return False
        self._run(["pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60"], timeout=90)
        return True

    # -- connecting ----------------------------------------------------------------
    def conninfo(self, dbname: str = "postgres", user: str = SUPERUSER, password: str | None = None) -> dict[str, object]:
        """Connection keywords for psycopg (TCP, so the password is checked)."""
        return {
            "host": self.host,
            "port": self.port,
            "dbname": dbname,
            "user": user,
            "password": self.superuser_password if password is None and user == SUPERUSER else password,
        }

    def connect(self, dbname: str = "postgres", autocommit: bool = True):
        import psycopg  # imported late: the CLI's --help must work without it

        return psycopg.connect(**self.conninfo(dbname), autocommit=autocommit, connect_timeout=10)

    def to_json(self) -> dict[str, object]:
        """What clients need to reach it; the password stays in its file."""
        return {
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "data_dir": str(self.data_dir),
            "superuser": SUPERUSER,
            "superuser_password_file": str(self.password_file),
            "wal_level": "logical" if self.logical else "replica",
        }


def clusters_for(pg_root: Path, legacy_port: int) -> dict[str, Cluster]:
    """The clusters ``local_aws up`` starts (RDS instances start their own)."""
    return {"legacy": Cluster("legacy", pg_root, legacy_port, logical=True)}
