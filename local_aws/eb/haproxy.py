"""One HAProxy per served environment: its load balancer, on a loopback port.

HAProxy (Debian's package) runs in master-worker mode (``-W``) as a child of
the endpoint, in its own session, with the configuration written here. The
configuration file always lists the servers that should be in service, so a
restart or a reload (SIGUSR2 to the master: new workers take the listening
socket, old ones finish their requests and leave) reproduces the state.

Instances come and go through the runtime API of the worker's admin socket,
without any reload, so no client connection is ever closed by a membership
change:

* ``add server`` (with its own ``check`` parameters: dynamic servers do not
  inherit ``default-server``), ``enable health``, ``enable server``;
* ``set server <b>/<s> state drain`` (no new requests), then, once its
  current sessions are 0, ``state maint`` and ``del server``.

A reload is only needed when the health check itself changes (path, matcher,
interval, thresholds). HAProxy checks the servers itself, like an ELB target
group, so it routes around an instance that fails its health check; the
endpoint's own checks (``serving``) decide the environment's health.

Like an ALB, it does not retry a request elsewhere: a connection an instance
refuses (its process just died) is a 503, a request in flight on it a 502;
the endpoint takes a dead instance out within a tick. Like the nginx of the
Elastic Beanstalk platform in front of the app, it opens a new connection to
the instance for each request (``option http-server-close``); the client's
connection stays open. So no idle connection that the instance closes
(gunicorn's keep-alive timeout, a worker recycled by ``--max-requests``) can
fail under a request: the platform's nginx has no such race either.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BACKEND = "app"
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes


class HAProxyError(RuntimeError):
    pass


def binary() -> str | None:
    """The haproxy binary: ``LOCAL_HAPROXY_BIN``, or Debian's."""
    configured = os.environ.get("LOCAL_HAPROXY_BIN")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("haproxy") or (shutil.which("haproxy", path="/usr/sbin:/sbin") or None)


def matcher_regex(matcher: str) -> str:
    """``MatcherHTTPCode`` (``200``, ``200,202``, ``200-299``) as an anchored regex of status codes."""
    alternatives = []
    for part in matcher.split(","):
        low, _, high = part.strip().partition("-")
        if high:
            alternatives.extend(str(code) for code in range(int(low), int(high) + 1))
        else:
            alternatives.append(low)
    return "^(" + "|".join(alternatives) + ")$"


@dataclass(frozen=True)
class HealthCheck:
    """The target group's health check, at local speed (see serving.health_check)."""

    path: str = "/"
    matcher: str = "200"
    interval_ms: int = 500
    timeout_ms: int = 1000
    rise: int = 3
    fall: int = 5

    def server_params(self) -> str:
        return f"check inter {self.interval_ms} fall {self.fall} rise {self.rise}"


def _short_socket(path: Path) -> Path:
    if len(str(path)) <= SOCKET_PATH_MAX:
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"local-eb-{digest}.sock"


class LoadBalancer:
    """An HAProxy master process and its configuration, for one environment."""

    def __init__(self, directory: Path, port: int, check: HealthCheck):
        self.dir = directory
        self.port = port
        self.check = check
        self.config = directory / "haproxy.cfg"
        self.pidfile = directory / "haproxy.pid"
        self.log = directory / "haproxy.log"
        self.admin_socket = _short_socket(directory / "admin.sock")
        self.servers: dict[str, int] = {}  # in the configuration (in service or draining): name -> port
        self.proc: subprocess.Popen[bytes] | None = None

    # -- configuration -------------------------------------------------------------------------
    def render(self) -> str:
        check = self.check
        servers = "".join(f"    server {name} 127.0.0.1:{port} {check.server_params()}\n" for name, port in sorted(self.servers.items()))
        return (
            "# Written by local_aws.eb.haproxy; rewritten on every change.\n"
            "global\n"
            "    maxconn 2048\n"
            f"    stats socket {self.admin_socket} mode 600 level admin\n"
            "    hard-stop-after 30s\n"
            "defaults\n"
            "    mode http\n"
            "    option dontlognull\n"
            "    timeout connect 2s\n"
            "    timeout client 60s\n"
            "    timeout server 60s\n"
            "    timeout http-keep-alive 10s\n"
            "    timeout queue 10s\n"
            f"    timeout check {check.timeout_ms}ms\n"
            "    retries 0\n"
            "frontend web\n"
            f"    bind 127.0.0.1:{self.port}\n"
            "    option forwardfor\n"
            "    option http-server-close\n"
            f"    default_backend {BACKEND}\n"
            f"backend {BACKEND}\n"
            "    balance roundrobin\n"
            f"    option httpchk GET {check.path}\n"
            f"    http-check expect rstatus {matcher_regex(check.matcher)}\n"
            f"{servers}"
        )

    def write(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(self.render())
        tmp.replace(self.config)

    # -- process ----------------------------------------------------------------------------------
    def start(self, marker: dict[str, str]) -> None:
        exe = binary()
        if exe is None:
            raise HAProxyError("HAProxy is not installed; tools/ensure-haproxy.sh installs Debian's package (or set LOCAL_HAPROXY_BIN)")
        self.write()
        checked = subprocess.run([exe, "-c", "-q", "-f", str(self.config)], capture_output=True, text=True, check=False, timeout=30)
        if checked.returncode != 0:
            raise HAProxyError(f"HAProxy refused its configuration: {(checked.stderr or checked.stdout).strip()[-500:]}")
        with contextlib.suppress(FileNotFoundError):
            self.admin_socket.unlink()
        log = self.log.open("ab")
        try:
            self.proc = subprocess.Popen(
                [exe, "-W", "-f", str(self.config), "-p", str(self.pidfile)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **marker},
            )
        finally:
            log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HAProxyError(f"HAProxy exited with {self.proc.returncode}; see {self.log}")
            if self.admin_socket.exists() and self._listening():
                return
            time.sleep(0.02)
        raise HAProxyError(f"HAProxy did not listen on 127.0.0.1:{self.port} within 10 s; see {self.log}")

    def _listening(self) -> bool:
        with socket.socket() as probe:
            probe.settimeout(0.2)
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def reload(self) -> None:
        """Graceful reload: the master starts new workers on the new file; old ones finish their requests."""
        self.write()
        if self.alive() and self.proc:
            os.kill(self.proc.pid, signal.SIGUSR2)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not self._answers():
                time.sleep(0.02)

    def _answers(self) -> bool:
        try:
            self.command("show info")
        except HAProxyError:
            return False
        return True

    def begin_stop(self) -> None:
        """Soft stop: stop listening, finish the requests in flight (see :meth:`stopped`)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGUSR1)

    def stopped(self, force: bool = False) -> bool:
        """Whether the stop is complete; ``force`` kills what is left (idle keep-alive clients hold old workers)."""
        if self.proc is None:
            return True
        if force:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        if self.proc.poll() is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # workers left by a reload
        self.proc = None
        for path in (self.pidfile, self.admin_socket):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return True

    # -- runtime API ----------------------------------------------------------------------------------
    def command(self, line: str, timeout: float = 2.0) -> str:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(timeout)
                sock.connect(str(self.admin_socket))
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise HAProxyError(f"admin socket {self.admin_socket}: {exc}") from exc
        return b"".join(chunks).decode(errors="replace")

    def add(self, name: str, port: int, healthy: bool = True) -> None:
        """Put a server in service; its own health checks start at once.

        A dynamic server starts UP: that is right for an instance that just
        passed its health checks. Otherwise it starts DOWN and HAProxy takes
        it in once it passes ``rise`` checks.
        """
        self.servers[name] = port
        self.write()
        answer = self.command(f"add server {BACKEND}/{name} 127.0.0.1:{port} {self.check.server_params()}")
        if "New server registered" not in answer and "Already exists" not in answer:
            raise HAProxyError(f"add server {name}: {answer.strip()}")
        if not healthy:
            self.command(f"set server {BACKEND}/{name} health down")
        self.command(f"enable health {BACKEND}/{name}")
        self.command(f"enable server {BACKEND}/{name}")

    def drain(self, name: str) -> None:
        """No new requests for this server; those in flight finish."""
        self.command(f"set server {BACKEND}/{name} state drain")

    def sessions(self, name: str) -> int | None:
        """Current sessions and queued requests of a server (None when it is not known)."""
        stats = self.command("show stat -1 4 -1").splitlines()
        if not stats or not stats[0].startswith("# "):
            return None
        header = stats[0][2:].split(",")
        for row in stats[1:]:
            values = dict(zip(header, row.split(","), strict=False))
            if values.get("pxname") == BACKEND and values.get("svname") == name:
                return int(values.get("scur") or 0) + int(values.get("qcur") or 0)
        return None

    def up(self, name: str) -> bool:
        """HAProxy's own view: the server is UP (its checks pass)."""
        for row in self.command(f"show servers state {BACKEND}").splitlines():
            fields = row.split()
            if len(fields) > 6 and fields[3] == name:
                return fields[5] == "2"  # srv_op_state: 2 = running
        return False

    def remove(self, name: str) -> bool:
        """Take a drained server out; True once it is gone from the running HAProxy."""
        self.servers.pop(name, None)
        self.write()
        self.command(f"set server {BACKEND}/{name} state maint")
        answer = self.command(f"del server {BACKEND}/{name}")
        return "Server deleted" in answer or "No such server" in answer or re.search(r"unknown|not found", answer, re.I) is not None
