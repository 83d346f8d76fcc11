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
5. S3: a bucket policy sees every request to the local endpoint as one that
   arrived over TLS 1.2 (``aws:SecureTransport`` true, ``s3:TlsVersion``
   1.2), because the plain-HTTP loopback endpoint stands in for AWS's HTTPS
   one. moto cannot evaluate ``Bool`` or ``Numeric*`` conditions and applies
   such a statement unconditionally, so the usual TLS-only policy ("Deny
   s3:* when aws:SecureTransport is false") denied every object request.
   Other condition keys keep moto's behaviour (docs/local-aws.md).
6. AWS Backup: backup selections exist (CreateBackupSelection,
   GetBackupSelection, ListBackupSelections, DeleteBackupSelection: moto
   answers 500 "not implemented"), and so does UpdateBackupPlan (a new
   VersionId, new RuleIds). DeleteBackupPlan refuses a plan that still has
   selections (InvalidRequestException, as AWS); the name of a deleted plan
   can be used again; a deleted plan has no selections to list or create.
   DescribeBackupVault answers NumberOfRecoveryPoints (moto keeps the count
   under another attribute name, so its answer never had it; no backup job
   runs locally, so it is 0) and DeleteBackupVault refuses an unknown vault
   (ResourceNotFoundException; moto said nothing).
7. S3: GetBucketReplication answers each rule as PutBucketReplication stored
   it (moto answered Filter {"Prefix": ""} and DeleteMarkerReplication
   Disabled whatever was put, and dropped SourceSelectionCriteria,
   ExistingObjectReplication and a rule's Prefix), and PutBucketReplication
   refuses a destination bucket that does not exist or has no versioning
   (InvalidRequest, as S3 does; moto checked the source bucket only).
8. Route 53: a change batch is atomic, as the API reference says ("all or
   none"): moto applied the changes one by one and left the first ones in
   place when a later one failed, and a reader between two changes saw half
   a batch (the front door, local_aws/frontdoor.py, reads the zones under
   :data:`ROUTE53_LOCK`).
9. CloudFormation: CreateChangeSet without ChangeSetType is an UPDATE of
   the existing stack, as the API reference says (the default is UPDATE;
   CREATE must be asked for). moto took it as a CREATE: a change set of an
   unchanged stack listed every resource as new (a check-mode run of
   amazon.aws.cloudformation reported a change), and it added a second stack
   record of the same name. And a change set that changes nothing is made,
   with status FAILED and the reason "didn't contain changes", as on AWS:
   moto refused it with UpdateStack's "No updates are to be performed."
"""

from __future__ import annotations

import threading
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
    _s3()
    _backup()
    _s3_replication()
    _route53()
    _cloudformation()


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


# -- 5. S3 bucket policies: the local endpoint is the TLS endpoint ---------------------------------
# What a request to the local endpoint counts as for a bucket policy. It is plain
# HTTP on loopback standing in for AWS's HTTPS endpoint; TLS 1.2 is the oldest
# version AWS endpoints (and botocore) accept, so a policy that admits it
# admits every client AWS admits.
TRANSPORT_CONTEXT = {"aws:securetransport": "true", "s3:tlsversion": "1.2"}

_NUMERIC = {
    "NumericEquals": lambda actual, expected: actual == expected,
    "NumericNotEquals": lambda actual, expected: actual != expected,
    "NumericLessThan": lambda actual, expected: actual < expected,
    "NumericLessThanEquals": lambda actual, expected: actual <= expected,
    "NumericGreaterThan": lambda actual, expected: actual > expected,
    "NumericGreaterThanEquals": lambda actual, expected: actual >= expected,
}


def _transport_condition_met(operator: str, key: str, expected: Any) -> bool | None:
    """Whether ``operator: {key: expected}`` holds for the local endpoint; None: not ours to decide.

    Only the transport keys (``aws:SecureTransport``, ``s3:TlsVersion``) with
    the ``Bool``, ``Numeric*`` and ``Null`` operators (and their ``IfExists``
    forms) are decided here. Several expected values: any one matching is
    enough, except for the negated ``NumericNotEquals`` where none may match.
    """
    actual = TRANSPORT_CONTEXT.get(key.lower())
    if actual is None or ":" in operator:  # not a transport key, or ForAnyValue:/ForAllValues: (multivalued keys)
        return None
    values = [str(value) for value in (expected if isinstance(expected, list) else [expected])]
    base = operator.removesuffix("IfExists")
    if base == "Null":  # "true": the key is absent; both keys are always present here
        return any(value.lower() == "false" for value in values)
    if base == "Bool" and key.lower() == "aws:securetransport":
        return any(value.lower() == actual for value in values)
    if base in _NUMERIC and key.lower() == "s3:tlsversion":
        try:
            numbers = [float(value) for value in values]
        except ValueError:
            return False  # AWS: a value of the wrong type never matches
        compare = _NUMERIC[base]
        if base == "NumericNotEquals":
            return all(compare(float(actual), number) for number in numbers)
        return any(compare(float(actual), number) for number in numbers)
    return None


def over_tls(policy: dict[str, Any]) -> dict[str, Any]:
    """The bucket policy as it applies to a request over TLS.

    A statement with a transport condition that does not hold does not apply
    (it is left out); a transport condition that holds is removed, so moto
    evaluates the statement's other conditions as it always has.
    """
    statements = policy.get("Statement")
    if statements is None:
        return policy
    applying = []
    for statement in statements if isinstance(statements, list) else [statements]:
        conditions = statement.get("Condition") if isinstance(statement, dict) else None
        if not isinstance(conditions, dict):
            applying.append(statement)
            continue
        kept: dict[str, Any] = {}
        holds = True
        for operator, keys in conditions.items():
            if not isinstance(keys, dict):
                kept[operator] = keys
                continue
            rest = {}
            for key, expected in keys.items():
                met = _transport_condition_met(operator, key, expected)
                if met is None:
                    rest[key] = expected
                elif not met:
                    holds = False
            if rest:
                kept[operator] = rest
        if not holds:
            continue
        rewritten = {name: value for name, value in statement.items() if name != "Condition"}
        if kept:
            rewritten["Condition"] = kept
        applying.append(rewritten)
    return {**policy, "Statement": applying}


def _s3() -> None:
    """Object requests are checked against the bucket policy as requests over TLS (see TRANSPORT_CONTEXT)."""
    import json

    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3 import models

    original = models.FakeBucket.get_permission
    if getattr(original, "__local_aws_over_tls__", False):
        return

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return original(self, action, resource)
        try:
            policy = json.loads(self.policy)
        except ValueError:
            return original(self, action, resource)
        if not isinstance(policy, dict):
            return original(self, action, resource)
        policy = over_tls(policy)
        if not policy.get("Statement"):
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)

    get_permission.__local_aws_over_tls__ = True  # type: ignore[attr-defined]
    models.FakeBucket.get_permission = get_permission


# -- 6. AWS Backup: selections, plan updates, vault recovery-point counts --------------------------
def _backup() -> None:
    import json

    from moto.backup import models, responses
    from moto.backup.exceptions import InvalidRequestException, ResourceNotFoundException
    from moto.core.utils import unix_time
    from moto.moto_api._internal import mock_random

    # DescribeBackupVault is serialized from the Vault's attributes (botocore's output shape):
    # NumberOfRecoveryPoints reads number_of_recovery_points.
    models.Vault.number_of_recovery_points = property(lambda self: self.num_of_recovery_points)

    original_delete_vault = models.BackupBackend.delete_backup_vault

    def delete_backup_vault(self: Any, backup_vault_name: str) -> None:
        self.describe_backup_vault(backup_vault_name)  # ResourceNotFoundException for an unknown vault
        original_delete_vault(self, backup_vault_name)

    models.BackupBackend.delete_backup_vault = delete_backup_vault

    def live_plan(backend: Any, plan_id: str) -> Any:
        plan = backend.plans.get(plan_id)
        if plan is None or plan.deletion_date is not None:
            raise ResourceNotFoundException(msg=f"Failed reading Backup plan with provided version: {plan_id}")
        return plan

    def selections_of(plan: Any) -> dict[str, dict[str, Any]]:
        if not hasattr(plan, "local_aws_selections"):
            plan.local_aws_selections = {}
        return plan.local_aws_selections

    def ids_from_path(path: str) -> tuple[str, str]:
        # /backup/plans/{backupPlanId}[/selections/[{selectionId}]]
        rest = path.split("/backup/plans/", 1)[1].split("?", 1)[0]
        parts = [part for part in rest.split("/") if part]
        return parts[0], (parts[2] if len(parts) > 2 else "")

    original_create_plan = models.BackupBackend.create_backup_plan

    def create_backup_plan(self: Any, backup_plan: dict[str, Any], backup_plan_tags: dict[str, str], creator_request_id: str) -> Any:
        # Only the live plans count for "a plan with this name exists" (moto compared with deleted ones too).
        deleted = {pid: plan for pid, plan in self.plans.items() if plan.deletion_date is not None}
        self.plans = {pid: plan for pid, plan in self.plans.items() if plan.deletion_date is None}
        try:
            return original_create_plan(self, backup_plan, backup_plan_tags, creator_request_id)
        finally:
            self.plans.update(deleted)

    models.BackupBackend.create_backup_plan = create_backup_plan

    original_delete_plan = models.BackupBackend.delete_backup_plan

    def delete_backup_plan(self: Any, backup_plan_id: str) -> Any:
        plan = live_plan(self, backup_plan_id)
        if selections_of(plan):
            raise InvalidRequestException(msg="Related backup plan selections must be deleted prior to backup plan deletion")
        return original_delete_plan(self, backup_plan_id)

    models.BackupBackend.delete_backup_plan = delete_backup_plan

    def update_backup_plan(self: Any) -> str:
        params = json.loads(self.body)
        plan = live_plan(self.backup_backend, ids_from_path(self.path)[0])
        body = params.get("BackupPlan") or {}
        if not body.get("BackupPlanName") or not body.get("Rules"):
            raise InvalidRequestException(msg="BackupPlan needs a BackupPlanName and Rules")
        for rule in body["Rules"]:
            # The defaults CreateBackupPlan applies (moto's Plan), and a RuleId per rule.
            rule.setdefault("ScheduleExpression", "cron(0 5 ? * * *)")
            rule.setdefault("StartWindowMinutes", 480)
            rule.setdefault("CompletionWindowMinutes", 10080)
            rule.setdefault("ScheduleExpressionTimezone", "Etc/UTC")
            rule["RuleId"] = str(mock_random.uuid4())
        plan.backup_plan = body
        plan.advanced_backup_settings = body.get("AdvancedBackupSettings") or []
        plan.version_id = mock_random.get_random_string(length=48)
        return json.dumps(plan.to_dict())

    def create_backup_selection(self: Any) -> str:
        params = json.loads(self.body)
        plan = live_plan(self.backup_backend, ids_from_path(self.path)[0])
        selection = dict(params.get("BackupSelection") or {})
        for key in ("SelectionName", "IamRoleArn"):
            if not selection.get(key):
                raise InvalidRequestException(msg=f"BackupSelection.{key} is required")
        if any(s["BackupSelection"]["SelectionName"] == selection["SelectionName"] for s in selections_of(plan).values()):
            raise InvalidRequestException(msg=f"A selection named {selection['SelectionName']} already exists in this plan")
        # GetBackupSelection answers every list, empty when not given, as AWS does.
        selection.setdefault("Resources", [])
        selection.setdefault("NotResources", [])
        selection.setdefault("ListOfTags", [])
        conditions = selection.get("Conditions") or {}
        selection["Conditions"] = {key: conditions.get(key, []) for key in ("StringEquals", "StringLike", "StringNotEquals", "StringNotLike")}
        selection_id = str(mock_random.uuid4())
        stored = {
            "SelectionId": selection_id,
            "BackupPlanId": plan.backup_plan_id,
            "CreationDate": unix_time(),
            "CreatorRequestId": params.get("CreatorRequestId") or str(mock_random.uuid4()),
            "BackupSelection": selection,
        }
        selections_of(plan)[selection_id] = stored
        return json.dumps({"SelectionId": selection_id, "BackupPlanId": plan.backup_plan_id, "CreationDate": stored["CreationDate"]})

    def selection_of(self: Any) -> tuple[Any, dict[str, Any]]:
        plan_id, selection_id = ids_from_path(self.path)
        plan = live_plan(self.backup_backend, plan_id)
        found = selections_of(plan).get(selection_id)
        if found is None:
            raise ResourceNotFoundException(msg=f"Failed reading backup selection {selection_id} of plan {plan_id}")
        return plan, found

    def get_backup_selection(self: Any) -> str:
        return json.dumps(selection_of(self)[1])

    def delete_backup_selection(self: Any) -> str:
        plan, found = selection_of(self)
        del selections_of(plan)[found["SelectionId"]]
        return "{}"

    def list_backup_selections(self: Any) -> str:
        plan = live_plan(self.backup_backend, ids_from_path(self.path)[0])
        rows = [
            {
                "SelectionId": s["SelectionId"],
                "SelectionName": s["BackupSelection"]["SelectionName"],
                "BackupPlanId": s["BackupPlanId"],
                "CreationDate": s["CreationDate"],
                "CreatorRequestId": s["CreatorRequestId"],
                "IamRoleArn": s["BackupSelection"]["IamRoleArn"],
            }
            for s in selections_of(plan).values()
        ]
        return json.dumps({"BackupSelectionsList": rows})

    for method in (update_backup_plan, create_backup_selection, get_backup_selection, delete_backup_selection, list_backup_selections):
        setattr(responses.BackupResponse, method.__name__, method)


# -- 7. S3 replication: read back as stored; the destination must be versioned ---------------------
def _s3_replication() -> None:
    from moto.core.responses import ActionResult
    from moto.s3 import models, responses
    from moto.s3.exceptions import MissingBucket, ReplicationConfigurationNotFoundError, S3ClientError

    def as_list(value: Any) -> list[Any]:
        return value if isinstance(value, list) else [value]

    def get_bucket_replication(self: Any) -> Any:
        self.data["Action"] = "GetBucketReplication"
        replication = self.backend.get_bucket_replication(self.bucket_name)
        if not replication:
            raise ReplicationConfigurationNotFoundError(bucket_name=self.bucket_name)
        rules = []
        for rule in as_list(replication["Rule"]):
            out = {key: value for key, value in rule.items() if value is not None}
            if isinstance(out.get("Filter"), dict) and out["Filter"].get("Prefix", "") is None:
                out["Filter"] = {**out["Filter"], "Prefix": ""}  # <Prefix></Prefix> parses as None
            rules.append(out)
        return self.serialized(ActionResult({"ReplicationConfiguration": {"Role": replication["Role"], "Rules": rules}}))

    responses.S3Response.get_bucket_replication = get_bucket_replication

    original_put = models.S3Backend.put_bucket_replication

    def put_bucket_replication(self: Any, bucket_name: str, replication: dict[str, Any]) -> None:
        for rule in as_list(replication.get("Rule") or []):
            target = str((rule.get("Destination") or {}).get("Bucket") or "").split(":::", 1)[-1]
            try:
                destination = self.get_bucket(target)
            except MissingBucket:
                raise S3ClientError("InvalidRequest", "Destination bucket must exist.") from None
            if destination.versioning_status != "Enabled":
                raise S3ClientError("InvalidRequest", "Destination bucket must have versioning enabled.")
        original_put(self, bucket_name, replication)

    models.S3Backend.put_bucket_replication = put_bucket_replication


# -- 8. Route 53: atomic change batches ----------------------------------------------------------
ROUTE53_LOCK = threading.RLock()  # held while a change batch is applied; readers of the zones take it too


def _route53() -> None:
    """ChangeResourceRecordSets: all changes of a batch or none, never half a batch to a reader."""
    import copy

    from moto.route53 import models

    original = models.Route53Backend.change_resource_record_sets
    if getattr(original, "__local_aws_atomic__", False):
        return

    def change_resource_record_sets(self: Any, zoneid: str, change_list: list[dict[str, Any]]) -> None:
        with ROUTE53_LOCK:
            zone = self.get_hosted_zone(zoneid)
            rrsets, journal = list(zone.rrsets), copy.copy(zone.rr_changes)
            try:
                original(self, zoneid, change_list)
            except Exception:
                zone.rrsets, zone.rr_changes = rrsets, journal
                raise

    change_resource_record_sets.__local_aws_atomic__ = True  # type: ignore[attr-defined]
    models.Route53Backend.change_resource_record_sets = change_resource_record_sets


def _cloudformation() -> None:
    """CreateChangeSet: ChangeSetType defaults to UPDATE; a change set without changes is made, FAILED."""
    from moto.cloudformation.responses import CloudFormationResponse

    original = CloudFormationResponse.create_change_set
    if getattr(original, "__local_aws_update_default__", False):
        return

    def create_change_set(self: Any) -> Any:
        get_param = self._get_param

        def with_update_default(name: str, if_none: Any = None) -> Any:
            return get_param(name, "UPDATE") if name == "ChangeSetType" else get_param(name, if_none)

        # The backend marks a change set without changes FAILED ("didn't contain changes"); the
        # UpdateStack check that raised instead does not apply to change sets.
        self._get_param = with_update_default
        self._validate_different_update = lambda *_args: None
        try:
            return original(self)
        finally:
            del self._get_param, self._validate_different_update

    create_change_set.__local_aws_update_default__ = True  # type: ignore[attr-defined]
    CloudFormationResponse.create_change_set = create_change_set
