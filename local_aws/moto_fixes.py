"""Fixes of moto 5.2 deviations from the AWS APIs that the edge/ops roles hit.

Proposed as local_aws/moto_fixes.py, installed like the other extensions
(EXTENSIONS in local_aws/server.py). Each fix follows the API reference:

1. CloudFront: an origin keeps OriginAccessControlId and S3OriginConfig
   (moto drops both, so a distribution never shows its OAC).
2. CodeBuild: source/artifacts of type CODEPIPELINE or NO_SOURCE/NO_ARTIFACTS
   need no location (moto rejects CreateProject without one), and
   UpdateProject exists (moto has none).
3. KMS: ScheduleKeyDeletion/CancelKeyDeletion accept a key ARN (moto answers
   500) and answer with the key ARN as ``KeyId``.
4. RDS: a DB instance created without DBSubnetGroupName is in the ``default``
   DB subnet group of the default VPC, as on AWS (made from the default VPC's
   subnets on first use), so that DescribeDBInstances always has
   ``DBSubnetGroup`` (moto leaves it out, and amazon.aws.rds_instance fails
   with KeyError 'DBSubnetGroup'). Its place would be local_aws/rds
   (moto_rds.py), which hooks moto's RDS for the PostgreSQL servers.
"""

from __future__ import annotations

from typing import Any

_installed: set[str] = set()


def install(_settings: Any = None) -> None:
    if _installed:
        return
    _installed.add("moto_fixes")
    _cloudfront()
    _codebuild()
    _kms()
    _rds()


def _cloudfront() -> None:
    from moto.cloudfront import models

    original = models.Origin.__init__

    def __init__(self: Any, origin: dict[str, Any]) -> None:
        original(self, origin)
        self.origin_access_control_id = origin.get("OriginAccessControlId") or ""
        if "S3OriginConfig" in origin:
            self.s3_origin_config = {"OriginAccessIdentity": origin["S3OriginConfig"].get("OriginAccessIdentity") or ""}

    models.Origin.__init__ = __init__


def _codebuild() -> None:
    from moto.codebuild import responses
    from moto.core.responses import ActionResult

    validate_source = responses._validate_required_params_source
    validate_artifacts = responses._validate_required_params_artifacts

    def source(source: dict[str, Any]) -> None:
        if source.get("type") in ("CODEPIPELINE", "NO_SOURCE") and not source.get("location"):
            return
        validate_source(source)

    def artifacts(artifacts: dict[str, Any]) -> None:
        if artifacts.get("type") == "CODEPIPELINE" and not artifacts.get("location"):
            return
        validate_artifacts(artifacts)

    responses._validate_required_params_source = source
    responses._validate_required_params_artifacts = artifacts

    # UpdateProject parameters kept as given (the same keys as CreateProject's
    # in the project description); badgeEnabled becomes badge.badgeEnabled.
    fields = (
        "description",
        "source",
        "secondarySources",
        "sourceVersion",
        "artifacts",
        "secondaryArtifacts",
        "cache",
        "environment",
        "serviceRole",
        "timeoutInMinutes",
        "queuedTimeoutInMinutes",
        "encryptionKey",
        "tags",
        "vpcConfig",
        "logsConfig",
        "concurrentBuildLimit",
    )

    def update_project(self: Any) -> ActionResult:
        from moto.codebuild.exceptions import ResourceNotFoundException
        from moto.core.utils import unix_time

        name = self._get_param("name")
        project = self.codebuild_backend.codebuild_projects.get(name)
        if project is None:
            raise ResourceNotFoundException(f"Project cannot be found: {name}")
        if self._get_param("source") is not None:
            source(self._get_param("source"))
        if self._get_param("artifacts") is not None:
            artifacts(self._get_param("artifacts"))
        for key in fields:
            value = self._get_param(key)
            if value is not None:
                project.project_metadata[key] = value
        if self._get_param("badgeEnabled") is not None:
            project.project_metadata["badge"] = {"badgeEnabled": bool(self._get_param("badgeEnabled"))}
        project.project_metadata["lastModified"] = unix_time()
        return ActionResult({"project": project.project_metadata})

    responses.CodeBuildResponse.update_project = update_project


def _kms() -> None:
    """KeyId of ScheduleKeyDeletion/CancelKeyDeletion: "the key ID or key ARN"; the response's KeyId is the key ARN."""
    import json

    from moto.kms import models, responses

    def key_id_of(key_id: str) -> str:
        # arn:aws:kms:<region>:<account>:key/<key id> -> <key id>; anything else as given
        if key_id.startswith("arn:") and ":key/" in key_id:
            return key_id.split(":key/", 1)[1]
        return key_id

    for name in ("schedule_key_deletion", "cancel_key_deletion"):
        backend_method = getattr(models.KmsBackend, name)

        def backend(self: Any, key_id: str, *args: Any, __original: Any = backend_method) -> Any:
            return __original(self, key_id_of(key_id), *args)

        setattr(models.KmsBackend, name, backend)

        response_method = getattr(responses.KmsResponse, name)

        def response(self: Any, __original: Any = response_method) -> str:
            body = json.loads(__original(self))
            key = self.kms_backend.keys.get(key_id_of(body.get("KeyId", "")))
            if key is not None:
                body["KeyId"] = key.arn
            return json.dumps(body)

        setattr(responses.KmsResponse, name, response)


DEFAULT_SUBNET_GROUP = "default"


def _rds() -> None:
    """CreateDBInstance without DBSubnetGroupName: the ``default`` DB subnet group of the default VPC.

    AWS: "If you don't specify a DB subnet group, RDS uses the default DB
    subnet group" (named ``default``, made of the default VPC's subnets, made
    by RDS when first needed). Without a default VPC moto's behaviour stays.
    """
    from moto.rds import models

    prop = models.DBInstance.__dict__["db_subnet_group_name"]
    if isinstance(prop, _DefaultSubnetGroupName):
        return
    setter = prop.fset

    def db_subnet_group_name(self: Any, value: str | None) -> None:
        # An Aurora instance is in its cluster's subnet group; left as moto has it.
        if value is None and not isinstance(self, models.DBInstanceClustered):
            value = default_subnet_group(self.backend)
        setter(self, value)

    models.DBInstance.db_subnet_group_name = _DefaultSubnetGroupName(prop.fget, db_subnet_group_name)


class _DefaultSubnetGroupName(property):
    """``DBInstance.db_subnet_group_name`` whose setter turns None into the default group."""


def default_subnet_group(backend: Any) -> str | None:
    """The name of the ``default`` DB subnet group, made from the default VPC's subnets; None without a default VPC."""
    from moto.ec2.models import ec2_backends

    if DEFAULT_SUBNET_GROUP in backend.subnet_groups:
        return DEFAULT_SUBNET_GROUP
    ec2 = ec2_backends[backend.account_id][backend.region_name]
    vpc = ec2.get_default_vpc()
    if vpc is None:
        return None
    subnets = ec2.describe_subnets(filters={"vpc-id": [vpc.id]})
    if not subnets:
        return None
    backend.create_subnet_group(DEFAULT_SUBNET_GROUP, "default", sorted(subnets, key=lambda subnet: subnet.availability_zone), [])
    return DEFAULT_SUBNET_GROUP
