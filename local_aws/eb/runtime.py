"""Process-wide state of the Elastic Beanstalk extension: clock, delay, lock.

Every request and every control call holds :data:`LOCK` while it reads or
changes Elastic Beanstalk state (the endpoint serves requests on threads).
Transitions are lazy: state advances when it is read, from timestamps and
:attr:`Runtime.delay_s`. Only the processes of environments that run their
version (``serving``) are looked after by a thread of their own, under their
own lock, taken after this one and never the other way round.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

LOCK = threading.RLock()


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Timestamps parsed from requests are naive UTC; make them aware."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class Runtime:
    """Tunables that the control interface may change while the server runs."""

    delay_s: float = 2.0

    def after(self, start: datetime, steps: float = 1.0) -> datetime:
        """The time ``steps`` transition delays after ``start``."""
        return start + timedelta(seconds=self.delay_s * steps)


RUNTIME = Runtime()
