"""Control routes of the Elastic Beanstalk extension (outside the AWS API).

``POST /_local/eb/environments/<name>/health``     inject health now (sticky)
``POST /_local/eb/environments/<name>/fail-next-deploy``  next version deploy fails
``GET  /_local/eb/environments/<name>``            full internal state
``GET  /_local/eb/environments``                   every environment, briefly
``GET  /_local/eb/environments/<name>/endpoint``   where its load balancer listens (served environments)
``GET  /_local/eb/endpoints``                      every served environment's load balancer and CNAME
``GET|POST /_local/eb/settings``                   transition delay

An environment is found by name among the active ones of every account and
region; ``region`` and ``account_id`` in the body narrow the search when a
name is used in several places.
"""

from __future__ import annotations

from typing import Any

from local_aws.control import ControlError, route

from .backend import EBBackend, eb_backends
from .hooks import HealthReading, InjectedHealth, SimulatedDeploy
from .models import Environment, EventQuery
from .runtime import LOCK, RUNTIME, utcnow
from .serving import SUPERVISOR, ServedDeploy


def _backends() -> list[EBBackend]:
    return [backend for by_region in list(eb_backends.values()) for backend in list(by_region.values())]


def _advance_all() -> None:
    now = utcnow()
    for backend in _backends():
        backend.advance(now)


def _matches(name: str, body: dict[str, Any]) -> list[tuple[EBBackend, Environment]]:
    found = []
    for backend in _backends():
        if body.get("region") not in (None, backend.region_name) or body.get("account_id") not in (None, backend.account_id):
            continue
        found.extend((backend, env) for env in backend.environments.values() if env.name == name)
    return found


def _active(name: str, body: dict[str, Any]) -> tuple[EBBackend, Environment]:
    found = [(b, e) for b, e in _matches(name, body) if e.active]
    if not found:
        raise ControlError(404, f"no active environment named {name}")
    if len(found) > 1:
        places = ", ".join(f"{b.account_id}/{b.region_name}" for b, _ in found)
        raise ControlError(409, f"environment {name} exists in several places ({places}); give account_id and region")
    return found[0]


def state(backend: EBBackend, env: Environment) -> dict[str, Any]:
    """Everything about an environment, for debugging."""
    pending = [{"due": step.due.isoformat(), "step": step.label} for step in backend.scheduler.pending(env.env_id)]
    health = env.reported_health
    return {
        "account_id": backend.account_id,
        "region": backend.region_name,
        "description": env.to_api(),
        "health": {
            "reported": {"status": health.status, "color": health.color, "causes": list(health.causes)} if health else None,
            "natural": {"status": env.natural_health.status, "causes": list(env.natural_health.causes)},
            "source": env.health_source.describe(),
        },
        "deploy_hook": env.deploy_hook.describe(),
        "deploying_version": env.deploying_version,
        "deployment_id": env.deployment_id,
        "settings": [{"Namespace": ns, "OptionName": name, "Value": value} for (ns, name), value in sorted(env.settings.items())],
        "resources": env.resources.to_api(env.name),
        "tags": env.tags,
        "pending_steps": pending,
        "terminated_at": env.terminated_at.isoformat() if env.terminated_at else None,
        "recent_events": [e.to_api() for e in backend.events.query(EventQuery(environment_id=env.env_id))][:50],
    }


@route("GET", "/_local/eb/environments")
def list_environments(_body: Any) -> tuple[int, Any]:
    with LOCK:
        _advance_all()
        rows = [
            {"account_id": b.account_id, "region": b.region_name, "name": e.name, "id": e.env_id, "application": e.application_name, "status": e.status}
            for b in _backends()
            for e in b.environments.values()
        ]
    return 200, {"environments": rows}


@route("GET", "/_local/eb/environments/<name>")
def get_environment(_body: Any, name: str) -> tuple[int, Any]:
    with LOCK:
        _advance_all()
        found = _matches(name, {})
        if not found:
            raise ControlError(404, f"no environment named {name}")
        return 200, {"environments": [state(b, e) for b, e in found]}


@route("GET", "/_local/eb/environments/<name>/endpoint")
def get_endpoint(body: dict[str, Any], name: str) -> tuple[int, Any]:
    """The loopback address of a served environment's load balancer (its CNAME stays AWS's)."""
    with LOCK:
        _advance_all()
        _backend, env = _active(name, body or {})
        hook = env.deploy_hook
        if not isinstance(hook, ServedDeploy) or hook.fleet is None:
            raise ControlError(409, f"environment {name} does not run its version (simulated): it has no load balancer to reach")
        found = [entry for entry in SUPERVISOR.endpoints() if entry["environment_id"] == env.env_id]
        if not found:
            raise ControlError(409, f"environment {name} has no load balancer yet")
        return 200, found[0]


@route("GET", "/_local/eb/endpoints")
def list_endpoints(_body: Any) -> tuple[int, Any]:
    """Every served environment: CNAME, status, version and the loopback URL of its load balancer."""
    with LOCK:
        _advance_all()
        return 200, {"environments": SUPERVISOR.endpoints(), "file": str(SUPERVISOR.registry) if SUPERVISOR.registry else None}


@route("POST", "/_local/eb/environments/<name>/health")
def set_health(body: dict[str, Any], name: str) -> tuple[int, Any]:
    """Body: ``{"color": "Red", "health_status": "Severe", "causes": [...]}``; Green restores."""
    try:
        reading = HealthReading.of(body.get("color"), body.get("health_status"), tuple(body.get("causes") or ()))
    except ValueError as exc:
        raise ControlError(400, str(exc)) from exc
    with LOCK:
        _advance_all()
        backend, env = _active(name, body)
        source = env.health_source
        if not isinstance(source, InjectedHealth):
            raise ControlError(409, f"environment {name} takes its health from {source.describe()}; it cannot be injected")
        now = utcnow()
        if reading.color == "Green":
            source.inject(None)
            env.natural_health = reading if env.status != "Launching" else env.natural_health
        else:
            source.inject(reading)
        backend.lifecycle.refresh_health(env, now)
        return 200, state(backend, env)


@route("POST", "/_local/eb/environments/<name>/fail-next-deploy")
def fail_next_deploy(body: dict[str, Any], name: str) -> tuple[int, Any]:
    """Body: ``{"message": "..."}``: the next deployment of a version fails with it."""
    message = str(body.get("message") or "Application deployment failed (injected by the local control interface).")
    with LOCK:
        _advance_all()
        backend, env = _active(name, body)
        hook = env.deploy_hook
        if not isinstance(hook, SimulatedDeploy):
            raise ControlError(409, f"environment {name} deploys with {hook.describe()}; failures cannot be injected")
        hook.arm_failure(message)
        return 200, state(backend, env)


@route("GET", "/_local/eb/settings")
def get_settings(_body: Any) -> tuple[int, Any]:
    return 200, {"delay_s": RUNTIME.delay_s}


@route("POST", "/_local/eb/settings")
def set_settings(body: dict[str, Any]) -> tuple[int, Any]:
    """Body: ``{"delay_s": 0.2}``: seconds per transition, for operations started from now on."""
    try:
        delay = float(body["delay_s"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ControlError(400, 'body must be {"delay_s": <seconds>}') from exc
    if delay < 0:
        raise ControlError(400, "delay_s must be >= 0")
    with LOCK:
        RUNTIME.delay_s = delay
    return 200, {"delay_s": RUNTIME.delay_s}
