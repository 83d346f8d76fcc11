"""Test access to a local AWS stack (endpoint + PostgreSQL clusters).

``make test`` starts one stack for the whole run and exports its address
(``LOCAL_AWS_ENDPOINT``, ``LOCAL_AWS_STATE_DIR``); a developer running
``pytest`` alone gets a private stack on free ports, stopped at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from local_aws.cli import client_env, start_stack, stop_stack
from local_aws.postgres import Cluster, clusters_for, free_port
from local_aws.settings import ACCESS_KEY, DEFAULT_REGION, SECRET_KEY, Settings


@dataclass
class LocalStack:
    settings: Settings
    owned: bool

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    @property
    def region(self) -> str:
        return DEFAULT_REGION

    def client(self, service: str, region: str | None = None, retries: int = 0) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region or self.region,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(retries={"max_attempts": retries + 1, "mode": "standard"}),
        )

    def drop_db_instance(self, identifier: str) -> None:
        """Delete a DB instance a test converged (deletion protection off, no final snapshot), stopping its server.

        Cheaper than playbooks/teardown.yml (which molecule's default scenario tests) when a test only
        needs its PostgreSQL server gone; the rest of the stack's state goes with the stack.
        """
        rds = self.client("rds")
        if not rds.describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": [identifier]}])["DBInstances"]:
            return
        rds.modify_db_instance(DBInstanceIdentifier=identifier, DeletionProtection=False, ApplyImmediately=True)
        rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)

    def cluster(self, name: str) -> Cluster:
        return clusters_for(self.settings.pg_dir, self.settings.legacy_pg_port)[name]

    def control(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        """Call the control interface (``/_local/...``); returns (status, json)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.endpoint}{path}", data=data, method=method, headers={"Content-Type": "application/json"})  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def env(self) -> dict[str, str]:
        """Environment for a subprocess (ansible-playbook, molecule) using this stack."""
        return {**os.environ, **client_env(self.settings)}


def acquire() -> LocalStack:
    if os.environ.get("LOCAL_AWS_ENDPOINT"):
        return LocalStack(Settings.from_env(), owned=False)
    state_dir = Path(tempfile.mkdtemp(prefix="fastier-localaws-"))
    state_dir.chmod(0o755)  # the postgres OS user must reach its data dir
    settings = Settings(
        port=free_port(),
        state_dir=state_dir,
        legacy_pg_port=free_port(),
        eb_delay_s=float(os.environ.get("LOCAL_EB_DELAY_S", "0.5")),
    )
    start_stack(settings)  # passes the settings to the server through its environment
    return LocalStack(settings, owned=True)


def release(stack: LocalStack) -> None:
    if stack.owned:
        stop_stack(stack.settings)
        # A private stack's state (PostgreSQL data, snapshots, WAL) is tens of MB: leave none behind.
        shutil.rmtree(stack.settings.state_dir, ignore_errors=True)
