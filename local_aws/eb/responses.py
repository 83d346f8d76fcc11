"""The Elastic Beanstalk query API, on top of :mod:`local_aws.eb.backend`.

moto's dispatch (``BaseResponse.call_action``) turns the ``Action`` parameter
into a method name with ``camelcase_to_underscores`` and calls that method of
the response class; ``install()`` points moto's Elastic Beanstalk URL to
:class:`LocalEBResponse`, which overrides the stub's methods. Parameters come
from moto's model-driven parser (``automated_parameter_parsing``); results are
dicts in the botocore shapes, serialized by ``ActionResult``.
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime
from typing import Any

from moto.core.responses import TYPE_RESPONSE, ActionResult, EmptyResult
from moto.elasticbeanstalk.responses import EBResponse

from .backend import EBBackend, EnvironmentFilter, EnvironmentRequest, VersionRequest, eb_backends
from .errors import InvalidAction, InvalidParameterValue
from .models import EventQuery
from .runtime import LOCK, as_utc

MAX_RECORDS = 1000
# The request id of the response itself (not those of events in the result).
_RESPONSE_REQUEST_ID = re.compile(r"<RequestId>[^<]*</RequestId>(?=</ResponseMetadata>|</ErrorResponse>)")


def paginate(items: list[Any], max_records: int | None, token: str | None) -> tuple[list[Any], str | None]:
    """One page of ``items`` and the token of the next (None on the last page)."""
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset:"))
        except ValueError as exc:
            raise InvalidParameterValue(f"Invalid NextToken: {token}") from exc
    size = max_records or MAX_RECORDS
    end = start + size
    following = base64.urlsafe_b64encode(f"offset:{end}".encode()).decode() if end < len(items) else None
    return items[start:end], following


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


class LocalEBResponse(EBResponse):
    """Elastic Beanstalk actions answered by the local backend."""

    @property
    def elasticbeanstalk_backend(self) -> EBBackend:  # type: ignore[override]
        return eb_backends[self.current_account][self.region]

    @property
    def backend(self) -> EBBackend:
        return self.elasticbeanstalk_backend

    # -- plumbing: one lock for all EB state, and a request id shared with the events -------------
    def call_action(self) -> TYPE_RESPONSE:
        self.request_id = str(uuid.uuid4())
        with LOCK:
            self.backend.begin(self.request_id)
            action = self._get_action()
            if action not in ACTIONS:  # moto would answer an HTML 500 that clients cannot parse
                error = InvalidAction(f"{action} is not supported by the local Elastic Beanstalk endpoint (see docs/local-aws-elasticbeanstalk.md).")
                status, headers, body = self.serialized(ActionResult(error))
                headers, body = self._enrich_response(headers, body)
                return status, headers, body
            return super().call_action()

    def _enrich_response(self, headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:  # type: ignore[override]
        # Not moto's: its greedy <RequestId> substitution would swallow the
        # RequestId elements of DescribeEvents results.
        if "status" in headers:
            headers["status"] = str(headers["status"])
        headers["x-amzn-requestid"] = self.request_id
        if isinstance(body, str):
            body = _RESPONSE_REQUEST_ID.sub(f"<RequestId>{self.request_id}</RequestId>", body)
        return headers, body

    # -- parameter helpers -------------------------------------------------------------------------------
    def _tags(self, name: str = "Tags") -> dict[str, str]:
        return {tag["Key"]: tag.get("Value", "") for tag in self._get_param(name, [])}

    def _page(self, items: list[Any]) -> tuple[list[Any], str | None]:
        return paginate(items, self._get_param("MaxRecords"), self._get_param("NextToken"))

    def _env_request(self) -> EnvironmentRequest:
        get = self._get_param
        return EnvironmentRequest(
            application_name=get("ApplicationName"), environment_name=get("EnvironmentName"), environment_id=get("EnvironmentId"),
            cname_prefix=get("CNAMEPrefix"), description=get("Description"), tier=get("Tier"), tags=self._tags(),
            version_label=get("VersionLabel"), template_name=get("TemplateName"), solution_stack=get("SolutionStackName"),
            platform_arn=get("PlatformArn"), option_settings=get("OptionSettings", []), options_to_remove=get("OptionsToRemove", []),
        )  # fmt: skip

    def _target(self) -> tuple[str | None, str | None]:
        return self._get_param("EnvironmentName"), self._get_param("EnvironmentId")

    # -- applications ---------------------------------------------------------------------------------------
    def create_application(self) -> ActionResult:
        app = self.backend.create_application(
            self._get_param("ApplicationName"), self._get_param("Description"), self._tags(), self._get_param("ResourceLifecycleConfig")
        )
        return ActionResult({"Application": app.to_api()})

    def describe_applications(self) -> ActionResult:
        apps = self.backend.describe_applications(self._get_param("ApplicationNames", []))
        return ActionResult({"Applications": [app.to_api() for app in apps]})

    def update_application(self) -> ActionResult:
        app = self.backend.update_application(self._get_param("ApplicationName"), self._get_param("Description"))
        return ActionResult({"Application": app.to_api()})

    def update_application_resource_lifecycle(self) -> ActionResult:
        app = self.backend.update_application_resource_lifecycle(self._get_param("ApplicationName"), self._get_param("ResourceLifecycleConfig", {}))
        return ActionResult({"ApplicationName": app.name, "ResourceLifecycleConfig": app.lifecycle})

    def delete_application(self) -> ActionResult:
        self.backend.delete_application(self._get_param("ApplicationName"), bool(self._get_param("TerminateEnvByForce", False)))
        return EmptyResult()

    # -- application versions ----------------------------------------------------------------------------------
    def create_application_version(self) -> ActionResult:
        get = self._get_param
        request = VersionRequest(
            get("ApplicationName"), get("VersionLabel"), get("Description"), get("SourceBundle"), get("SourceBuildInformation"),
            bool(get("AutoCreateApplication", False)), bool(get("Process", False)), self._tags(),
        )  # fmt: skip
        return ActionResult({"ApplicationVersion": self.backend.create_application_version(request).to_api()})

    def describe_application_versions(self) -> ActionResult:
        versions = self.backend.describe_application_versions(self._get_param("ApplicationName"), self._get_param("VersionLabels", []))
        page, token = self._page([v.to_api() for v in versions])
        return ActionResult({"ApplicationVersions": page, "NextToken": token})

    def update_application_version(self) -> ActionResult:
        version = self.backend.update_application_version(self._get_param("ApplicationName"), self._get_param("VersionLabel"), self._get_param("Description"))
        return ActionResult({"ApplicationVersion": version.to_api()})

    def delete_application_version(self) -> ActionResult:
        self.backend.delete_application_version(
            self._get_param("ApplicationName"), self._get_param("VersionLabel"), bool(self._get_param("DeleteSourceBundle", False))
        )
        return EmptyResult()

    # -- environments -------------------------------------------------------------------------------------------------
    def check_dns_availability(self) -> ActionResult:
        available, cname = self.backend.check_dns_availability(self._get_param("CNAMEPrefix", ""))
        return ActionResult({"Available": available, "FullyQualifiedCNAME": cname})

    def create_environment(self) -> ActionResult:
        return ActionResult(self.backend.create_environment(self._env_request()).to_api())

    def update_environment(self) -> ActionResult:
        return ActionResult(self.backend.update_environment(self._env_request()).to_api())

    def describe_environments(self) -> ActionResult:
        include = self._get_param("IncludeDeleted")
        flt = EnvironmentFilter(
            application_name=self._get_param("ApplicationName"),
            version_label=self._get_param("VersionLabel"),
            environment_ids=self._get_param("EnvironmentIds", []),
            environment_names=self._get_param("EnvironmentNames", []),
            include_deleted=True if include is None else bool(include),
            deleted_back_to=_utc(self._get_param("IncludedDeletedBackTo")),
        )
        page, token = self._page([env.to_api() for env in self.backend.describe_environments(flt)])
        return ActionResult({"Environments": page, "NextToken": token})

    def terminate_environment(self) -> ActionResult:
        resources = self._get_param("TerminateResources")
        env = self.backend.terminate_environment(*self._target(), terminate_resources=True if resources is None else bool(resources))
        return ActionResult(env.to_api())

    def restart_app_server(self) -> ActionResult:
        self.backend.restart_app_server(*self._target())
        return EmptyResult()

    def rebuild_environment(self) -> ActionResult:
        self.backend.rebuild_environment(*self._target())
        return EmptyResult()

    def swap_environment_cnames(self) -> ActionResult:
        source = (self._get_param("SourceEnvironmentName"), self._get_param("SourceEnvironmentId"))
        destination = (self._get_param("DestinationEnvironmentName"), self._get_param("DestinationEnvironmentId"))
        self.backend.swap_environment_cnames(source, destination)
        return EmptyResult()

    # moto derives the method name with camelcase_to_underscores("SwapEnvironmentCNAMEs").
    swap_environment_cnam_es = swap_environment_cnames

    def describe_environment_resources(self) -> ActionResult:
        return ActionResult({"EnvironmentResources": self.backend.describe_environment_resources(*self._target())})

    def describe_environment_health(self) -> ActionResult:
        return ActionResult(self.backend.describe_environment_health(*self._target(), self._get_param("AttributeNames", [])))

    # -- configuration ----------------------------------------------------------------------------------------------------
    def describe_configuration_settings(self) -> ActionResult:
        settings = self.backend.configuration_settings(self._get_param("ApplicationName"), self._get_param("EnvironmentName"), self._get_param("TemplateName"))
        return ActionResult({"ConfigurationSettings": [settings]})

    def describe_configuration_options(self) -> ActionResult:
        get = self._get_param
        result = self.backend.configuration_options(
            get("ApplicationName"), get("EnvironmentName"),
            template=get("TemplateName"), stack=get("SolutionStackName"), platform_arn=get("PlatformArn"), wanted=get("Options", []),
        )  # fmt: skip
        return ActionResult(result)

    def validate_configuration_settings(self) -> ActionResult:
        messages = self.backend.validate_configuration_settings(
            self._get_param("ApplicationName"), self._get_param("EnvironmentName"), self._get_param("TemplateName"), self._get_param("OptionSettings", [])
        )
        return ActionResult({"Messages": messages})

    # -- events ---------------------------------------------------------------------------------------------------------------
    def describe_events(self) -> ActionResult:
        query = EventQuery(
            application_name=self._get_param("ApplicationName"),
            environment_name=self._get_param("EnvironmentName"),
            environment_id=self._get_param("EnvironmentId"),
            version_label=self._get_param("VersionLabel"),
            request_id=self._get_param("RequestId"),
            platform_arn=self._get_param("PlatformArn"),
            severity=self._get_param("Severity"),
            start=_utc(self._get_param("StartTime")),
            end=_utc(self._get_param("EndTime")),
        )
        page, token = self._page(self.backend.describe_events(query))
        return ActionResult({"Events": page, "NextToken": token})

    # -- tags ------------------------------------------------------------------------------------------------------------------
    def update_tags_for_resource(self) -> ActionResult:
        self.backend.update_tags(self._get_param("ResourceArn"), self._tags("TagsToAdd"), self._get_param("TagsToRemove", []))
        return EmptyResult()

    def list_tags_for_resource(self) -> ActionResult:
        resource_arn = self._get_param("ResourceArn")
        tags = self.backend.list_tags(resource_arn)
        return ActionResult({"ResourceArn": resource_arn, "ResourceTags": [{"Key": k, "Value": v} for k, v in tags.items()]})


# The actions this module answers (checked at install: each must resolve to a method here).
ACTIONS = (
    "CreateApplication", "DescribeApplications", "UpdateApplication", "UpdateApplicationResourceLifecycle", "DeleteApplication",
    "CreateApplicationVersion", "DescribeApplicationVersions", "UpdateApplicationVersion", "DeleteApplicationVersion",
    "CheckDNSAvailability", "CreateEnvironment", "UpdateEnvironment", "DescribeEnvironments", "TerminateEnvironment",
    "RestartAppServer", "RebuildEnvironment", "SwapEnvironmentCNAMEs", "DescribeEnvironmentResources", "DescribeEnvironmentHealth",
    "DescribeConfigurationSettings", "DescribeConfigurationOptions", "ValidateConfigurationSettings", "DescribeEvents",
    "UpdateTagsForResource", "ListTagsForResource", "ListAvailableSolutionStacks",
)  # fmt: skip
