"""Elastic Beanstalk resources and their API descriptions.

Plain data: the operations that change them live in ``backend`` (requests)
and ``lifecycle`` (timed transitions). ``to_api()`` methods return dicts in the
shapes of the botocore service model; moto's serializer turns them into the
query protocol's XML.
"""

from __future__ import annotations

import heapq
import itertools
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .hooks import DeployHook, HealthReading, HealthSource, InjectedHealth, SimulatedDeploy
from .options import OptionKey

# Environment statuses.
LAUNCHING, UPDATING, READY, TERMINATING, TERMINATED = "Launching", "Updating", "Ready", "Terminating", "Terminated"
# Application version statuses.
UNPROCESSED, PROCESSING, PROCESSED, FAILED = "Unprocessed", "Processing", "Processed", "Failed"
SEVERITIES = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")

_ALNUM = string.ascii_lowercase + string.digits


def random_text(length: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def random_hex(length: int) -> str:
    return secrets.token_hex((length + 1) // 2)[:length]


def arn(region: str, account: str, kind: str, path: str) -> str:
    return f"arn:aws:elasticbeanstalk:{region}:{account}:{kind}/{path}"


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


# -- scheduling ----------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    due: datetime
    owner: str  # id of the resource the step belongs to
    label: str
    action: Callable[[datetime], None]


class Scheduler:
    """Steps that run, in due order, when state is next read after their time."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, Step]] = []
        self._seq = itertools.count()

    def at(self, due: datetime, owner: str, label: str, action: Callable[[datetime], None]) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), Step(due, owner, label, action)))

    def run_due(self, now: datetime) -> None:
        while self._heap and self._heap[0][0] <= now:
            _, _, step = heapq.heappop(self._heap)
            step.action(step.due)

    def pending(self, owner: str) -> list[Step]:
        return [step for _, _, step in sorted(self._heap) if step.owner == owner]

    def cancel(self, owner: str) -> None:
        self._heap = [entry for entry in self._heap if entry[2].owner != owner]
        heapq.heapify(self._heap)


# -- events ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    seq: int
    date: datetime
    message: str
    severity: str
    application_name: str
    environment_name: str | None = None
    environment_id: str | None = None
    version_label: str | None = None
    platform_arn: str | None = None
    request_id: str | None = None

    def to_api(self) -> dict[str, Any]:
        out = {
            "EventDate": self.date,
            "Message": self.message,
            "ApplicationName": self.application_name,
            "VersionLabel": self.version_label,
            "EnvironmentName": self.environment_name,
            "PlatformArn": self.platform_arn,
            "RequestId": self.request_id,
            "Severity": self.severity,
        }
        return {k: v for k, v in out.items() if v is not None}


@dataclass
class EventQuery:
    application_name: str | None = None
    environment_name: str | None = None
    environment_id: str | None = None
    version_label: str | None = None
    request_id: str | None = None
    platform_arn: str | None = None
    severity: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def matches(self, event: Event) -> bool:
        pairs = (
            (self.application_name, event.application_name),
            (self.environment_name, event.environment_name),
            (self.environment_id, event.environment_id),
            (self.version_label, event.version_label),
            (self.request_id, event.request_id),
            (self.platform_arn, event.platform_arn),
        )
        if any(wanted is not None and wanted != actual for wanted, actual in pairs):
            return False
        if self.severity and SEVERITIES.index(event.severity) < SEVERITIES.index(self.severity):
            return False
        if self.start and event.date < self.start:
            return False
        return not (self.end and event.date >= self.end)


class EventLog:
    """Events of one account and region, newest first when queried."""

    LIMIT = 20000

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._seq = itertools.count()

    def add(self, date: datetime, message: str, application: str, severity: str = "INFO", **fields: str | None) -> Event:
        event = Event(next(self._seq), date, message, severity, application, **fields)
        self._events.append(event)
        if len(self._events) > self.LIMIT:
            del self._events[: len(self._events) - self.LIMIT]
        return event

    def query(self, query: EventQuery) -> list[Event]:
        found = [e for e in self._events if query.matches(e)]
        return sorted(found, key=lambda e: (e.date, e.seq), reverse=True)


# -- applications and versions ----------------------------------------------------------


def default_lifecycle() -> dict[str, Any]:
    return {
        "VersionLifecycleConfig": {
            "MaxCountRule": {"Enabled": False, "MaxCount": 200, "DeleteSourceFromS3": False},
            "MaxAgeRule": {"Enabled": False, "MaxAgeInDays": 180, "DeleteSourceFromS3": False},
        }
    }


@dataclass
class ApplicationVersion:
    application_name: str
    label: str
    arn: str
    date_created: datetime
    description: str | None = None
    source_bundle: dict[str, str] | None = None
    source_build_information: dict[str, str] | None = None
    process: bool = False
    status: str = UNPROCESSED
    tags: dict[str, str] = field(default_factory=dict)
    date_updated: datetime | None = None

    def to_api(self) -> dict[str, Any]:
        out = {
            "ApplicationVersionArn": self.arn,
            "ApplicationName": self.application_name,
            "Description": self.description,
            "VersionLabel": self.label,
            "SourceBuildInformation": self.source_build_information,
            "SourceBundle": self.source_bundle,
            "DateCreated": self.date_created,
            "DateUpdated": self.date_updated or self.date_created,
            "Status": self.status,
        }
        return {k: v for k, v in out.items() if v is not None}


@dataclass
class Application:
    name: str
    arn: str
    date_created: datetime
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    lifecycle: dict[str, Any] = field(default_factory=default_lifecycle)
    versions: dict[str, ApplicationVersion] = field(default_factory=dict)
    date_updated: datetime | None = None

    def to_api(self) -> dict[str, Any]:
        newest_first = sorted(self.versions.values(), key=lambda v: v.date_created, reverse=True)
        out = {
            "ApplicationArn": self.arn,
            "ApplicationName": self.name,
            "Description": self.description,
            "DateCreated": self.date_created,
            "DateUpdated": self.date_updated or self.date_created,
            "Versions": [v.label for v in newest_first],
            "ConfigurationTemplates": [],
            "ResourceLifecycleConfig": self.lifecycle,
        }
        return {k: v for k, v in out.items() if v is not None}


# -- environments --------------------------------------------------------------------


@dataclass
class LoadBalancer:
    kind: str  # classic | application | network
    name: str  # the name (classic) or ARN (v2) that DescribeEnvironmentResources reports
    dns_name: str

    @classmethod
    def create(cls, kind: str, env_id: str, region: str, account: str) -> LoadBalancer:
        if kind == "classic":
            name = f"awseb-{env_id[:3]}-AWSEBLoa-{random_text(13).upper()}"
            return cls(kind, name, f"{name}-{random_text(10, string.digits)}.{region}.elb.amazonaws.com")
        short = f"awseb-AWSEB-{random_text(12).upper()}"
        path = "app" if kind == "application" else "net"
        resource = f"arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/{path}/{short}/{random_hex(16)}"
        dns = f"{short}-{random_text(10, string.digits)}.{region}.elb.amazonaws.com"
        if kind == "network":
            dns = f"{short}-{random_hex(16)}.elb.{region}.amazonaws.com"
        return cls(kind, resource, dns)


@dataclass
class Resources:
    """What an environment runs (plausible names; not backed by moto's EC2/ELB/ASG)."""

    auto_scaling_group: str
    launch_template: str
    instances: list[str] = field(default_factory=list)
    load_balancer: LoadBalancer | None = None
    queue: dict[str, str] | None = None
    public_ip: str | None = None

    @classmethod
    def create(cls, env_id: str) -> Resources:
        asg = f"awseb-{env_id}-stack-AWSEBAutoScalingGroup-{random_text(12).upper()}"
        return cls(auto_scaling_group=asg, launch_template=f"lt-{random_hex(17)}")

    @staticmethod
    def new_instance_id() -> str:
        return f"i-{random_hex(17)}"

    @staticmethod
    def new_public_ip() -> str:
        return "54." + ".".join(str(secrets.randbelow(254) + 1) for _ in range(3))

    def resize(self, count: int) -> tuple[list[str], list[str]]:
        """Add or remove instances to reach ``count``; returns (added, removed)."""
        added = [self.new_instance_id() for _ in range(max(0, count - len(self.instances)))]
        removed = self.instances[count:] if count < len(self.instances) else []
        self.instances = [*self.instances[: max(count, 0)], *added]
        return added, removed

    def to_api(self, env_name: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "EnvironmentName": env_name,
            "AutoScalingGroups": [{"Name": self.auto_scaling_group}],
            "Instances": [{"Id": i} for i in self.instances],
            "LaunchConfigurations": [],
            "LaunchTemplates": [{"Id": self.launch_template}],
            "LoadBalancers": [{"Name": self.load_balancer.name}] if self.load_balancer else [],
            "Triggers": [{"Name": self.auto_scaling_group}] if self.load_balancer else [],
            "Queues": [self.queue] if self.queue else [],
        }
        return out


@dataclass
class Environment:
    env_id: str
    name: str
    application_name: str
    account_id: str
    region: str
    solution_stack: str
    platform_arn: str
    tier: dict[str, str]
    cname: str | None
    resources: Resources
    date_created: datetime
    settings: dict[OptionKey, str] = field(default_factory=dict)  # what the user set
    version_label: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    status: str = LAUNCHING
    abortable: bool = False
    date_updated: datetime | None = None
    config_status: str = "pending"
    config_updated: datetime | None = None
    natural_health: HealthReading = HealthReading("Pending")
    reported_health: HealthReading | None = HealthReading("Pending")
    health_source: HealthSource = field(default_factory=InjectedHealth)
    deploy_hook: DeployHook = field(default_factory=SimulatedDeploy)
    deployment_id: int = 0
    deploying_version: str | None = None
    request_id: str | None = None
    terminated_at: datetime | None = None

    @property
    def arn(self) -> str:
        return arn(self.region, self.account_id, "environment", f"{self.application_name}/{self.name}")

    @property
    def active(self) -> bool:
        return self.status != TERMINATED

    @property
    def endpoint_url(self) -> str | None:
        if self.resources.load_balancer:
            return self.resources.load_balancer.dns_name
        return self.resources.public_ip

    def system_tags(self) -> dict[str, str]:
        return {"elasticbeanstalk:environment-name": self.name, "elasticbeanstalk:environment-id": self.env_id, "Name": self.name}

    def to_api(self) -> dict[str, Any]:
        health = self.reported_health
        out: dict[str, Any] = {
            "EnvironmentName": self.name,
            "EnvironmentId": self.env_id,
            "ApplicationName": self.application_name,
            "VersionLabel": self.version_label,
            "SolutionStackName": self.solution_stack,
            "PlatformArn": self.platform_arn,
            "Description": self.description,
            "EndpointURL": self.endpoint_url,
            "CNAME": self.cname,
            "DateCreated": self.date_created,
            "DateUpdated": self.date_updated or self.date_created,
            "Status": self.status,
            "AbortableOperationInProgress": self.abortable,
            "Health": health.color if health and self.active else "Grey",
            "HealthStatus": health.status if health and self.active else None,
            "Resources": self._resources_summary(),
            "Tier": self.tier,
            "EnvironmentLinks": [],
            "EnvironmentArn": self.arn,
        }
        return {k: v for k, v in out.items() if v is not None}

    def _resources_summary(self) -> dict[str, Any] | None:
        balancer = self.resources.load_balancer
        if balancer is None or not self.active:
            return None
        name = balancer.name.split("/")[-2] if balancer.kind != "classic" else balancer.name
        return {"LoadBalancer": {"LoadBalancerName": name, "Domain": balancer.dns_name, "Listeners": [{"Protocol": "http", "Port": 80}]}}
