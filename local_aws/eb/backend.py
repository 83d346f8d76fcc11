"""The Elastic Beanstalk backend: one per account and region (moto BackendDict).

Operations validate like AWS (codes and messages in ``errors``), change state,
and hand timed work to ``lifecycle``. Every public method starts by advancing
the scheduler to now, so reads see the state AWS would show at that moment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moto.core.base_backend import BackendDict, BaseBackend
from moto.core.resource_tagging import TaggableResourcesMixin, TaggedResource

from . import bundles, hooks, options, platforms
from .errors import (
    ConfigurationValidationException,
    InvalidParameterCombination,
    InvalidParameterValue,
    InvalidRequestException,
    MissingRequiredParameter,
    OperationInProgress,
    ResourceNotFound,
    ResourceTypeNotSupported,
    TooManyTags,
    length_violation,
    must_be_ready,
    no_application,
    no_application_version,
    no_environment,
)
from .lifecycle import Lifecycle, Update
from .models import (
    FAILED,
    PROCESSED,
    PROCESSING,
    READY,
    TERMINATING,
    UNPROCESSED,
    Application,
    ApplicationVersion,
    Environment,
    EventLog,
    EventQuery,
    Resources,
    Scheduler,
    arn,
    random_text,
)
from .options import OptionKey
from .runtime import RUNTIME, utcnow

_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
_CHARSET = "Member must contain only letters, digits, and the dash character and may not start or end with a dash"
TIERS = {"WebServer": "Standard", "Worker": "SQS/HTTP"}
RESERVED_TAG_PREFIXES = ("aws:", "elasticbeanstalk:")
MAX_TAGS = 50
DELETED_RETENTION = timedelta(hours=1)  # terminated environments stay visible about this long


def check_name(value: str, field_name: str, low: int, high: int) -> None:
    if not low <= len(value) <= high:
        raise length_violation(value, field_name, low, high)
    if not _NAME.match(value):
        raise InvalidParameterValue(f"Value {value} at '{field_name}' failed to satisfy constraint: {_CHARSET}")


def cname_for(prefix: str, region: str) -> str:
    return f"{prefix.lower()}.{region}.elasticbeanstalk.com"


def check_tags(tags: Mapping[str, str], existing: int = 0) -> None:
    for key in tags:
        if key.lower().startswith(RESERVED_TAG_PREFIXES):
            raise InvalidParameterValue(f"Tag key '{key}' is reserved: keys starting with 'aws:' or 'elasticbeanstalk:' are managed by AWS.")
    if existing + len(tags) > MAX_TAGS:
        raise TooManyTags("The number of tags in the resource would exceed the number of tags that each resource can have.")


def raise_first(problems: list[options.Problem]) -> None:
    if problems:
        raise ConfigurationValidationException(problems[0].message)


@dataclass
class EnvironmentRequest:
    """CreateEnvironment/UpdateEnvironment parameters, already parsed."""

    application_name: str | None = None
    environment_name: str | None = None
    environment_id: str | None = None
    cname_prefix: str | None = None
    description: str | None = None
    tier: dict[str, str] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    version_label: str | None = None
    template_name: str | None = None
    solution_stack: str | None = None
    platform_arn: str | None = None
    option_settings: list[dict[str, str]] = field(default_factory=list)
    options_to_remove: list[dict[str, str]] = field(default_factory=list)


@dataclass
class VersionRequest:
    """CreateApplicationVersion parameters, already parsed."""

    application_name: str
    label: str
    description: str | None = None
    source_bundle: dict[str, str] | None = None
    source_build_information: dict[str, str] | None = None
    auto_create_application: bool = False
    process: bool = False
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class EnvironmentFilter:
    application_name: str | None = None
    version_label: str | None = None
    environment_ids: list[str] = field(default_factory=list)
    environment_names: list[str] = field(default_factory=list)
    include_deleted: bool = True
    deleted_back_to: datetime | None = None


class EBBackend(BaseBackend, TaggableResourcesMixin):
    SERVICE_NAMESPACE = "elasticbeanstalk"

    def __init__(self, region_name: str, account_id: str):
        super().__init__(region_name, account_id)
        self.applications: dict[str, Application] = {}
        self.environments: dict[str, Environment] = {}  # by id, terminated ones too
        self.scheduler = Scheduler()
        self.events = EventLog()
        self.lifecycle = Lifecycle(self.scheduler, self.events, self.effective_settings)
        self.request_id: str | None = None

    # -- time ------------------------------------------------------------------------------
    def advance(self, now: datetime | None = None) -> datetime:
        """Run the transitions that are due; returns the time used."""
        now = now or utcnow()
        self.scheduler.run_due(now)
        for env in self.environments.values():
            if env.active:
                self.lifecycle.sync_instances(env, now)
                self.lifecycle.refresh_health(env, now)
        return now

    def begin(self, request_id: str | None) -> datetime:
        self.request_id = request_id
        return self.advance()

    def _touch(self, env: Environment) -> None:
        env.request_id = self.request_id

    # -- lookups ------------------------------------------------------------------------------
    def application(self, name: str | None) -> Application:
        if not name or name not in self.applications:
            raise no_application(name or "")
        return self.applications[name]

    def version(self, app_name: str, label: str) -> ApplicationVersion:
        found = self.application(app_name).versions.get(label)
        if found is None:
            raise no_application_version(label)
        return found

    def active_environments(self) -> Iterator[Environment]:
        return (env for env in self.environments.values() if env.active)

    def environment(self, name: str | None = None, env_id: str | None = None, application: str | None = None) -> Environment:
        """The active environment with that name and/or id (AWS: InvalidParameterValue when none)."""
        if not name and not env_id:
            raise MissingRequiredParameter("Either EnvironmentName or EnvironmentId must be specified.")
        for env in self.active_environments():
            if (name is None or env.name == name) and (env_id is None or env.env_id == env_id) and (application is None or env.application_name == application):
                return env
        raise no_environment(name, env_id)

    def effective_settings(self, env: Environment) -> dict[OptionKey, str]:
        return {**options.defaults(env.solution_stack), **env.settings}

    # -- applications ---------------------------------------------------------------------------
    def create_application(self, name: str, description: str | None, tags: dict[str, str], lifecycle: dict[str, Any] | None) -> Application:
        if name in self.applications:
            raise InvalidParameterValue(f"Application {name} already exists.")
        check_tags(tags)
        now = utcnow()
        app = Application(name, arn(self.region_name, self.account_id, "application", name), now, description, dict(tags))
        if lifecycle:
            app.lifecycle = lifecycle
        self.applications[name] = app
        return app

    def describe_applications(self, names: list[str]) -> list[Application]:
        return [app for app in self.applications.values() if not names or app.name in names]

    def update_application(self, name: str, description: str | None) -> Application:
        app = self.application(name)
        if description is not None:
            app.description, app.date_updated = description, utcnow()
        return app

    def update_application_resource_lifecycle(self, name: str, lifecycle: dict[str, Any]) -> Application:
        app = self.application(name)
        app.lifecycle, app.date_updated = lifecycle, utcnow()
        return app

    def delete_application(self, name: str, force: bool) -> None:
        app = self.application(name)
        running = [env for env in self.active_environments() if env.application_name == name]
        if running and not force:
            names = ", ".join(env.name for env in running)
            raise InvalidParameterValue(
                f"Unable to delete application {name} because it has running environments: {names}. Terminate them first or set TerminateEnvByForce."
            )
        now = utcnow()
        for env in running:
            if env.status != TERMINATING:
                self._touch(env)
                self.lifecycle.terminate(env, now, terminate_resources=True)
        for version in app.versions.values():
            self.scheduler.cancel(version.arn)
        del self.applications[name]

    # -- application versions ----------------------------------------------------------------------
    def create_application_version(self, req: VersionRequest) -> ApplicationVersion:
        if req.application_name not in self.applications and req.auto_create_application:
            self.create_application(req.application_name, None, {}, None)
        app = self.application(req.application_name)
        if req.label in app.versions:
            raise InvalidParameterValue(f"Application Version {req.label} already exists.")
        check_tags(req.tags)
        bundle = req.source_bundle
        if bundle:
            bundles.check(self.account_id, self.region_name, bundle.get("S3Bucket", ""), bundle.get("S3Key", ""))
        now = utcnow()
        version = ApplicationVersion(
            app.name, req.label, arn(self.region_name, self.account_id, "applicationversion", f"{app.name}/{req.label}"), now,
            req.description, bundle, req.source_build_information, req.process, UNPROCESSED, dict(req.tags),
        )  # fmt: skip
        app.versions[req.label] = version
        if req.process:
            self._schedule_processing(version, now)
        return version

    def _schedule_processing(self, version: ApplicationVersion, at: datetime) -> None:
        def processing(t: datetime) -> None:
            version.status, version.date_updated = PROCESSING, t

        def processed(t: datetime) -> None:
            bundle = version.source_bundle
            data = bundles.read(self.account_id, self.region_name, bundle["S3Bucket"], bundle["S3Key"]) if bundle else b"PK\x05\x06" + b"\0" * 18
            version.status, version.date_updated = (PROCESSED, t) if bundles.is_zip(data) else (FAILED, t)
            if version.status == FAILED:
                reason = "the source bundle is not a valid ZIP archive" if data is not None else "the source bundle was not found in Amazon S3"
                self.events.add(
                    t, f"Failed to process application version {version.label}: {reason}.", version.application_name, "ERROR", version_label=version.label
                )

        self.scheduler.at(at, version.arn, "processing", processing)  # right after the create response
        self.scheduler.at(RUNTIME.after(at, 1.0), version.arn, "processed", processed)

    def describe_application_versions(self, app_name: str | None, labels: list[str]) -> list[ApplicationVersion]:
        apps = [self.applications[app_name]] if app_name in self.applications else ([] if app_name else list(self.applications.values()))
        found = [v for app in apps for v in app.versions.values() if not labels or v.label in labels]
        return sorted(found, key=lambda v: v.date_created, reverse=True)

    def update_application_version(self, app_name: str, label: str, description: str | None) -> ApplicationVersion:
        version = self.version(app_name, label)
        if description is not None:
            version.description, version.date_updated = description, utcnow()
        return version

    def delete_application_version(self, app_name: str, label: str, delete_bundle: bool) -> None:
        version = self.version(app_name, label)
        if version.status == PROCESSING:
            raise OperationInProgress(f"Unable to delete application version: {label}. An operation is already in progress, please retry again shortly.")
        users = [env.name for env in self.active_environments() if env.application_name == app_name and label in (env.version_label, env.deploying_version)]
        if users:
            raise InvalidParameterValue(f"Unable to delete application version {label} because it is being used by environment(s): {', '.join(users)}")
        self.scheduler.cancel(version.arn)
        del self.applications[app_name].versions[label]
        if delete_bundle and version.source_bundle:
            bundles.delete(self.account_id, self.region_name, version.source_bundle["S3Bucket"], version.source_bundle["S3Key"])

    def _deployable(self, app_name: str, label: str) -> ApplicationVersion:
        version = self.version(app_name, label)
        if version.status == PROCESSING or (version.process and version.status == UNPROCESSED):
            raise InvalidParameterValue(f"Application version {label} is still being processed. Wait until its status is Processed, then try again.")
        if version.status == FAILED:
            raise InvalidParameterValue(f"Application version {label} failed processing and cannot be deployed.")
        return version

    # -- DNS ------------------------------------------------------------------------------------------
    def cname_taken(self, cname: str) -> bool:
        now = utcnow()
        for backend in region_backends(self.region_name):
            backend.advance(now)
            if any(env.cname == cname for env in backend.active_environments()):
                return True
        return False

    def check_dns_availability(self, prefix: str) -> tuple[bool, str]:
        check_name(prefix, "CNAMEPrefix", 4, 63)
        cname = cname_for(prefix, self.region_name)
        return not self.cname_taken(cname), cname

    # -- environments: create --------------------------------------------------------------------------
    def create_environment(self, req: EnvironmentRequest) -> Environment:
        app = self.application(req.application_name)
        name = req.environment_name or ""
        check_name(name, "EnvironmentName", 4, 40)
        if any(env.name == name for env in self.active_environments()):
            raise InvalidParameterValue(f"Environment {name} already exists.")
        tier = self._tier(req.tier)
        cname = self._new_cname(name, req.cname_prefix, tier)
        platform = platforms.resolve(req.solution_stack, req.platform_arn, self.region_name, req.template_name)
        if req.version_label:
            self._deployable(app.name, req.version_label)
        settings, problems = merge_settings({}, req.option_settings, req.options_to_remove, platform.solution_stack)
        raise_first(problems)
        check_tags(req.tags)
        now = utcnow()
        env_id = f"e-{random_text(10)}"
        env = Environment(
            env_id, name, app.name, self.account_id, self.region_name, platform.solution_stack, platform.platform_arn, tier, cname,
            Resources.create(env_id), now, settings, req.version_label, req.description, dict(req.tags),
        )  # fmt: skip
        if tier["Name"] == "Worker":
            queue = f"awseb-{env_id}-stack-AWSEBWorkerQueue-{random_text(12).upper()}"
            env.resources.queue = {"Name": queue, "URL": f"https://sqs.{self.region_name}.amazonaws.com/{self.account_id}/{queue}"}
        env.health_source, env.deploy_hook = hooks.make(env)
        self.environments[env_id] = env
        self._touch(env)
        self.lifecycle.launch(env, now, f"elasticbeanstalk-{self.region_name}-{self.account_id}")
        return env

    def _tier(self, requested: dict[str, str] | None) -> dict[str, str]:
        name = (requested or {}).get("Name", "WebServer")
        if name not in TIERS:
            raise InvalidParameterValue(f"Invalid tier name '{name}'. Valid values: WebServer, Worker.")
        tier_type = (requested or {}).get("Type", TIERS[name])
        if tier_type != TIERS[name]:
            raise InvalidParameterValue(f"Invalid tier type '{tier_type}' for tier '{name}'. Valid value: {TIERS[name]}.")
        return {"Name": name, "Type": tier_type, "Version": (requested or {}).get("Version", "1.0")}

    def _new_cname(self, name: str, prefix: str | None, tier: dict[str, str]) -> str | None:
        if tier["Name"] == "Worker":
            if prefix:
                raise InvalidParameterValue("CNAMEPrefix cannot be specified for an environment in the Worker tier.")
            return None
        if not prefix:  # AWS appends a random token to the name: <name>.eba-xxxxxxxx.<region>.elasticbeanstalk.com
            return f"{name.lower()}.eba-{random_text(8)}.{self.region_name}.elasticbeanstalk.com"
        check_name(prefix, "CNAMEPrefix", 4, 63)
        cname = cname_for(prefix, self.region_name)
        if self.cname_taken(cname):
            raise InvalidParameterValue(f"DNS name ({cname}) is not available.")
        return cname

    # -- environments: update ---------------------------------------------------------------------------
    def update_environment(self, req: EnvironmentRequest) -> Environment:
        env = self.environment(req.environment_name, req.environment_id, req.application_name)
        if env.status != READY:
            raise must_be_ready(env.name)
        if req.tier and self._tier(req.tier)["Name"] != env.tier["Name"]:
            raise InvalidParameterValue("The tier of an existing environment cannot be changed.")
        if req.template_name:
            raise InvalidParameterValue(f"No Configuration Template named '{req.template_name}' found.")
        if req.version_label:
            self._deployable(env.application_name, req.version_label)
        platform = None
        if req.solution_stack or req.platform_arn:
            platform = platforms.resolve(req.solution_stack, req.platform_arn, self.region_name)
        stack = platform.solution_stack if platform else env.solution_stack
        settings, problems = merge_settings(env.settings, req.option_settings, req.options_to_remove, stack)
        raise_first(problems)
        now = utcnow()
        self._touch(env)
        if req.description is not None:
            env.description, env.date_updated = req.description, now
        update = Update(req.version_label, bool(req.option_settings or req.options_to_remove), platform is not None and stack != env.solution_stack)
        env.settings = settings
        if platform:
            env.solution_stack, env.platform_arn = platform.solution_stack, platform.platform_arn
        if update.version_label or update.reconfigure or update.platform_change:
            self.lifecycle.update(env, now, update)
        return env

    # -- environments: other operations ---------------------------------------------------------------------
    def describe_environments(self, flt: EnvironmentFilter) -> list[Environment]:
        back_to = flt.deleted_back_to or utcnow() - DELETED_RETENTION
        found = []
        for env in self.environments.values():
            if not env.active and not (flt.include_deleted and env.terminated_at and env.terminated_at >= back_to):
                continue
            if flt.application_name and env.application_name != flt.application_name:
                continue
            if flt.version_label and env.version_label != flt.version_label:
                continue
            if flt.environment_ids and env.env_id not in flt.environment_ids:
                continue
            if flt.environment_names and env.name not in flt.environment_names:
                continue
            found.append(env)
        return sorted(found, key=lambda e: e.date_created)

    def _ready(self, name: str | None, env_id: str | None) -> Environment:
        env = self.environment(name, env_id)
        if env.status != READY:
            raise must_be_ready(env.name)
        self._touch(env)
        return env

    def terminate_environment(self, name: str | None, env_id: str | None, terminate_resources: bool) -> Environment:
        env = self._ready(name, env_id)
        self.lifecycle.terminate(env, utcnow(), terminate_resources)
        return env

    def restart_app_server(self, name: str | None, env_id: str | None) -> None:
        self.lifecycle.operation(self._ready(name, env_id), utcnow(), "restartAppServer")

    def rebuild_environment(self, name: str | None, env_id: str | None) -> None:
        self.lifecycle.operation(self._ready(name, env_id), utcnow(), "rebuildEnvironment", replace_instances=True)

    def swap_environment_cnames(self, source: tuple[str | None, str | None], destination: tuple[str | None, str | None]) -> None:
        if not any(source) or not any(destination):
            raise MissingRequiredParameter("Both a source (SourceEnvironmentName or SourceEnvironmentId) and a destination environment must be specified.")
        first, second = self.environment(*source), self.environment(*destination)
        if first.env_id == second.env_id:
            raise InvalidParameterValue(f"Cannot swap CNAMEs of environment {first.name} with itself.")
        if first.application_name != second.application_name:
            apps = f"{first.name} ({first.application_name}) and {second.name} ({second.application_name})"
            raise InvalidParameterValue(f"Cannot swap CNAMEs between environments in different applications: {apps}.")
        for env in (first, second):
            if env.status != READY:
                raise must_be_ready(env.name)
            if env.cname is None:
                raise InvalidParameterValue(f"Environment {env.name} has no CNAME to swap (Worker tier).")
            self._touch(env)
        self.lifecycle.swap(first, second, utcnow())

    def describe_environment_resources(self, name: str | None, env_id: str | None) -> dict[str, Any]:
        env = self.environment(name, env_id)
        return env.resources.to_api(env.name)

    def describe_environment_health(self, name: str | None, env_id: str | None, attributes: list[str]) -> dict[str, Any]:
        try:
            env = self.environment(name, env_id)
        except (InvalidParameterValue, MissingRequiredParameter) as exc:
            raise InvalidRequestException(exc.message) from exc
        if self.effective_settings(env).get(("aws:elasticbeanstalk:healthreporting:system", "SystemType")) != "enhanced":
            raise InvalidRequestException(
                f"Environment {env.name} does not have enhanced health reporting enabled "
                "(SystemType of aws:elasticbeanstalk:healthreporting:system is not enhanced)."
            )
        return health_report(env, attributes, utcnow())

    # -- configuration ------------------------------------------------------------------------------------------
    def configuration_settings(self, app_name: str | None, env_name: str | None, template: str | None) -> dict[str, Any]:
        if env_name and template:
            raise InvalidParameterCombination("You cannot specify both EnvironmentName and TemplateName.")
        if not env_name and not template:
            raise MissingRequiredParameter("Either EnvironmentName or TemplateName must be specified.")
        app = self.application(app_name)
        if template:
            raise InvalidParameterValue(f"No Configuration Template named '{app.name}/{template}' found.")
        env = self.environment(env_name, application=app.name)
        return {
            "SolutionStackName": env.solution_stack,
            "PlatformArn": env.platform_arn,
            "ApplicationName": env.application_name,
            "Description": env.description,
            "EnvironmentName": env.name,
            "DeploymentStatus": env.config_status,
            "DateCreated": env.date_created,
            "DateUpdated": env.config_updated or env.date_created,
            "OptionSettings": option_settings_list(env),
        }

    def configuration_options(
        self,
        app_name: str | None,
        env_name: str | None,
        *,
        template: str | None = None,
        stack: str | None = None,
        platform_arn: str | None = None,
        wanted: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        env = None
        if template:
            raise InvalidParameterValue(f"No Configuration Template named '{app_name}/{template}' found.")
        if env_name:
            env = self.environment(env_name, application=self.application(app_name).name if app_name else None)
            stack = env.solution_stack
        elif stack or platform_arn:
            stack = platforms.resolve(stack, platform_arn, self.region_name).solution_stack
        described = [spec.describe() for spec in options.all_specs(stack)]
        if env is not None:
            described.extend(custom_options(env))
        if wanted:
            described = [d for d in described if {"Namespace": d["Namespace"], "OptionName": d["Name"]} in wanted]
            described.extend(templated_options(wanted, described))
        out: dict[str, Any] = {"Options": described}
        if stack:
            out.update(SolutionStackName=stack, PlatformArn=platforms.platform_arn(stack, self.region_name))
        return out

    def validate_configuration_settings(
        self, app_name: str | None, env_name: str | None, template: str | None, settings: list[dict[str, str]]
    ) -> list[dict[str, str]]:
        app = self.application(app_name)
        if template:
            raise InvalidParameterValue(f"No Configuration Template named '{app.name}/{template}' found.")
        env = self.environment(env_name, application=app.name)
        _, problems = merge_settings(env.settings, settings, [], env.solution_stack)
        return [{"Message": p.message, "Severity": "error", "Namespace": p.namespace, "OptionName": p.option} for p in problems]

    # -- events --------------------------------------------------------------------------------------------------
    def describe_events(self, query: EventQuery) -> list[dict[str, Any]]:
        return [event.to_api() for event in self.events.query(query)]

    # -- tags ------------------------------------------------------------------------------------------------------
    def _tagged(self, resource_arn: str) -> Application | ApplicationVersion | Environment:
        match = re.match(r"^arn:aws:elasticbeanstalk:(?P<region>[^:]*):(?P<account>[^:]*):(?P<kind>[a-z]+)/(?P<path>.+)$", resource_arn)
        if not match:
            raise ResourceNotFound(f"Resource not found for ARN '{resource_arn}'.")
        if match["kind"] not in ("application", "applicationversion", "environment"):
            raise ResourceTypeNotSupported(f"Resource type '{match['kind']}' of ARN '{resource_arn}' is not supported by this local endpoint.")
        found = self._find_tagged(match["kind"], match["path"]) if (match["region"], match["account"]) == (self.region_name, self.account_id) else None
        if found is None:
            raise ResourceNotFound(f"Resource not found for ARN '{resource_arn}'.")
        return found

    def _find_tagged(self, kind: str, path: str) -> Application | ApplicationVersion | Environment | None:
        head, _, tail = path.partition("/")
        if kind == "application":
            return self.applications.get(path)
        if kind == "applicationversion":
            app = self.applications.get(head)
            return app.versions.get(tail) if app else None
        return next((env for env in self.active_environments() if env.application_name == head and env.name == tail), None)

    def list_tags(self, resource_arn: str) -> dict[str, str]:
        resource = self._tagged(resource_arn)
        if isinstance(resource, Environment):
            return {**resource.system_tags(), **resource.tags}
        return dict(resource.tags)

    def update_tags(self, resource_arn: str, add: dict[str, str], remove: list[str]) -> None:
        if not add and not remove:
            raise MissingRequiredParameter("Specify at least one of these parameters: TagsToAdd, TagsToRemove.")
        resource = self._tagged(resource_arn)
        check_tags({k: v for k, v in add.items() if k not in resource.tags}, existing=len(resource.tags))
        check_tags(dict.fromkeys(remove, ""))
        if isinstance(resource, Environment):
            if resource.status != READY:
                raise OperationInProgress(f"Environment named {resource.name} is in an invalid state for this operation. Must be Ready.")
            self._touch(resource)
            self.lifecycle.retag(resource, utcnow())
        resource.tags.update(add)
        for key in remove:
            resource.tags.pop(key, None)

    # Resource Groups Tagging API (GetResources) sees our resources too.
    def iter_tagged_resources(self) -> Iterator[TaggedResource]:
        for app in self.applications.values():
            yield TaggedResource(app.arn, dict(app.tags), "elasticbeanstalk:application", {"include_untagged": True})
            for version in app.versions.values():
                yield TaggedResource(version.arn, dict(version.tags), "elasticbeanstalk:applicationversion", {"include_untagged": True})
        for env in self.active_environments():
            yield TaggedResource(env.arn, dict(env.tags), "elasticbeanstalk:environment", {"include_untagged": True})


# -- helpers used by the backend ---------------------------------------------------------------------------------


def merge_settings(
    current: Mapping[OptionKey, str], settings: list[dict[str, str]], removals: list[dict[str, str]], solution_stack: str
) -> tuple[dict[OptionKey, str], list[options.Problem]]:
    """Apply removals then settings to ``current``; returns (new settings, problems)."""
    merged = dict(current)
    problems: list[options.Problem] = []
    for removal in removals:
        namespace, name = removal.get("Namespace", ""), removal.get("OptionName", "")
        problem = options.check_known(namespace, name)
        if problem:
            problems.append(problem)
        merged.pop((namespace, name), None)
    for setting in settings:
        namespace, name, value = setting.get("Namespace", ""), setting.get("OptionName", ""), setting.get("Value", "")
        problem = options.check_setting(namespace, name, value)
        if problem:
            problems.append(problem)
        merged[(namespace, name)] = value
    problems.extend(options.check_consistency({**options.defaults(solution_stack), **merged}))
    return merged, problems


def option_settings_list(env: Environment) -> list[dict[str, str]]:
    """Every option of the platform with its effective value (no Value when it has none)."""
    values = {**options.defaults(env.solution_stack), **env.settings}
    keys = {(spec.namespace, spec.name) for spec in options.all_specs(env.solution_stack)} | set(env.settings)
    out = []
    for namespace, name in sorted(keys):
        item = {"Namespace": namespace, "OptionName": name}
        if (namespace, name) in values:
            item["Value"] = values[(namespace, name)]
        out.append(item)
    return out


def custom_options(env: Environment) -> list[dict[str, Any]]:
    """User-defined options of an environment (environment properties...)."""
    return [
        {"Namespace": ns, "Name": name, "ChangeSeverity": options.RESTART_APP, "UserDefined": True, "ValueType": "Scalar", "DefaultValue": ""}
        for ns, name in sorted(env.settings)
        if ns in options.FREE_FORM
    ]


def templated_options(wanted: list[dict[str, str]], already: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Options asked for in concrete namespaces of templates (aws:elbv2:listener:443...)."""
    seen = {(d["Namespace"], d["Name"]) for d in already}
    out = []
    for item in wanted:
        namespace, name = item.get("Namespace", ""), item.get("OptionName", "")
        spec = (options.specs_for(namespace) or {}).get(name)
        if spec and (namespace, name) not in seen:
            out.append(spec.describe())
    return out


def health_report(env: Environment, attributes: list[str], now: datetime) -> dict[str, Any]:
    health = env.reported_health
    status = health.status if health else "Unknown"
    counts = {key: 0 for key in ("NoData", "Unknown", "Pending", "Ok", "Info", "Warning", "Degraded", "Severe")}
    measured = env.health_source.instance_counts()  # instances that run report their own health
    if measured is None:
        counts[status if status in counts else "Unknown"] = len(env.resources.instances)
    else:
        counts.update({key: value for key, value in measured.items() if key in counts})
    report: dict[str, Any] = {
        "Status": env.status,
        "Color": health.color if health else "Grey",
        "HealthStatus": status,
        "Causes": list(health.causes) if health else [],
        "ApplicationMetrics": {"Duration": 10, "RequestCount": 0, "StatusCodes": {"Status2xx": 0, "Status3xx": 0, "Status4xx": 0, "Status5xx": 0}},
        "InstancesHealth": counts,
        "RefreshedAt": now,
    }
    wanted = set(report) if "All" in attributes else set(attributes)
    return {"EnvironmentName": env.name, **{k: v for k, v in report.items() if k in wanted}}


eb_backends = BackendDict(EBBackend, "elasticbeanstalk")


def region_backends(region: str) -> list[EBBackend]:
    """The backends of every account that has used this region (CNAMEs are regional)."""
    return [by_region[region] for by_region in list(eb_backends.values()) if region in list(by_region.keys())]
