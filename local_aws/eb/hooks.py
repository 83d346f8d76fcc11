"""Seams between an environment's lifecycle and what really runs.

By default environments are simulated: nothing runs, health is what the
lifecycle says (Pending while launching, Ok when ready, Degraded after a
failed deploy) unless a test injects another one through the control
interface. Two small protocols let environments run real processes
(``serving`` implements them for bundles that have something to run):

* a :class:`HealthSource` gives an environment's health *opinion* (or None to
  let the lifecycle decide), and may count its instances by health;
* a :class:`DeployHook` is told when a version is deployed, when settings
  change, when the app is restarted or rebuilt and when the environment is
  terminated. It answers with a :class:`DeployOutcome`; a *pending* outcome
  means the work goes on in the background, and the lifecycle asks again
  with :meth:`DeployHook.poll` (every ``lifecycle.POLL_S``) until it is done. It also
  says which instances really run (or None: the lifecycle names them).

Each environment holds its own instances (``Environment.health_source`` and
``Environment.deploy_hook``), made by :data:`FACTORY` when the environment is
created; :func:`use` installs another factory.
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

    def instance_counts(self) -> dict[str, int] | None:
        """Instances by health status (Ok, Severe, Pending...), or None to count them all as the environment."""
        ...

    def describe(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class DeployOutcome:
    ok: bool
    message: str = ""
    pending: bool = False  # still working: ask again with DeployHook.poll


DONE = DeployOutcome(True)
PENDING = DeployOutcome(False, pending=True)
# What DeployHook.apply is told about.
CONFIGURE, RESTART, REBUILD, TERMINATE = "configure", "restart", "rebuild", "terminate"


class DeployHook(Protocol):
    def deploy(self, version_label: str | None, now: datetime) -> DeployOutcome:
        """An application version is deployed (at launch, or by UpdateEnvironment with its settings)."""
        ...

    def apply(self, change: str, now: datetime) -> DeployOutcome:
        """Settings changed (CONFIGURE), the app restarts (RESTART), instances are replaced (REBUILD) or all stop (TERMINATE)."""
        ...

    def poll(self, now: datetime) -> DeployOutcome:
        """The outcome of the work a pending answer started (pending again while it goes on)."""
        ...

    def instances(self) -> list[str] | None:
        """Ids of the instances that really run, or None when the lifecycle names them."""
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

    def instance_counts(self) -> dict[str, int] | None:
        return None

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
        return DONE

    def apply(self, change: str, now: datetime) -> DeployOutcome:
        return DONE

    def poll(self, now: datetime) -> DeployOutcome:
        return DONE

    def instances(self) -> list[str] | None:
        return None

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
