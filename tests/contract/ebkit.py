"""Helpers for the Elastic Beanstalk contract tests."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError

STACK = "64bit Amazon Linux 2023 v4.6.0 running Python 3.11"
FAST = {"Delay": 0.05, "MaxAttempts": 300}  # botocore waiters, at local speed
ENHANCED = {"Namespace": "aws:elasticbeanstalk:healthreporting:system", "OptionName": "SystemType", "Value": "enhanced"}


def zip_bytes(files: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, text in (files or {"application.py": "def application(env, start):\n    return [b'ok']\n"}).items():
            archive.writestr(name, text)
    return buf.getvalue()


@contextmanager
def aws_error(code: str, message: str | None = None, contains: str | None = None) -> Iterator[pytest.ExceptionInfo[ClientError]]:
    """Expect a ClientError with this code (and exact message, or a fragment of it)."""
    with pytest.raises(ClientError) as info:
        yield info
    error = info.value.response["Error"]
    assert error["Code"] == code, error
    if message is not None:
        assert error["Message"] == message
    if contains is not None:
        assert contains in error["Message"], error["Message"]


def describe(eb: Any, name: str) -> dict[str, Any]:
    """The active environment with that name."""
    envs = [e for e in eb.describe_environments(EnvironmentNames=[name])["Environments"] if e["Status"] != "Terminated"]
    assert len(envs) == 1, envs
    return envs[0]


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)


def wait_ready(eb: Any, name: str) -> dict[str, Any]:
    return wait_until(lambda: (env := describe(eb, name))["Status"] == "Ready" and env)


def messages(eb: Any, **filters: Any) -> list[str]:
    """Event messages, oldest first."""
    return [e["Message"] for e in reversed(eb.describe_events(**filters)["Events"])]


def option(settings: list[dict[str, str]], namespace: str, name: str) -> str | None:
    found = [s for s in settings if s["Namespace"] == namespace and s["OptionName"] == name]
    assert len(found) == 1, (namespace, name, found)
    return found[0].get("Value")
