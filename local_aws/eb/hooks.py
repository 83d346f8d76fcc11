"""Seams between an environment's lifecycle and where its health comes from.

Today environments are simulated: nothing runs, health is what the lifecycle
says (Pending while launching, Ok when ready, Degraded after a failed deploy)
unless a test injects another one through the control interface. Two small
protocols keep the door open for environments that run real processes:

* a :class:`HealthSource` gives an environment's health *opinion* (or None to
  let the lifecycle decide); a later source could probe a real health-check
  URL;
* a :class:`DeployHook` is told when a version is deployed and says whether
  the deployment worked; a later hook could unpack the bundle and restart a
  real process.

Each environment holds its own instances (``Environment.health_source`` and
``Environment.deploy_hook``), made by :data:`FACTORY` when the environment is
created; :func:`use` installs another factory (for example one that starts a
process per environment and probes its health-check path).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

# Enhanced-health status -> colour, as the Elastic Beanstalk documentation maps them.
COLOR_OF = {
    "NoData": "Grey",
    "Unknown": "Grey",
    "Pending": "Grey",
    "Suspended": "Grey",
    "Ok": "Green",
    "Info": "Green",
    "Warning": "Yellow",
    "Degraded": "Red",
    "Severe": "Red",
}
# Colour -> the status it means when only a colour is given.
STATUS_OF = {"Grey": "Unknown", "Green": "Ok", "Yellow": "Warning", "Red": "Degraded"}
# Ordering used to word transitions (worse -> WARN events).
RANK = {"Ok": 0, "Info": 0, "Pending": 1, "Unknown": 1, "NoData": 1, "Suspended": 1, "Warning": 2, "Degraded": 3, "Severe": 4}


@dataclass(frozen=True)
class HealthReading:
    status: str  # an EnvironmentHealthStatus: Ok, Warning, Degraded, Severe, Pending...
    causes: tuple[str, ...] = ()

    @property
    def color(self) -> str:
        return COLOR_OF[self.status]

    @classmethod
    def of(cls, color: str | None = None, status: str | None = None, causes: tuple[str, ...] = ()) -> HealthReading:
        """A reading from a colour, a status or both (they must agree)."""
        if status is None and color is None:
            raise ValueError("give a color or a health_status")
        if status is None:
            if color not in STATUS_OF:
                raise ValueError(f"color must be one of {sorted(STATUS_OF)}")
            status = STATUS_OF[color]
        if status not in COLOR_OF:
            raise ValueError(f"health_status must be one of {sorted(COLOR_OF)}")
        if color is not None and COLOR_OF[status] != color:
            raise ValueError(f"health_status {status} is {COLOR_OF[status]}, not {color}")
        return cls(status, tuple(causes))


class HealthSource(Protocol):
    def reading(self, now: datetime) -> HealthReading | None:
        """The health this source observes now, or None to defer to the lifecycle."""
        ...

    def describe(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class DeployOutcome:
    ok: bool
    message: str = ""


class DeployHook(Protocol):
    def deploy(self, version_label: str | None, now: datetime) -> DeployOutcome:
        """Called when an application version finishes deploying."""
        ...

    def describe(self) -> dict[str, object]: ...


@dataclass
class InjectedHealth:
    """Health set from outside (the control interface); sticky until cleared."""

    injected: HealthReading | None = None

    def reading(self, now: datetime) -> HealthReading | None:
        return self.injected

    def inject(self, reading: HealthReading | None) -> None:
        self.injected = reading

    def describe(self) -> dict[str, object]:
        if self.injected is None:
            return {"kind": "simulated", "injected": None}
        return {"kind": "simulated", "injected": {"status": self.injected.status, "color": self.injected.color, "causes": list(self.injected.causes)}}


@dataclass
class SimulatedDeploy:
    """Deployments succeed, except the ones armed to fail (one per arm)."""

    failures: list[str] = field(default_factory=list)

    def arm_failure(self, message: str) -> None:
        self.failures.append(message)

    def deploy(self, version_label: str | None, now: datetime) -> DeployOutcome:
        if self.failures:
            return DeployOutcome(False, self.failures.pop(0))
        return DeployOutcome(True)

    def describe(self) -> dict[str, object]:
        return {"kind": "simulated", "armed_failures": list(self.failures)}


# (environment) -> (health source, deploy hook); the environment is a
# local_aws.eb.models.Environment (Any here: models imports this module).
HookFactory = Callable[[Any], tuple[HealthSource, DeployHook]]


def simulated(_environment: Any) -> tuple[HealthSource, DeployHook]:
    return InjectedHealth(), SimulatedDeploy()


FACTORY: list[HookFactory] = [simulated]


def use(factory: HookFactory) -> None:
    """Make new environments take their health and deploy outcomes from ``factory``."""
    FACTORY[0] = factory


def make(environment: Any) -> tuple[HealthSource, DeployHook]:
    return FACTORY[0](environment)
