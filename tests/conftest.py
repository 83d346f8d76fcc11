"""Fixtures shared by every test: the local AWS stack and helpers around it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.localstack import LocalStack, acquire, release


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    """The running local AWS stack (shared; use unique names per test)."""
    current = acquire()
    try:
        yield current
    finally:
        release(current)


@pytest.fixture
def unique() -> str:
    """A short unique suffix for resource names, so tests never collide."""
    return uuid.uuid4().hex[:8]
