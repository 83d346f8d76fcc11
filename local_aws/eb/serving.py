"""Environments that run their version: instance processes behind an HAProxy.

When the version of a web server environment has something to run (a
``Procfile`` with a ``web:`` process, or the platform's default WSGI command:
see :mod:`.apps`), the environment really runs it:

* each *instance* is one process group (the web command under ``/bin/sh``),
  started in the unpacked bundle with the environment properties, ``PORT``
  and the local AWS credentials and endpoint, on its own loopback port; the
  Auto Scaling group keeps ``MinSize`` of them (at most ``MaxSize``, and at
  most :data:`MAX_INSTANCES` on this machine) and replaces one that dies;
* each environment has its own load balancer: an HAProxy (:mod:`.haproxy`)
  on a stable loopback port, with the environment's health check;
* a supervisor thread health-checks every instance (``HealthCheckPath``,
  ``MatcherHTTPCode``, thresholds and interval of
  ``aws:elasticbeanstalk:environment:process:default``, at local speed) and
  carries out the operations: a deploy starts new instances, waits until they
  pass the health check, puts them in service, then drains and stops the old
  ones, so no request is dropped; a failed deploy rolls back (Immutable,
  TrafficSplitting) or leaves the new version in place (the others).

The environment's health follows these checks (:class:`ServedHealth`); the
lifecycle waits for the operations through the pending outcomes of
:class:`ServedDeploy`. Everything else (events, statuses, CNAMEs) is the
lifecycle's, as for simulated environments; an environment whose version has
nothing to run stays simulated.

Every process has a pidfile under ``<state>/eb/envs/<env>/pids``; the server's
shutdown stops them all, and :func:`stop_leftovers` stops those of a server
that is gone (at start, and from ``local_aws down``).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from . import apps, bundles
from .haproxy import HAProxyError, HealthCheck, LoadBalancer
from .hooks import CONFIGURE, DONE, PENDING, RANK, RESTART, TERMINATE, DeployOutcome, HealthReading, InjectedHealth, SimulatedDeploy
from .lifecycle import COMMAND_NS, ROLLBACK_POLICIES, desired_instances
from .models import Resources
from .options import ENV_PROPERTIES, defaults

log = logging.getLogger("local_aws.eb.serving")

PROCESS_NS = "aws:elasticbeanstalk:environment:process:default"
PYTHON_NS = "aws:elasticbeanstalk:container:python"
# Local speed: AWS's seconds times TIME_SCALE (HealthCheckInterval 15 s -> 0.5 s,
# command Timeout 600 s -> 20 s).
TIME_SCALE = 1 / 30
MIN_INTERVAL_S = 0.2
MIN_DEPLOY_TIMEOUT_S = 15.0
MAX_INSTANCES = 8  # per environment, whatever MinSize says: the machine is small
TICK_S = 0.1
STOP_GRACE_S = 8.0  # SIGTERM, then SIGKILL (gunicorn's graceful stop of a small app takes < 1 s)
LB_STOP_GRACE_S = 2.0  # HAProxy's soft stop, then SIGKILL (idle keep-alive clients would hold it)
MAX_BACKOFF_S = 10.0
ENV_MARKER = "LOCAL_EB_PROCESS"  # every process we start carries its pidfile's path in this variable
_SHELL_SYNTAX = re.compile(r"[;&|<>()`$\n]")

# instance states
STARTING, IN_SERVICE, DRAINING, STOPPING, GONE = "starting", "in_service", "draining", "stopping", "gone"
# instance health verdicts (enhanced health statuses)
OK, SEVERE, PENDING_HEALTH = "Ok", "Severe", "Pending"


class PlanError(Exception):
    """A version that has something to run but cannot run here (the deploy fails with this message)."""


# -- what runs ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """How an instance of a version runs."""

    version_label: str
    bundle: Path
    command: str
    properties: tuple[tuple[str, str], ...]

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps([str(self.bundle), self.command, self.properties]).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Target:
    """What the Auto Scaling group keeps, and how the load balancer checks it."""

    template: Template
    count: int
    check: HealthCheck
    policy: str = "AllAtOnce"
    ignore_health: bool = False
    timeout_s: float = 20.0
    deregistration_s: float = 20.0


def _seconds(value: str | None, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default


def health_check(settings: dict[tuple[str, str], str], explicit: dict[tuple[str, str], str]) -> HealthCheck:
    """The target group's health check at local speed (see the module's TIME_SCALE)."""
    path = explicit.get((PROCESS_NS, "HealthCheckPath"))
    legacy = explicit.get(("aws:elasticbeanstalk:application", "Application Healthcheck URL"))
    if path is None and legacy:  # classic load balancers: "/health" or "HTTP:80/health"
        path = "/" + legacy.split("/", 1)[1] if not legacy.startswith("/") and "/" in legacy else legacy
    interval = max(MIN_INTERVAL_S, _seconds(settings.get((PROCESS_NS, "HealthCheckInterval")), 15) * TIME_SCALE)
    timeout = max(1.0, _seconds(settings.get((PROCESS_NS, "HealthCheckTimeout")), 5) / 5)
    return HealthCheck(
        path=path or settings.get((PROCESS_NS, "HealthCheckPath"), "/") or "/",
        matcher=settings.get((PROCESS_NS, "MatcherHTTPCode"), "200") or "200",
        interval_ms=int(interval * 1000),
        timeout_ms=int(timeout * 1000),
        rise=int(settings.get((PROCESS_NS, "HealthyThresholdCount"), "3")),
        fall=int(settings.get((PROCESS_NS, "UnhealthyThresholdCount"), "5")),
    )


def matches(status: int, matcher: str) -> bool:
    for part in matcher.split(","):
        low, _, high = part.strip().partition("-")
        if (high and int(low) <= status <= int(high)) or (not high and status == int(low)):
            return True
    return False


# -- processes -------------------------------------------------------------------------------------------------------


@dataclass
class Instance:
    instance_id: str
    port: int
    template: Template
    directory: Path
    pidfile: Path
    proc: subprocess.Popen[bytes] | None = None
    state: str = STARTING
    health: str = PENDING_HEALTH
    port_opened: bool = False
    ok_streak: int = 0
    fail_streak: int = 0
    next_check: float = 0.0
    checking: bool = False
    last_check: str = ""
    started: float = field(default_factory=time.monotonic)
    drain_started: float = 0.0
    stop_started: float = 0.0
    exit_code: int | None = None
    expected_exit: bool = False

    @property
    def name(self) -> str:  # the server's name in HAProxy
        return f"{self.instance_id}-{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / "web.stdout.log"

    def tail(self, lines: int = 5) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text[-lines:])

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.instance_id,
            "port": self.port,
            "pid": self.proc.pid if self.proc else None,
            "state": self.state,
            "health": self.health,
            "version_label": self.template.version_label,
            "last_check": self.last_check,
            "log": str(self.log),
        }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_pidfile(path: Path, pid: int, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": pid, "pgid": pid, "kind": kind, "server_pid": os.getpid()}))


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


# -- one environment ---------------------------------------------------------------------------------------------------


@dataclass
class Operation:
    kind: str  # deploy, configure, restart, rebuild, terminate
    target: Target | None
    replace: bool = True
    keep_ids: bool = False
    phase: str = "start"
    fresh: list[Instance] = field(default_factory=list)
    retire: list[Instance] = field(default_factory=list)
    deadline: float = 0.0
    failure: str | None = None
    outcome: DeployOutcome | None = None


class Fleet:
    """The instances and the load balancer of one environment (used under Supervisor.lock)."""

    def __init__(self, supervisor: Supervisor, env_id: str, name: str, region: str, directory: Path):
        self.supervisor = supervisor
        self.env_id = env_id
        self.name = name
        self.region = region
        self.dir = directory
        port = free_port()
        self.lb = LoadBalancer(directory / f"lb-{port}", port, HealthCheck())
        self.instances: list[Instance] = []
        self.target: Target | None = None
        self.op: Operation | None = None
        self.backoff_s = 0.0
        self.backoff_until = 0.0
        self.stopped = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.lb.port}"

    # -- processes ----------------------------------------------------------------------------------------------------
    def _spawn(self, template: Template, instance_id: str | None = None) -> Instance:
        port = free_port()
        instance_id = instance_id or Resources.new_instance_id()
        directory = self.dir / "instances" / f"{instance_id}-{port}"
        directory.mkdir(parents=True, exist_ok=True)
        pidfile = self.dir / "pids" / f"{instance_id}-{port}.json"
        instance = Instance(instance_id, port, template, directory, pidfile)
        command = apps.bind_locally(template.command, port)
        argv = ["/bin/sh", "-c", command if _SHELL_SYNTAX.search(command) else f"exec {command}"]
        env = self.supervisor.instance_environment(
            dict(template.properties), port, instance_id=instance_id, env_id=self.env_id, region=self.region, pidfile=pidfile
        )
        with instance.log.open("ab") as out:
            out.write(f"--- local_aws: {instance_id} starts on 127.0.0.1:{port}: {command}\n".encode())
            out.flush()
            instance.proc = subprocess.Popen(
                argv, cwd=template.bundle, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        write_pidfile(pidfile, instance.proc.pid, "instance")
        self.instances.append(instance)
        log.info("%s: started %s (pid %s) on port %s: %s", self.name, instance_id, instance.proc.pid, port, command)
        return instance

    def _stop(self, instance: Instance, now: float) -> None:
        if instance.state in (STOPPING, GONE):
            return
        if instance.state in (IN_SERVICE, DRAINING):
            self._lb_remove(instance)
        instance.state, instance.stop_started, instance.expected_exit = STOPPING, now, True
        if instance.proc and instance.proc.poll() is None:
            _kill_group(instance.proc.pid, signal.SIGTERM)

    def _lb_remove(self, instance: Instance) -> None:
        try:
            self.lb.remove(instance.name)
        except HAProxyError as exc:
            log.warning("%s: could not take %s out of HAProxy: %s", self.name, instance.name, exc)

    def _put_in_service(self, instance: Instance) -> None:
        try:
            self.lb.add(instance.name, instance.port, healthy=instance.health == OK)
        except HAProxyError as exc:
            log.warning("%s: could not add %s to HAProxy: %s", self.name, instance.name, exc)
        instance.state = IN_SERVICE
        if instance.health == OK:
            self.backoff_s = 0.0

    def _reap(self, now: float) -> None:
        for instance in self.instances:
            if instance.state == GONE or instance.proc is None or instance.proc.poll() is None:
                continue
            instance.exit_code = instance.proc.returncode
            _kill_group(instance.proc.pid, signal.SIGKILL)  # what the group leader left behind
            if not instance.expected_exit:
                log.warning("%s: %s exited with %s: %s", self.name, instance.instance_id, instance.exit_code, instance.tail())
                if instance.state in (IN_SERVICE, DRAINING):
                    self._lb_remove(instance)
                self.backoff_until = now + self.backoff_s
                self.backoff_s = min(max(1.0, self.backoff_s * 2), MAX_BACKOFF_S)
            instance.state = GONE
            with contextlib.suppress(FileNotFoundError):
                instance.pidfile.unlink()
        self.instances = [i for i in self.instances if i.state != GONE]

    # -- health checks ------------------------------------------------------------------------------------------------------
    def _schedule_checks(self, now: float) -> None:
        check = self.lb.check
        for instance in self.instances:
            if instance.state not in (STARTING, IN_SERVICE) or instance.checking or now < instance.next_check:
                continue
            instance.checking = True
            self.supervisor.pool.submit(self._check, instance, check)

    def _check(self, instance: Instance, check: HealthCheck) -> None:
        result, detail = probe(instance.port, check)
        with self.supervisor.lock:
            instance.checking = False
            instance.next_check = time.monotonic() + check.interval_ms / 1000
            instance.last_check = detail
            if result is None and not instance.port_opened:
                return  # not listening yet: still starting
            instance.port_opened = True
            if result:
                instance.ok_streak, instance.fail_streak = instance.ok_streak + 1, 0
                if instance.ok_streak >= check.rise:
                    instance.health = OK
            else:
                instance.ok_streak, instance.fail_streak = 0, instance.fail_streak + 1
                if instance.fail_streak >= check.fall:
                    instance.health = SEVERE

    # -- the supervisor's tick -----------------------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        self._reap(now)
        if self.stopped:
            return
        op = self.op
        if op is not None and op.kind == TERMINATE:
            self._terminating(op, now)
            return
        if op is not None and op.outcome is None:
            if not self.lb.alive() and not self._start_lb(op):
                return
            self._progress(op, now)
        elif self.target is not None and not self.lb.alive():
            log.warning("%s: HAProxy is gone; starting it again", self.name)
            self._start_lb(None)
        self._schedule_checks(now)
        self._maintain(now)

    def _start_lb(self, op: Operation | None) -> bool:
        if op is not None and op.target is not None:
            self.lb.check = op.target.check  # no reload right after the start
        try:
            self.lb.start({ENV_MARKER: str(self.lb_pidfile), "LOCAL_EB_ENVIRONMENT_ID": self.env_id})
        except (HAProxyError, OSError) as exc:
            if op is not None:
                op.failure = str(exc)
                for instance in op.fresh:
                    self._stop(instance, time.monotonic())
                op.outcome = DeployOutcome(False, str(exc))
            log.error("%s: %s", self.name, exc)
            return False
        write_pidfile(self.lb_pidfile, self.lb.pid or 0, "haproxy")
        return True

    @property
    def lb_pidfile(self) -> Path:
        return self.dir / "pids" / f"haproxy-{self.lb.port}.json"

    def _progress(self, op: Operation, now: float) -> None:
        target = op.target
        assert target is not None
        if op.phase == "start":
            if self.lb.check != target.check:
                self.lb.check = target.check
                self.lb.reload()
            live = [i for i in self.instances if i.state in (STARTING, IN_SERVICE)]
            if op.replace or self.target is None or self.target.template.key != target.template.key:
                op.retire = live
                ids = [i.instance_id for i in live if i.state == IN_SERVICE] if op.keep_ids else []
                op.fresh = [self._spawn(target.template, ids[n] if n < len(ids) else None) for n in range(target.count)]
            elif len(live) < target.count:
                op.fresh = [self._spawn(target.template) for _ in range(target.count - len(live))]
            elif len(live) > target.count:
                op.retire = sorted(live, key=lambda i: (i.state == IN_SERVICE, -i.started))[: len(live) - target.count]
            op.deadline = now + target.timeout_s
            op.phase = "wait"
        if op.phase == "wait":
            failure = self._failure(op, now)
            if failure is None and not all(self._ready(i, target) for i in op.fresh):
                return
            op.failure = failure
            in_service = [i for i in op.retire if i.state == IN_SERVICE]
            if failure is not None and target.policy in ROLLBACK_POLICIES and in_service:
                for instance in op.fresh:  # the old instances keep serving
                    self._stop(instance, now)
                op.retire = []
                if self.target is not None and self.lb.check != self.target.check:
                    self.lb.check = self.target.check
                    self.lb.reload()
                op.phase = "finish"
            else:
                op.phase = "switch"
        if op.phase == "switch":
            for instance in op.fresh:
                if instance.state == STARTING:
                    self._put_in_service(instance)
            self.target = target
            for instance in op.retire:
                if instance.state == IN_SERVICE:
                    self.lb.drain(instance.name)
                    instance.state, instance.drain_started = DRAINING, now
                elif instance.state == STARTING:
                    self._stop(instance, now)
            op.phase = "finish"
        if op.phase == "finish" and all(i.state == GONE for i in op.retire):  # drained and stopped (_maintain)
            op.outcome = DONE if op.failure is None else DeployOutcome(False, op.failure)

    def _ready(self, instance: Instance, target: Target) -> bool:
        return instance.port_opened if target.ignore_health else instance.health == OK

    def _failure(self, op: Operation, now: float) -> str | None:
        target = op.target
        assert target is not None
        path = target.check.path
        for instance in op.fresh:
            if instance.state == GONE:
                tail = instance.tail()
                return f"The web process of instance {instance.instance_id} exited with code {instance.exit_code}." + (f" Last output: {tail}" if tail else "")
            if instance.health == SEVERE and not target.ignore_health:
                return f"Instance {instance.instance_id} failed its health check (GET {path}: {instance.last_check}) {target.check.fall} times in a row."
        if now > op.deadline:
            waiting = [i for i in op.fresh if not self._ready(i, target)]
            last = waiting[0].last_check if waiting else ""
            ids = ", ".join(i.instance_id for i in waiting)
            return f"Instance(s) {ids} did not pass the health check (GET {path}) within {target.timeout_s:.0f} s." + (f" Last check: {last}." if last else "")
        return None

    def _maintain(self, now: float) -> None:
        for instance in self.instances:
            if instance.state == DRAINING:
                try:
                    sessions = self.lb.sessions(instance.name)
                except HAProxyError:
                    sessions = None
                deregistration = self.target.deregistration_s if self.target else 20.0
                if sessions == 0 or sessions is None or now - instance.drain_started > deregistration:
                    self._stop(instance, now)
            elif instance.state == STOPPING and now - instance.stop_started > STOP_GRACE_S and instance.proc:
                _kill_group(instance.proc.pid, signal.SIGKILL)
        if self.op is not None and self.op.outcome is None or self.target is None:
            return
        target = self.target
        # The Auto Scaling group: replacements go in service once they pass (or fail) their checks.
        for instance in self.instances:
            if instance.state == STARTING and (self._ready(instance, target) or instance.health == SEVERE or now - instance.started > target.timeout_s):
                self._put_in_service(instance)
        live = [i for i in self.instances if i.state in (STARTING, IN_SERVICE) and i.template.key == target.template.key]
        if len(live) < target.count and now >= self.backoff_until:
            for _ in range(target.count - len(live)):
                self._spawn(target.template)

    def _terminating(self, op: Operation, now: float) -> None:
        if op.phase == "start":
            for instance in self.instances:
                self._stop(instance, now)
            self.lb.begin_stop()
            op.deadline = now + LB_STOP_GRACE_S
            op.phase = "finish"
        for instance in self.instances:
            if instance.state == STOPPING and now - instance.stop_started > STOP_GRACE_S and instance.proc:
                _kill_group(instance.proc.pid, signal.SIGKILL)
        if self.lb.stopped(force=now > op.deadline):
            with contextlib.suppress(FileNotFoundError):
                self.lb_pidfile.unlink()
            if not self.instances:
                op.outcome = DONE
                self.stopped = True

    # -- what it reports ---------------------------------------------------------------------------------------------------------
    def health(self) -> HealthReading | None:
        """The environment's health by its load balancer's view of the instances in service."""
        in_service = [i for i in self.instances if i.state == IN_SERVICE]
        if not in_service:
            if self.target is None:
                return None  # launching: nothing in service yet
            return HealthReading("Severe", ("ELB health is failing or not available for all instances.",))
        failing = [i for i in in_service if i.health != OK]
        if not failing:
            return HealthReading("Ok")
        if len(failing) == len(in_service):
            return HealthReading("Severe", ("ELB health is failing or not available for all instances.",))
        cause = f"ELB health is failing or not available for {len(failing)} out of {len(in_service)} instances."
        return HealthReading("Degraded" if 2 * len(failing) >= len(in_service) else "Warning", (cause,))

    def instance_ids(self) -> list[str]:
        ids: list[str] = []
        for instance in self.instances:
            if instance.state in (STARTING, IN_SERVICE, DRAINING) and instance.instance_id not in ids:
                ids.append(instance.instance_id)
        return ids

    def instance_counts(self) -> dict[str, int]:
        counts = {OK: 0, SEVERE: 0, PENDING_HEALTH: 0}
        seen: set[str] = set()
        for instance in self.instances:
            if instance.state in (STARTING, IN_SERVICE, DRAINING) and instance.instance_id not in seen:
                seen.add(instance.instance_id)
                counts[PENDING_HEALTH if instance.state == STARTING else instance.health if instance.health == OK else SEVERE] += 1
        return counts

    def describe(self) -> dict[str, Any]:
        op = self.op
        return {
            "load_balancer": {"url": self.url, "port": self.lb.port, "pid": self.lb.pid, "config": str(self.lb.config), "health_check": vars(self.lb.check)},
            "version_label": self.target.template.version_label if self.target else None,
            "command": self.target.template.command if self.target else None,
            "desired_instances": self.target.count if self.target else None,
            "instances": [i.describe() for i in self.instances],
            "operation": None if op is None else {"kind": op.kind, "phase": op.phase, "failure": op.failure, "done": op.outcome is not None},
        }


def probe(port: int, check: HealthCheck) -> tuple[bool | None, str]:
    """One health check: (True, ...) passes, (False, ...) fails, (None, ...) nothing listens."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=check.timeout_ms / 1000)
    try:
        conn.request("GET", check.path, headers={"User-Agent": "ELB-HealthChecker/2.0", "Connection": "close"})
        response = conn.getresponse()
        response.read()
    except ConnectionRefusedError:
        return None, "connection refused"
    except TimeoutError:
        return False, "request timed out"
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
    return matches(response.status, check.matcher), f"HTTP {response.status}"


# -- all environments -----------------------------------------------------------------------------------------------------


class Supervisor:
    """Every served environment of this endpoint, and the thread that runs them."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.fleets: dict[str, Fleet] = {}
        self.root: Path | None = None
        self.endpoint = ""
        self.access_key = ""
        self.secret_key = ""
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="eb-health")
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._published: dict[str, dict[str, Any]] = {}
        self._published_text = ""

    def configure(self, root: Path, endpoint: str, access_key: str, secret_key: str) -> None:
        self.root, self.endpoint, self.access_key, self.secret_key = root, endpoint, access_key, secret_key
        for leftover in stop_leftovers(root):
            log.warning("stopped %s, left by an endpoint that is gone", leftover)
        # No environment survives a restart of the endpoint: their folders (logs) go, unless a process still runs.
        for folder in sorted(root.glob("envs/*")):
            if folder.is_dir() and not any(folder.glob("pids/*.json")):
                shutil.rmtree(folder, ignore_errors=True)
        self._publish()

    @property
    def configured(self) -> bool:
        return self.root is not None

    def instance_environment(self, properties: dict[str, str], port: int, *, instance_id: str, env_id: str, region: str, pidfile: Path) -> dict[str, str]:
        """What the platform gives the web process, with the local AWS in place of the instance profile."""
        venv_bin = str(Path(sys.executable).parent)  # not resolved: the venv's bin, where gunicorn is
        base = {
            "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_REGION": region,  # on EC2, SDKs get it from the instance metadata
            "AWS_DEFAULT_REGION": region,
        }
        if os.environ.get("TMPDIR"):
            base["TMPDIR"] = os.environ["TMPDIR"]
        forced = {
            "HOME": str(pidfile.parent.parent / "instances" / pidfile.stem),
            "PORT": str(port),
            "GUNICORN_CMD_ARGS": apps.gunicorn_args(properties.get("GUNICORN_CMD_ARGS"), port),
            "LOCAL_EB_INSTANCE_ID": instance_id,
            "LOCAL_EB_ENVIRONMENT_ID": env_id,
            ENV_MARKER: str(pidfile),
        }
        return {**base, **properties, **forced}

    # -- the thread ------------------------------------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="eb-serving", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            with self.lock:
                for key, fleet in list(self.fleets.items()):
                    try:
                        fleet.tick(time.monotonic())
                    except Exception:  # one environment's trouble must not stop the others
                        log.exception("%s: tick failed", fleet.name)
                    if fleet.stopped:
                        del self.fleets[key]
                        if key == fleet.env_id:
                            self.unpublish(fleet.env_id)

    # -- operations (called under the Elastic Beanstalk lock) ---------------------------------------------------------------
    def fleet(self, env_id: str, name: str, region: str) -> Fleet:
        with self.lock:
            fleet = self.fleets.get(env_id)
            if fleet is None:
                assert self.root is not None
                fleet = Fleet(self, env_id, name, region, self.root / "envs" / env_id)
                self.fleets[env_id] = fleet
            return fleet

    def begin(self, fleet: Fleet, op: Operation) -> DeployOutcome:
        with self.lock:
            fleet.op = op
            self._ensure_thread()
        return PENDING

    @staticmethod
    def outcome(fleet: Fleet) -> DeployOutcome:
        op = fleet.op
        if op is None:
            return DONE
        return op.outcome if op.outcome is not None else PENDING

    # -- the record of load balancers, for a front door -----------------------------------------------------------------------
    def observe(self, fleet: Fleet, env: Any) -> None:
        entry = {
            "environment_id": env.env_id,
            "environment_name": env.name,
            "application_name": env.application_name,
            "account_id": env.account_id,
            "region": env.region,
            "cname": env.cname,
            "endpoint_url": env.endpoint_url,
            "status": env.status,
            "version_label": env.version_label,
            "url": fleet.url,
            "port": fleet.lb.port,
        }
        with self.lock:
            if fleet.stopped or self._published.get(env.env_id) == entry:
                return
            self._published[env.env_id] = entry
            self._publish()

    def unpublish(self, env_id: str) -> None:
        with self.lock:
            if self._published.pop(env_id, None) is not None:
                self._publish()

    def retire(self, fleet: Fleet) -> None:
        """Stop a fleet in the background; the environment may get a new one meanwhile."""
        with self.lock:
            if self.fleets.get(fleet.env_id) is fleet:
                del self.fleets[fleet.env_id]
                self.fleets[f"{fleet.env_id}/retired-{fleet.lb.port}"] = fleet
            self.unpublish(fleet.env_id)
            self.begin(fleet, Operation(TERMINATE, None))

    def endpoints(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(entry) for entry in sorted(self._published.values(), key=lambda e: e["environment_id"])]

    @property
    def registry(self) -> Path | None:
        return self.root / "endpoints.json" if self.root else None

    def _publish(self) -> None:
        if self.registry is None:
            return
        text = json.dumps({"environments": self.endpoints()}, indent=1)
        if text == self._published_text:
            return
        self.registry.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.registry.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.registry)
        self._published_text = text

    # -- shutdown -------------------------------------------------------------------------------------------------------------------
    def shutdown(self, wait_s: float = 6.0) -> None:
        """Stop every process of every environment (the endpoint is stopping)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self.lock:
            procs = []
            for fleet in self.fleets.values():
                for instance in fleet.instances:
                    if instance.proc and instance.proc.poll() is None:
                        _kill_group(instance.proc.pid, signal.SIGTERM)
                        procs.append((instance.proc, instance.pidfile))
                if fleet.lb.proc and fleet.lb.proc.poll() is None:
                    _kill_group(fleet.lb.proc.pid, signal.SIGTERM)
                    procs.append((fleet.lb.proc, fleet.lb_pidfile))
            deadline = time.monotonic() + wait_s
            for proc, pidfile in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(max(0.0, deadline - time.monotonic()))
                _kill_group(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(2)
                with contextlib.suppress(FileNotFoundError):
                    pidfile.unlink()
            self.fleets.clear()
            self._published.clear()
            self._publish()
        self.pool.shutdown(wait=False, cancel_futures=True)


SUPERVISOR = Supervisor()


# -- the hooks of an environment ----------------------------------------------------------------------------------------------------


class ServedHealth(InjectedHealth):
    """Health from the instances' real checks, unless injected (the control interface still works)."""

    def __init__(self, env: Any, deploy: ServedDeploy):
        super().__init__()
        self.env = env
        self.deploy = deploy

    def reading(self, now: datetime) -> HealthReading | None:
        fleet = self.deploy.fleet
        if fleet is not None:
            SUPERVISOR.observe(fleet, self.env)
        if self.injected is not None:
            return self.injected
        if fleet is None:
            return None
        with SUPERVISOR.lock:
            measured = fleet.health()
        if measured is None:
            return None
        # The worse of the checks and of the lifecycle's own state (Pending while launching,
        # Degraded after a failed deploy), with the causes of both.
        natural = self.env.natural_health
        worse, other = (natural, measured) if RANK.get(natural.status, 0) > RANK.get(measured.status, 0) else (measured, natural)
        causes = worse.causes + (other.causes if RANK.get(other.status, 0) >= 2 else ())
        return HealthReading(worse.status, tuple(dict.fromkeys(causes)))

    def instance_counts(self) -> dict[str, int] | None:
        fleet = self.deploy.fleet
        if fleet is None or self.injected is not None:
            return None
        with SUPERVISOR.lock:
            return fleet.instance_counts()

    def describe(self) -> dict[str, object]:
        out = super().describe()
        if self.deploy.fleet is not None:
            out["kind"] = "served"
        return out


class ServedDeploy(SimulatedDeploy):
    """Runs the version when it has something to run; otherwise simulated (failures can still be armed)."""

    def __init__(self, env: Any):
        super().__init__()
        self.env = env
        self.fleet: Fleet | None = None

    # -- DeployHook ---------------------------------------------------------------------------------------------------------
    def deploy(self, version_label: str | None, now: datetime) -> DeployOutcome:
        if self.failures:  # armed from the control interface: processes are left as they are
            return DeployOutcome(False, self.failures.pop(0))
        try:
            target = self._target(version_label, now)
        except PlanError as exc:
            return DeployOutcome(False, str(exc))
        if target is None:
            self._retire()
            return DONE
        fleet = self.fleet or SUPERVISOR.fleet(self.env.env_id, self.env.name, self.env.region)
        self.fleet = fleet
        return SUPERVISOR.begin(fleet, Operation("deploy", target))

    def apply(self, change: str, now: datetime) -> DeployOutcome:
        fleet = self.fleet
        if fleet is None:
            return DONE
        if change == TERMINATE:
            return SUPERVISOR.begin(fleet, Operation(TERMINATE, None))
        try:
            target = self._target(self.env.version_label, now)
        except PlanError as exc:
            return DeployOutcome(False, str(exc))
        if target is None:
            self._retire()
            return DONE
        if change == CONFIGURE:
            return SUPERVISOR.begin(fleet, Operation(CONFIGURE, target, replace=False))
        return SUPERVISOR.begin(fleet, Operation(change, target, replace=True, keep_ids=change == RESTART))

    def poll(self, now: datetime) -> DeployOutcome:
        if self.fleet is None:
            return DONE
        with SUPERVISOR.lock:
            return SUPERVISOR.outcome(self.fleet)

    def instances(self) -> list[str] | None:
        if self.fleet is None:
            return None
        with SUPERVISOR.lock:
            return self.fleet.instance_ids()

    def describe(self) -> dict[str, object]:
        out = super().describe()
        if self.fleet is not None:
            with SUPERVISOR.lock:
                out.update(kind="served", **self.fleet.describe())
        return out

    # -- what to run -----------------------------------------------------------------------------------------------------------
    def _retire(self) -> None:
        """The new version has nothing to run: what ran stops, the environment is simulated again."""
        if self.fleet is not None:
            SUPERVISOR.retire(self.fleet)
            self.fleet = None

    def _target(self, version_label: str | None, now: datetime) -> Target | None:
        """What this environment runs for ``version_label`` (None: nothing to run, simulated)."""
        env = self.env
        if not SUPERVISOR.configured or version_label is None or env.tier.get("Name") != "WebServer":
            return None
        from .backend import eb_backends  # the backend module imports hooks; not the other way

        backend = eb_backends[env.account_id][env.region]
        app = backend.applications.get(env.application_name)
        version = app.versions.get(version_label) if app else None
        bundle = version.source_bundle if version else None
        if not bundle:
            return None  # the sample application
        data = bundles.read(env.account_id, env.region, bundle.get("S3Bucket", ""), bundle.get("S3Key", ""))
        if not bundles.is_zip(data):
            return None
        assert data is not None
        explicit = dict(env.settings)
        settings = {**defaults(env.solution_stack), **explicit}
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            web = apps.web_process(
                archive,
                settings.get((PYTHON_NS, "WSGIPath"), "application"),
                int(settings.get((PYTHON_NS, "NumProcesses"), "1")),
                int(settings.get((PYTHON_NS, "NumThreads"), "15")),
            )
        if web is None:
            return None
        assert SUPERVISOR.root is not None
        try:
            folder = bundles.unpack(data, SUPERVISOR.root / "bundles")
        except (ValueError, zipfile.BadZipFile, OSError) as exc:
            raise PlanError(f"The source bundle of version {version_label} cannot be unpacked: {exc}") from exc
        found = apps.check_requirements(folder)
        if found.missing:
            raise PlanError(
                f"requirements.txt of version {version_label} needs packages that the local platform's Python does not have: "
                f"{', '.join(found.missing)}. The local AWS installs nothing: add them to the endpoint's virtual environment."
            )
        if found.mismatched:
            backend.lifecycle.say(
                env, now, f"requirements.txt asks for other versions than the local platform has: {', '.join(found.mismatched)}.",
                "WARN", version=version_label,
            )  # fmt: skip
        properties = tuple(sorted((name, value) for (namespace, name), value in settings.items() if namespace == ENV_PROPERTIES))
        count = min(desired_instances(settings), MAX_INSTANCES)
        if desired_instances(settings) > MAX_INSTANCES:
            message = f"The local platform runs at most {MAX_INSTANCES} instances per environment; MinSize asks for {desired_instances(settings)}."
            backend.lifecycle.say(env, now, message, "WARN", version=version_label)
        return Target(
            Template(version_label, folder, web.command, properties),
            count,
            health_check(settings, explicit),
            policy=settings.get((COMMAND_NS, "DeploymentPolicy"), "AllAtOnce"),
            ignore_health=settings.get((COMMAND_NS, "IgnoreHealthCheck"), "false").lower() == "true",
            timeout_s=max(MIN_DEPLOY_TIMEOUT_S, _seconds(settings.get((COMMAND_NS, "Timeout")), 600) * TIME_SCALE),
            deregistration_s=_seconds(settings.get((PROCESS_NS, "DeregistrationDelay")), 20),
        )


def factory(env: Any) -> tuple[ServedHealth, ServedDeploy]:
    deploy = ServedDeploy(env)
    return ServedHealth(env, deploy), deploy


# -- leftovers -------------------------------------------------------------------------------------------------------------------------


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def _group(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid):
            members.append(int(stat.parent.name))
    return members


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_leftovers(root: Path, pattern: str = "envs/*/pids/*.json") -> list[str]:
    """Stop the processes of the pidfiles ``root/pattern`` whose endpoint is gone; returns what was stopped.

    A process is ours only if it carries the pidfile's path in its environment
    (a pid can be reused), and it is left alone while the endpoint that
    started it runs. The front door (``local_aws.frontdoor``) uses it too.
    """
    stopped = []
    for pidfile in sorted(root.glob(pattern)):
        try:
            record = json.loads(pidfile.read_text())
            pgid, owner = int(record["pgid"]), int(record.get("server_pid") or 0)
        except (OSError, ValueError, KeyError, TypeError):
            pidfile.unlink(missing_ok=True)
            continue
        if owner and owner != os.getpid() and _alive(owner) and b"local_aws" in _cmdline(owner):
            continue  # its endpoint still runs
        marker = f"{ENV_MARKER}={pidfile}".encode()
        ours = [pid for pid in _group(pgid) if marker in _environ(pid).split(b"\0")]
        if ours:
            _kill_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(_alive(pid) for pid in ours):
                time.sleep(0.05)
            _kill_group(pgid, signal.SIGKILL)
            stopped.append(f"{record.get('kind', 'process')} {pgid} ({pidfile.parent.parent.name})")
        pidfile.unlink(missing_ok=True)
    return stopped


def stop_leftovers_in(settings: Any) -> list[str]:
    """``local_aws down``: what a crashed endpoint left running in ``settings.state_dir``."""
    root = Path(settings.state_dir) / "eb"
    return stop_leftovers(root) if root.is_dir() else []
