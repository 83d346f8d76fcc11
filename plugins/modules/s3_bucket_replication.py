#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: s3_bucket_replication
short_description: Set or remove the replication configuration of an S3 bucket
version_added: 0.1.0
description:
  - Sets the replication configuration of an existing, versioned S3 bucket (the IAM role S3 replicates with and the
    rules, written as in the S3 C(PutBucketReplication) API), or removes it.
  - Neither amazon.aws nor community.aws manages S3 replication.
  - Rules are matched by C(ID). A rule is up to date when every key given has the same value in the live rule (keys S3
    adds are ignored); a C(Filter) with an empty C(Prefix) and an empty C(Filter) both mean the whole bucket. The
    configuration is written (one C(PutBucketReplication) call, which replaces it whole) only when the role or a rule
    differs, or a live rule is not given.
  - S3 refuses replication from or to a bucket without versioning; the module says so for the source bucket before
    writing anything. It does not make or change the destination bucket.
options:
  bucket:
    description: Name of the source bucket.
    type: str
    required: true
  role_arn:
    description: ARN of the IAM role S3 assumes to replicate. Required with O(state=present).
    type: str
  rules:
    description:
      - The replication rules, each a C(ReplicationRule) of the S3 API (C(ID), C(Priority), C(Status), C(Filter),
        C(DeleteMarkerReplication), C(Destination), C(SourceSelectionCriteria), ...). C(ID) and C(Destination.Bucket) are
        required in each. Required with O(state=present).
    type: list
    elements: dict
  state:
    description: V(present) sets the configuration, V(absent) removes it (the replicas already made stay).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
author:
  - Fastier platform team (@fastier)
"""

EXAMPLES = r"""
- name: Replicate the backups bucket to the DR region
  fastier.platform.s3_bucket_replication:
    bucket: fastier-production-backups-123456789012
    role_arn: arn:aws:iam::123456789012:role/fastier-production-backup-replication
    rules:
      - ID: fastier-production-dr
        Priority: 1
        Status: Enabled
        Filter: {Prefix: ""}
        DeleteMarkerReplication: {Status: Disabled}
        Destination:
          Bucket: arn:aws:s3:::fastier-production-backups-dr-123456789012
          StorageClass: STANDARD_IA

- name: Stop replicating
  fastier.platform.s3_bucket_replication:
    bucket: fastier-production-backups-123456789012
    state: absent
"""

RETURN = r"""
bucket:
  description: Name of the source bucket.
  returned: always
  type: str
  sample: fastier-production-backups-123456789012
replication_configuration:
  description: The replication configuration after the run, as S3 describes it (C(Role), C(Rules)); empty dict when there
    is none.
  returned: always
  type: dict
  sample: {"Role": "arn:aws:iam::123456789012:role/fastier-production-backup-replication", "Rules": []}
"""

import copy

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    botocore = None

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.fastier.platform.plugins.module_utils.aws_compare import is_subset
from ansible_collections.fastier.platform.plugins.module_utils.base import FastierAWSModule


def normalized_rule(rule):
    """The rule with the whole-bucket filter written one way (S3 answers either {} or {"Prefix": ""})."""
    rule = copy.deepcopy(rule)
    if isinstance(rule.get("Filter"), dict) and rule["Filter"].get("Prefix") == "":
        rule["Filter"] = {key: value for key, value in rule["Filter"].items() if key != "Prefix"}
    return rule


def configuration_up_to_date(role_arn, rules, live):
    """True when the live configuration has this role and exactly these rules (by ID), each a subset of the live one."""
    if not live or live.get("Role") != role_arn:
        return False
    live_rules = {rule.get("ID"): normalized_rule(rule) for rule in live.get("Rules", [])}
    if set(live_rules) != set(rule["ID"] for rule in rules):
        return False
    return all(is_subset(normalized_rule(rule), live_rules[rule["ID"]]) for rule in rules)


def current_configuration(module, client, bucket):
    try:
        found = client.get_bucket_replication(Bucket=bucket)
    except is_boto3_error_code("ReplicationConfigurationNotFoundError"):
        return {}
    except is_boto3_error_code("NoSuchBucket"):  # pylint: disable=duplicate-except
        module.fail_json(msg=f"Bucket {bucket} does not exist: make it first (it must have versioning enabled)")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Could not read the replication configuration of bucket {bucket}")
    return found.get("ReplicationConfiguration", {}) or {}


def require_versioning(module, client, bucket):
    try:
        status = client.get_bucket_versioning(Bucket=bucket).get("Status", "")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Could not read the versioning of bucket {bucket}")
    if status != "Enabled":
        module.fail_json(
            msg=f"Bucket {bucket} has versioning {status or 'never enabled'}: S3 replicates only from a bucket with versioning Enabled; enable it first."
        )


def main():
    module = FastierAWSModule(
        argument_spec=dict(
            bucket=dict(type="str", required=True),
            role_arn=dict(type="str"),
            rules=dict(type="list", elements="dict"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["role_arn", "rules"])],
        supports_check_mode=True,
    )
    bucket = module.params["bucket"]
    client = module.client("s3")
    before = current_configuration(module, client, bucket)

    if module.params["state"] == "absent":
        if not before:
            module.exit_with_diff(False, {}, {}, bucket=bucket, replication_configuration={})
        if not module.check_mode:
            try:
                client.delete_bucket_replication(Bucket=bucket)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                module.fail_json_aws(e, msg=f"Could not remove the replication configuration of bucket {bucket}")
        module.exit_with_diff(True, before, {}, bucket=bucket, replication_configuration={})

    role_arn = module.params["role_arn"]
    rules = copy.deepcopy(module.params["rules"])
    for rule in rules:
        if not rule.get("ID") or not (rule.get("Destination") or {}).get("Bucket"):
            module.fail_json(msg=f"Every replication rule of bucket {bucket} needs an ID and a Destination.Bucket (got {rule})")
    ids = [rule["ID"] for rule in rules]
    if len(set(ids)) != len(ids):
        module.fail_json(msg=f"Replication rule IDs of bucket {bucket} must be unique (got {ids})")
    wanted = dict(Role=role_arn, Rules=rules)
    if configuration_up_to_date(role_arn, rules, before):
        module.exit_with_diff(False, before, before, bucket=bucket, replication_configuration=before)
    require_versioning(module, client, bucket)
    if module.check_mode:
        module.exit_with_diff(True, before, wanted, bucket=bucket, replication_configuration=wanted)
    try:
        client.put_bucket_replication(Bucket=bucket, ReplicationConfiguration=wanted)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(
            e,
            msg=f"Could not set the replication configuration of bucket {bucket} (the destination bucket must exist and have versioning enabled)",
        )
    after = current_configuration(module, client, bucket)
    module.exit_with_diff(True, before, after, bucket=bucket, replication_configuration=after)


if __name__ == "__main__":
    main()
