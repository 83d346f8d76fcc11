"""The live URL: one loopback port per Route 53 record that points at Elastic Beanstalk.

On AWS a user reaches the application by a name in a hosted zone: an alias
(A/AAAA) or a CNAME to an environment's CNAME (``<prefix>.<region>.
elasticbeanstalk.com``), maybe weighted records that split the traffic between
two environments. Locally nothing resolves those names, so the front door
answers for them: every record name of a hosted zone whose answer leads
(directly, or through other records of the local zones) to an Elastic
Beanstalk CNAME gets its own port on loopback, and each request that arrives
there goes where DNS would send it:

* to the environment that holds the CNAME now (it follows a
  SwapEnvironmentCNAMEs);
* split by the weights of weighted records (each request on its own, in
  proportion to the weights; a weight change applies to the next request);
* to nowhere (HAProxy's 503) for the part of the traffic whose answer is not
  an environment that runs its version: a CNAME no environment holds, an
  environment that is simulated, an address record.

Each door is an HAProxy (Debian's package, the one the environments' load
balancers use: :mod:`local_aws.eb.haproxy`) with one frontend on the door's
port and one backend whose servers are the environments' load balancers.
Routes change through HAProxy's runtime API (``set server ... addr``,
``set weight``, ``set server ... state``): a door is never reloaded, so a
change never closes a client's connection. A door closes the connection to
the environment after each response (``option http-server-close``) and keeps
the client's: every request is routed by the zone of that moment, and no
reused idle connection can fail under a request. A door does not retry: a
request that the environment's load balancer does not take is a 503, counted
as a failure (a client of real DNS would see its connection refused).

A thread of the endpoint reads the zones (under
:data:`local_aws.moto_fixes.ROUTE53_LOCK`, so never half a change batch) and
the environments (advancing their lazy transitions, so a swap completes on
time without a reader) every :data:`REFRESH_S` seconds. A change reaches the
doors within that time, inside any TTL of a second or more: the front door is
a resolver that never keeps an answer longer than it must.

Where the doors are: ``GET /_local/frontdoor`` (every record),
``GET /_local/frontdoor/records/<name>`` (one), ``<state>/frontdoor.json``
(rewritten on every change) and ``python -m local_aws url <name>``. A record
name keeps its port for the endpoint's life, and a restarted endpoint gives it
the same port again when it is free (``<state>/frontdoor/ports.json``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import control
from .eb.haproxy import HAProxyError, HealthCheck, LoadBalancer
from .eb.serving import ENV_MARKER, free_port, stop_leftovers, write_pidfile

log = logging.getLogger("local_aws.frontdoor")

REFRESH_S = 0.2
EB_DOMAIN = "elasticbeanstalk.com"
MAX_DEPTH = 8  # CNAME chains longer than this are answered as unresolvable
WEIGHT_SCALE = 256  # HAProxy's largest server weight
BACKEND = "live"
NOWHERE = "nowhere"  # the server for the traffic that reaches no environment (nothing listens on port 1)
NOWHERE_PORT = 1
STOP_GRACE_S = 2.0
FAILED_RETRY_S = 5.0  # a door that could not start is tried again after this
ADDRESS_TYPES = ("A", "AAAA", "CNAME")


# -- what the zones and the environments say -------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    name: str
    type: str
    ttl: int | None
    values: tuple[str, ...]
    alias: str | None
    set_identifier: str | None
    weight: int | None
    failover: str | None


@dataclass(frozen=True)
class Zone:
    zone_id: str
    name: str
    private: bool
    account_id: str
    records: tuple[Record, ...]


@dataclass(frozen=True)
class Environment:
    environment_id: str
    environment_name: str
    application_name: str
    account_id: str
    region: str
    cname: str
    status: str
    version_label: str | None
    port: int | None  # its load balancer's, when it runs its version


def norm(name: str | None) -> str:
    """A DNS name compared the way DNS does: lower case, no final dot (alias targets may start with ``dualstack.``)."""
    out = (name or "").strip().lower().rstrip(".")
    return out.removeprefix("dualstack.")


def is_eb(name: str) -> bool:
    return name.endswith("." + EB_DOMAIN)


def read_zones() -> list[Zone]:
    """Every hosted zone of every account of moto's Route 53, as it is between two change batches."""
    from moto.route53.models import route53_backends

    from .moto_fixes import ROUTE53_LOCK

    zones = []
    with ROUTE53_LOCK:
        for account_id, by_partition in list(route53_backends.items()):
            for backend in list(by_partition.values()):
                for zone in list(backend.zones.values()):
                    records = tuple(
                        Record(
                            name=norm(r.name),
                            type=str(r.type),
                            ttl=int(r.ttl) if r.ttl is not None else None,
                            values=tuple(str(v) for v in (r.records or [])),
                            alias=norm((r.alias_target or {}).get("DNSName")) or None,
                            set_identifier=r.set_identifier,
                            weight=int(r.weight) if r.weight is not None else None,
                            failover=r.failover,
                        )
                        for r in list(zone.rrsets)
                        if r.type in ADDRESS_TYPES
                    )
                    zones.append(Zone(zone.id.rsplit("/", 1)[-1], norm(zone.name), bool(zone.private_zone), account_id, records))
    return zones


def read_environments() -> list[Environment]:
    """Every active Elastic Beanstalk environment with a CNAME, after running its due transitions."""
    from .eb.backend import eb_backends
    from .eb.runtime import LOCK, utcnow
    from .eb.serving import SUPERVISOR, ServedDeploy

    out = []
    with LOCK:
        now = utcnow()
        for by_region in list(eb_backends.values()):
            for backend in list(by_region.values()):
                backend.advance(now)
                for env in backend.active_environments():
                    if not env.cname:
                        continue
                    port = None
                    hook = env.deploy_hook
                    if isinstance(hook, ServedDeploy) and hook.fleet is not None:
                        with SUPERVISOR.lock:
                            port = None if hook.fleet.stopped else hook.fleet.lb.port
                    out.append(
                        Environment(
                            env.env_id, env.name, env.application_name, env.account_id, env.region, norm(env.cname), env.status, env.version_label, port
                        )
                    )
    return out


# -- resolution --------------------------------------------------------------------------------------------------------------


def zone_for(name: str, zones: list[Zone]) -> Zone | None:
    """The most specific zone that holds ``name`` (a public zone before a private one of the same name)."""
    found = [z for z in zones if name == z.name or name.endswith("." + z.name)]
    return max(found, key=lambda z: (len(z.name), not z.private)) if found else None


def answer(name: str, zone: Zone) -> list[Record]:
    """The records that answer ``name``: its CNAME, else its A records, else its AAAA records."""
    at_name = [r for r in zone.records if r.name == name]
    for kind in ("CNAME", "A", "AAAA"):
        found = [r for r in at_name if r.type == kind]
        if found:
            return found
    return []


def policy(records: list[Record]) -> str:
    if any(r.weight is not None for r in records):
        return "weighted"
    if any(r.failover for r in records):
        return "failover"
    return "simple"


def shares(records: list[Record]) -> list[tuple[Record, float]]:
    """How the answers of ``name`` split the traffic.

    Weighted: in proportion to the weights; a record of weight 0 gets
    nothing unless all are 0 (then all count the same, as Route 53 does).
    Failover: the primary (health checks are not evaluated). Others (simple,
    several routing records): in equal parts.
    """
    kind = policy(records)
    if kind == "weighted":
        weighted = [r for r in records if r.weight is not None]
        total = sum(r.weight or 0 for r in weighted)
        if total == 0:
            return [(r, 1 / len(weighted)) for r in weighted]
        return [(r, (r.weight or 0) / total) for r in weighted if r.weight]
    if kind == "failover":
        primary = [r for r in records if (r.failover or "").upper() == "PRIMARY"] or records
        return [(primary[0], 1.0)]
    return [(r, 1 / len(records)) for r in records]


def resolve(name: str, zones: list[Zone], depth: int = 0) -> dict[str, float]:
    """``{final name: share of the traffic}`` for ``name``.

    A final name is an Elastic Beanstalk CNAME, or what cannot lead to one:
    a name outside the local zones or without records (``NXDOMAIN``), an
    address record (``A 192.0.2.1``), a chain deeper than :data:`MAX_DEPTH`.
    """
    name = norm(name)
    if is_eb(name) or depth > MAX_DEPTH:
        return {name: 1.0}
    zone = zone_for(name, zones)
    records = answer(name, zone) if zone else []
    if not records:
        return {name: 1.0}
    out: dict[str, float] = defaultdict(float)
    for record, share in shares(records):
        target = record.alias or (norm(record.values[0]) if record.type == "CNAME" and record.values else None)
        if target is None:
            out[f"{record.type} {' '.join(record.values)}"] += share
            continue
        for final, part in resolve(target, zones, depth + 1).items():
            out[final] += share * part
    return dict(out)


@dataclass(frozen=True)
class Target:
    name: str  # the final name (an environment's CNAME, or what could not be reached)
    share: float
    environment: Environment | None

    @property
    def served(self) -> bool:
        return self.environment is not None and self.environment.port is not None


@dataclass(frozen=True)
class Route:
    """Where the traffic of one record name goes."""

    zone_id: str
    zone_name: str
    name: str
    ttl: int | None
    policy: str
    targets: tuple[Target, ...]

    @property
    def key(self) -> str:
        return f"{self.zone_id}/{self.name}"

    def weights(self) -> dict[str, tuple[int, int]]:
        """``{server: (port, HAProxy weight)}``: one server per environment that serves, and :data:`NOWHERE`."""
        out: dict[str, list[float]] = {}
        for target in self.targets:
            env = target.environment
            if env is not None and env.port is not None:
                out.setdefault(env.environment_id, [env.port, 0.0])[1] += target.share
            else:
                out.setdefault(NOWHERE, [NOWHERE_PORT, 0.0])[1] += target.share
        return {server: (int(port), max(1, round(share * WEIGHT_SCALE)) if share > 0 else 0) for server, (port, share) in out.items()}


def routes(zones: list[Zone], environments: list[Environment] | None) -> list[Route]:
    """Every record name of the zones that leads to Elastic Beanstalk, with its targets.

    ``environments`` None: only which names lead there (no environment read yet).
    """
    by_cname: dict[str, list[Environment]] = defaultdict(list)
    for env in environments or []:
        by_cname[env.cname].append(env)
    out = []
    for zone in zones:
        for name in sorted({r.name for r in zone.records}):
            if zone_for(name, zones) is not zone:
                continue  # a more specific zone answers for it
            records = answer(name, zone)
            if not records:
                continue
            resolved = resolve(name, zones)
            if not any(is_eb(final) for final in resolved):
                continue
            targets = []
            for final, share in sorted(resolved.items()):
                holders = sorted(by_cname.get(final, []), key=lambda e: (e.account_id != zone.account_id, e.port is None, e.environment_id))
                targets.append(Target(final, share, holders[0] if holders else None))
            ttls = [r.ttl for r in records if r.ttl is not None]
            out.append(Route(zone.zone_id, zone.name, name, min(ttls) if ttls else None, policy(records), tuple(targets)))
    return out


# -- one door --------------------------------------------------------------------------------------------------------------------


class DoorProcess(LoadBalancer):
    """An HAProxy with one frontend (the door's port) and the environments' load balancers as servers."""

    def __init__(self, directory: Path, port: int):
        super().__init__(directory, port, HealthCheck())
        self.slots: dict[str, tuple[int, int]] = {NOWHERE: (NOWHERE_PORT, 0)}  # server -> (port, weight)

    def render(self) -> str:
        servers = "".join(
            f"    server {name} 127.0.0.1:{port} weight {weight}{'' if weight else ' disabled'}\n"
            for name, (port, weight) in sorted(self.slots.items(), key=lambda item: (item[0] != NOWHERE, item[0]))
        )
        return (
            "# Written by local_aws.frontdoor; the routes change through the runtime API, and this file follows them.\n"
            "global\n"
            "    maxconn 4096\n"
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
            "    retries 0\n"
            "frontend door\n"
            f"    bind 127.0.0.1:{self.port}\n"
            "    option http-server-close\n"
            "    option forwardfor\n"
            f"    default_backend {BACKEND}\n"
            f"backend {BACKEND}\n"
            "    balance roundrobin\n"
            f"{servers}"
        )

    def plan(self, wanted: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        """Every server's (port, weight) for ``wanted``: the servers it does not name keep their port with weight 0."""
        out = {name: (port, 0) for name, (port, _weight) in self.slots.items()}
        out.update(wanted)
        return out

    def apply(self, wanted: dict[str, tuple[int, int]]) -> None:
        """Route as ``wanted`` says (``{server: (port, weight)}``), through the runtime API.

        Weights that grow are applied before those that shrink, so there is no
        moment with less capacity than before and after.
        """
        plan = self.plan(wanted)
        for name, (port, _weight) in plan.items():
            if name not in self.slots:
                self._expect(self.command(f"add server {BACKEND}/{name} 127.0.0.1:{port} weight 0 disabled"), "New server registered", name)
                self.slots[name] = (port, 0)
        for name in sorted(plan, key=lambda n: plan[n][1] <= self.slots[n][1]):  # growing weights first
            port, weight = plan[name]
            old_port, old_weight = self.slots[name]
            if port != old_port:
                self.command(f"set server {BACKEND}/{name} addr 127.0.0.1 port {port}")
            if weight != old_weight:
                self.command(f"set weight {BACKEND}/{name} {weight}")
                self.command(f"set server {BACKEND}/{name} state {'ready' if weight else 'maint'}")
            self.slots[name] = (port, weight)
        self.write()

    @staticmethod
    def _expect(answer: str, text: str, name: str) -> None:
        if text not in answer:
            raise HAProxyError(f"{name}: {answer.strip()}")


@dataclass
class Door:
    route: Route
    process: DoorProcess
    pidfile: Path
    stopping_since: float = 0.0
    error: str = ""

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def describe(self) -> dict[str, Any]:
        route = self.route
        return {
            "name": route.name,
            "zone_id": route.zone_id,
            "zone_name": route.zone_name,
            "url": self.url,
            "port": self.port,
            "ttl": route.ttl,
            "routing": route.policy,
            "targets": [
                {
                    "name": t.name,
                    "share": round(t.share, 4),
                    "environment_name": t.environment.environment_name if t.environment else None,
                    "environment_id": t.environment.environment_id if t.environment else None,
                    "application_name": t.environment.application_name if t.environment else None,
                    "status": t.environment.status if t.environment else None,
                    "version_label": t.environment.version_label if t.environment else None,
                    "url": f"http://127.0.0.1:{t.environment.port}" if t.environment and t.environment.port else None,
                }
                for t in route.targets
            ],
            "served_share": round(sum(t.share for t in route.targets if t.served), 4),
            **({"error": self.error} if self.error else {}),
        }


# -- all doors ---------------------------------------------------------------------------------------------------------------


@dataclass
class FrontDoor:
    root: Path | None = None
    registry: Path | None = None
    doors: dict[str, Door] = field(default_factory=dict)
    retired: list[Door] = field(default_factory=list)
    port_hints: dict[str, int] = field(default_factory=dict)
    failures: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)  # key -> (retry after, record with its error)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _published: str = ""

    @property
    def ports_file(self) -> Path:
        """Each record name's last port (by name: a zone made again has a new id), kept across restarts of the endpoint."""
        assert self.root is not None
        return self.root / "ports.json"

    def configure(self, state_dir: Path) -> None:
        self.root = state_dir / "frontdoor"
        self.registry = state_dir / "frontdoor.json"
        for leftover in stop_leftovers(self.root, "pids/*.json"):
            log.warning("stopped %s, left by an endpoint that is gone", leftover)
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            self.port_hints = {str(name): int(port) for name, port in json.loads(self.ports_file.read_text()).items()}
        for folder in sorted(self.root.glob("door-*")):
            shutil.rmtree(folder, ignore_errors=True)
        self._publish()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="frontdoor", daemon=True)
        self._thread.start()

    # -- the thread ------------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(REFRESH_S):
            try:
                self.refresh()
            except Exception:  # the next round tries again
                log.exception("front door: refresh failed")

    def refresh(self) -> None:
        zones = read_zones()
        wanted = routes(zones, None)
        found = routes(zones, read_environments()) if wanted else []
        now = time.monotonic()
        with self.lock:
            for route_now in found:
                door = self.doors.get(route_now.key)
                if door is None:
                    if now < self.failures.get(route_now.key, (0.0, {}))[0]:
                        continue
                    door = self._open(route_now)
                    if door is None:
                        continue
                door.route = route_now
                self._apply(door)
            gone = set(self.doors) - {r.key for r in found}
            for key in set(self.failures) - {r.key for r in found}:
                del self.failures[key]
            for key in gone:
                door = self.doors.pop(key)
                door.process.begin_stop()
                door.stopping_since = now
                self.retired.append(door)
            for door in list(self.retired):
                if door.process.stopped(force=now - door.stopping_since > STOP_GRACE_S):
                    door.pidfile.unlink(missing_ok=True)
                    self.retired.remove(door)
            self._publish()

    def _open(self, route_now: Route) -> Door | None:
        assert self.root is not None
        port = self._port_for(route_now.name)
        process = DoorProcess(self.root / f"door-{port}", port)
        door = Door(route_now, process, self.root / "pids" / f"door-{port}.json")
        process.slots = process.plan(route_now.weights())
        try:
            process.start({ENV_MARKER: str(door.pidfile)})
        except (HAProxyError, OSError) as exc:
            log.error("front door for %s: %s", route_now.name, exc)
            door.error = str(exc)
            self.failures[route_now.key] = (time.monotonic() + FAILED_RETRY_S, {**door.describe(), "url": None})
            return None
        self.failures.pop(route_now.key, None)
        write_pidfile(door.pidfile, process.pid or 0, "frontdoor")
        self.doors[route_now.key] = door
        if self.port_hints.get(route_now.name) != port:
            self.port_hints[route_now.name] = port
            self.ports_file.parent.mkdir(parents=True, exist_ok=True)
            self.ports_file.write_text(json.dumps(self.port_hints, indent=1, sort_keys=True))
        log.info("front door for %s on %s", route_now.name, door.url)
        return door

    def _port_for(self, name: str) -> int:
        """The port this name had (in this endpoint's life, or the previous one's) when it is free, else a new one."""
        hint = self.port_hints.get(name)
        if hint and hint not in {door.port for door in [*self.doors.values(), *self.retired]}:
            import socket

            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", hint))
                    return hint
                except OSError:
                    pass
        return free_port()

    def _apply(self, door: Door) -> None:
        process = door.process
        wanted = door.route.weights()
        if not process.alive():
            log.warning("front door for %s: HAProxy is gone; starting it again on port %s", door.route.name, door.port)
            process.stopped(force=True)
            process.slots = process.plan(wanted)
            try:
                process.start({ENV_MARKER: str(door.pidfile)})
            except (HAProxyError, OSError) as exc:
                door.error = str(exc)
                return
            write_pidfile(door.pidfile, process.pid or 0, "frontdoor")
        if process.plan(wanted) == process.slots:
            return
        try:
            process.apply(wanted)
            door.error = ""
        except HAProxyError as exc:
            if door.error != str(exc):  # said once; tried again every round
                log.warning("front door for %s: %s", door.route.name, exc)
            door.error = str(exc)

    # -- what it shows ---------------------------------------------------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        with self.lock:
            found = [door.describe() for door in self.doors.values()] + [record for _until, record in self.failures.values()]
        return sorted(found, key=lambda r: (r["name"], r["zone_id"]))

    def _publish(self) -> None:
        if self.registry is None:
            return
        text = json.dumps({"records": self.records()}, indent=1)
        if text == self._published:
            return
        self.registry.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.registry.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.registry)
        self._published = text

    # -- shutdown ------------------------------------------------------------------------------------------------------------------
    def shutdown(self, wait_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self.lock:
            doors = [*self.doors.values(), *self.retired]
            for door in doors:
                if door.process.proc is not None and door.process.proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(door.process.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + wait_s
            for door in doors:
                proc = door.process.proc
                if proc is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(max(0.0, deadline - time.monotonic()))
                door.process.stopped(force=True)
                door.pidfile.unlink(missing_ok=True)
            self.doors.clear()
            self.retired.clear()
            self._publish()


FRONT_DOOR = FrontDoor()


def find(records: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The record called ``name`` (a public zone's before a private one's)."""
    wanted = norm(name)
    found = [r for r in records if r["name"] == wanted]
    return found[0] if found else None


# -- control routes ---------------------------------------------------------------------------------------------------------------


@control.route("GET", "/_local/frontdoor")
def list_records(_body: Any) -> tuple[int, Any]:
    """Every record that leads to Elastic Beanstalk: its door's URL and where its traffic goes."""
    return 200, {"records": FRONT_DOOR.records(), "file": str(FRONT_DOOR.registry) if FRONT_DOOR.registry else None}


@control.route("GET", "/_local/frontdoor/records/<name>")
def get_record(_body: Any, name: str) -> tuple[int, Any]:
    found = find(FRONT_DOOR.records(), name)
    if found is None:
        raise control.ControlError(404, f"no record {norm(name)} of a local hosted zone leads to an Elastic Beanstalk environment")
    return 200, found


# -- extension --------------------------------------------------------------------------------------------------------------------


def install(settings: Any) -> None:
    state_dir = getattr(settings, "state_dir", None)
    if state_dir is not None:
        FRONT_DOOR.configure(Path(state_dir))


def shutdown() -> None:
    FRONT_DOOR.shutdown()


def stop_leftovers_in(settings: Any) -> list[str]:
    """``local_aws down``: the doors a crashed endpoint left running in ``settings.state_dir``."""
    root = Path(settings.state_dir) / "frontdoor"
    return stop_leftovers(root, "pids/*.json") if root.is_dir() else []
