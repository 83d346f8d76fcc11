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


# The files with the longest set-ups (a converged platform, a migration), run
# first: `make test` spreads whole files over its workers (--dist loadfile), and
# a long file that starts last keeps one worker busy after the other is done.
# Roughly longest first; the files not named here follow in collection order.
LONGEST_FIRST = (
    "tests/integration/test_migrate_all.py",
    "tests/integration/test_migrate_db.py",
    "tests/integration/test_role_network.py",
    "tests/integration/test_role_database.py",
    "tests/integration/test_site_verify.py",
    "tests/integration/test_report.py",
    "tests/integration/test_role_storage.py",
    "tests/integration/test_role_observability.py",
    "tests/integration/test_blue_green.py",
    "tests/integration/test_role_backup.py",
    "tests/integration/test_restore.py",
    "tests/integration/test_deploy_under_load.py",
    "tests/integration/test_awx.py",
    "tests/integration/test_role_beanstalk.py",
    "tests/integration/test_role_pipeline.py",
    "tests/integration/test_role_app_bundle.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: index for index, path in enumerate(LONGEST_FIRST)}
    # sort is stable: the order inside a file, and of the unnamed files, stays
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
