"""The shared module base: bounded waits say what they waited for."""

from __future__ import annotations

import pytest

from plugins.module_utils.base import Deadline, WaitTimeout


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_deadline_counts_down_and_never_oversleeps():
    clock = FakeClock()
    deadline = Deadline(30, "environment fastier-local-blue to be Ready", clock=clock)
    assert deadline.remaining == 30
    clock.now += 25
    assert deadline.sleep_for(10) == 5  # never past the deadline
    assert not deadline.expired
    deadline.check()  # not yet


def test_deadline_timeout_message_names_the_wait_and_last_state():
    clock = FakeClock()
    deadline = Deadline(10, "environment fastier-local-blue to be Ready", clock=clock)
    clock.now += 11
    with pytest.raises(WaitTimeout) as err:
        deadline.check(last_seen="Updating / Grey")
    assert str(err.value) == "timed out after 10s waiting for environment fastier-local-blue to be Ready; last seen: Updating / Grey"
