"""Fixtures of the contract tests: clients of the local stack and EB resources."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.contract.ebkit import FAST, STACK, zip_bytes
from tests.localstack import LocalStack

# Transition time of the contract tests: semantics do not depend on it, the
# suite's duration does. Set through the control route, restored afterwards.
CONTRACT_DELAY_S = 0.25


@pytest.fixture(scope="package", autouse=True)
def fast_transitions(stack: LocalStack) -> Iterator[None]:
    stack.control("POST", "/_local/eb/settings", {"delay_s": min(CONTRACT_DELAY_S, stack.settings.eb_delay_s)})
    yield
    stack.control("POST", "/_local/eb/settings", {"delay_s": stack.settings.eb_delay_s})


@pytest.fixture(scope="session")
def eb(stack: LocalStack) -> Any:
    return stack.client("elasticbeanstalk")


@pytest.fixture(scope="session")
def s3(stack: LocalStack) -> Any:
    return stack.client("s3")


@pytest.fixture(scope="session")
def bucket(s3: Any) -> str:
    name = f"eb-bundles-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def bundle(s3: Any, bucket: str, unique: str) -> dict[str, str]:
    """A valid source bundle (a zip) in S3."""
    key = f"bundles/{unique}.zip"
    s3.put_object(Bucket=bucket, Key=key, Body=zip_bytes())
    return {"S3Bucket": bucket, "S3Key": key}


@pytest.fixture
def app(eb: Any, unique: str) -> Iterator[str]:
    """An application, deleted (with its environments) afterwards."""
    name = f"app-{unique}"
    eb.create_application(ApplicationName=name, Description="contract tests")
    yield name
    with contextlib.suppress(eb.exceptions.ClientError):  # the test may have deleted it
        eb.delete_application(ApplicationName=name, TerminateEnvByForce=True)


@pytest.fixture
def version(eb: Any, app: str, bundle: dict[str, str]) -> str:
    """An unprocessed (deployable) version "v1" of ``app``."""
    eb.create_application_version(ApplicationName=app, VersionLabel="v1", SourceBundle=bundle)
    return "v1"


@pytest.fixture
def make_env(eb: Any, app: str, version: str, unique: str) -> Callable[..., dict[str, Any]]:
    """Create an environment of ``app`` running ``version``; waits until Ready unless wait=False."""
    counter = iter(range(1, 100))

    def create(name: str | None = None, wait: bool = True, **kwargs: Any) -> dict[str, Any]:
        name = name or f"env-{unique}-{next(counter)}"
        params = {"ApplicationName": app, "EnvironmentName": name, "VersionLabel": version, "SolutionStackName": STACK, **kwargs}
        created = eb.create_environment(**params)
        if not wait:
            return created
        eb.get_waiter("environment_exists").wait(EnvironmentIds=[created["EnvironmentId"]], WaiterConfig=FAST)
        return eb.describe_environments(EnvironmentIds=[created["EnvironmentId"]])["Environments"][0]

    return create
