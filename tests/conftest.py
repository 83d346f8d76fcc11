"""Fixtures shared by every test: the local AWS stack and helpers around it."""

from __future__ import annotations

import os
import resource
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.localstack import LocalStack, acquire, release
from tools.module_code_cache import ENV as MODULE_CODE_CACHE

# The module processes of the playbooks the tests run reuse compiled code, as
# under make (tools/module_code_cache.py; needs `make module-code-cache`). Set
# FASTIER_MODULE_CODE_CACHE= (empty) to run without it.
os.environ.setdefault(MODULE_CODE_CACHE, str(Path(__file__).resolve().parent.parent / ".cache" / "module-code"))


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
    "tests/integration/test_migrate.py",
    "tests/molecule/test_default.py",
    "tests/molecule/test_dr.py",
    "tests/integration/test_role_network.py",
    "tests/integration/test_role_database.py",
    "tests/integration/test_site_verify.py",
    "tests/integration/test_report.py",
    "tests/integration/test_role_storage.py",
    "tests/molecule/test_blue_green.py",
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


# CPU seconds per test file (this process and the playbooks it ran), appended to
# $TEST_CPU_REPORT when set: `make test` sets it and prints the sum per file. On a
# busy machine wall time says little about a test's cost; CPU time does.
def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    report = os.environ.get("TEST_CPU_REPORT")
    before = _cpu_seconds()
    try:
        return (yield)
    finally:
        if report:
            with Path(report).open("a", encoding="utf-8") as out:
                out.write(f"{item.nodeid.split('::', 1)[0]}\t{_cpu_seconds() - before:.2f}\n")
