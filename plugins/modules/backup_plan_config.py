#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: backup_plan_config
short_description: Manage an AWS Backup plan from its API configuration
version_added: 0.1.0
description:
  - Creates, updates or deletes an AWS Backup plan found by its name, with its rules written as in the AWS Backup
    C(CreateBackupPlan) API (CamelCase keys - C(RuleName), C(TargetBackupVaultName), C(ScheduleExpression),
    C(Lifecycle), C(CopyActions), ...).
  - Rules are matched by C(RuleName). A rule is up to date when every key given has the same value in the live rule
    (keys AWS Backup adds, such as C(RuleId), are ignored; a key left out of the live rule counts as its documented
    default, e.g. C(EnableContinuousBackup=false)); C(RecoveryPointTags), the C(Lifecycle) days and the C(CopyActions)
    (destination vaults and their lifecycles, in any order) must be equal. A rule given is added, a live rule not given
    is removed, with one C(UpdateBackupPlan) call, and only when something differs.
  - Why not C(amazon.aws.backup_plan) - in check mode it reports a change on every run for a plan with tags (it
    returns before comparing them), with O(tags) left out it removes every tag, and it compares the rules with the
    live ones as exact JSON, so a key AWS adds to its answer makes every run an update.
  - Deleting a plan that still has backup selections fails (an AWS rule); delete the selections first
    (C(amazon.aws.backup_selection)). Deleting a plan never touches recovery points.
options:
  name:
    description: Name of the plan (1 to 50 letters, digits, C(-), C(_) or C(.)). Plans are found by this name.
    type: str
    required: true
  rules:
    description:
      - The plan's rules, each a C(BackupRuleInput) of the AWS Backup API. C(RuleName) and C(TargetBackupVaultName) are
        required in each. Required with O(state=present).
    type: list
    elements: dict
  advanced_backup_settings:
    description: The plan's C(AdvancedBackupSettings) (Windows VSS for EC2), as in the API.
    type: list
    elements: dict
    default: []
  state:
    description: Whether the plan exists.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - amazon.aws.tags
author:
  - Fastier platform team (@fastier)
"""

EXAMPLES = r"""
- name: Daily backups kept 35 days, copied to the DR region
  fastier.platform.backup_plan_config:
    name: fastier-production-backup
    rules:
      - RuleName: daily
        TargetBackupVaultName: fastier-production-backup
        ScheduleExpression: cron(0 5 ? * * *)
        StartWindowMinutes: 60
        CompletionWindowMinutes: 1440
        Lifecycle: {DeleteAfterDays: 35}
        RecoveryPointTags: {Name: fastier-production-backup}
        CopyActions:
          - DestinationBackupVaultArn: arn:aws:backup:eu-central-1:123456789012:backup-vault:fastier-production-backup-dr
            Lifecycle: {DeleteAfterDays: 35}
    tags:
      Name: fastier-production-backup

- name: Delete the plan (its selections deleted first)
  fastier.platform.backup_plan_config:
    name: fastier-production-backup
    state: absent
"""

RETURN = r"""
backup_plan_id:
  description: Id of the plan (empty in check mode before it exists, and after deletion).
  returned: always
  type: str
  sample: 8c5ac7ad-8b0e-4b5a-9c6e-2f0b3f3f1c11
backup_plan_arn:
  description: ARN of the plan (empty in check mode before it exists, and after deletion).
  returned: always
  type: str
  sample: arn:aws:backup:eu-west-1:123456789012:backup-plan:8c5ac7ad-8b0e-4b5a-9c6e-2f0b3f3f1c11
version_id:
  description: Version of the plan body (each update makes a new one; empty when there is no plan).
  returned: always
  type: str
  sample: ZDFiNWU1ZWYtZjY0ZS00YTQ5LTgxNGItYWQzZDM3YmRhMDU5
backup_plan:
  description: The plan body as AWS Backup describes it (C(BackupPlanName), C(Rules) with their C(RuleId)s, ...); empty
    when there is no plan.
  returned: always
  type: dict
  sample: {"BackupPlanName": "fastier-production-backup", "Rules": []}
tags:
  description: The plan's tags after the run.
  returned: always
  type: dict
  sample: {"Name": "fastier-production-backup"}
"""

import copy

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    botocore = None

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.fastier.platform.plugins.module_utils.aws_compare import is_subset
from ansible_collections.fastier.platform.plugins.module_utils.aws_compare import sync_tags
from ansible_collections.fastier.platform.plugins.module_utils.backup import read_tags
from ansible_collections.fastier.platform.plugins.module_utils.base import TAG_OPTIONS
from ansible_collections.fastier.platform.plugins.module_utils.base import FastierAWSModule

# What AWS Backup applies when a rule leaves a key out (API reference, BackupRuleInput).
RULE_DEFAULTS = {
    "ScheduleExpression": "cron(0 5 ? * * *)",
    "ScheduleExpressionTimezone": "Etc/UTC",
    "StartWindowMinutes": 480,
    "CompletionWindowMinutes": 10080,
    "EnableContinuousBackup": False,
    "RecoveryPointTags": {},
    "CopyActions": [],
}
# Keys of a live rule that are not part of what is given.
RULE_READ_ONLY = ("RuleId",)


def effective_rule(rule):
    """A live rule with the documented default for every key it leaves out."""
    out = dict(RULE_DEFAULTS)
    out.update({key: value for key, value in rule.items() if key not in RULE_READ_ONLY})
    return out


def lifecycle_equal(wanted, live):
    """Lifecycles are equal when their retention and cold-storage days are (a key left out: none)."""
    wanted, live = wanted or {}, live or {}
    if any(wanted.get(key) != live.get(key) for key in ("DeleteAfterDays", "MoveToColdStorageAfterDays")):
        return False
    key = "OptInToArchiveForSupportedResources"
    if bool(wanted.get(key, False)) != bool(live.get(key, False)):
        return False
    rest = {k: v for k, v in wanted.items() if k not in ("DeleteAfterDays", "MoveToColdStorageAfterDays", key)}
    return is_subset(rest, live)


def copy_actions_equal(wanted, live):
    """The same destination vaults, each with the same lifecycle (order does not matter)."""
    wanted_by_vault = {action.get("DestinationBackupVaultArn"): action for action in wanted or []}
    live_by_vault = {action.get("DestinationBackupVaultArn"): action for action in live or []}
    if len(wanted_by_vault) != len(wanted or []) or set(wanted_by_vault) != set(live_by_vault):
        return False
    return all(lifecycle_equal(action.get("Lifecycle"), live_by_vault[vault].get("Lifecycle")) for vault, action in wanted_by_vault.items())


def rule_up_to_date(wanted, live):
    """A live rule matches the wanted one: tags, lifecycle and copies exactly, every other key given as a subset."""
    live = effective_rule(live)
    if (wanted.get("RecoveryPointTags") or {}) != (live.get("RecoveryPointTags") or {}):
        return False
    if not lifecycle_equal(wanted.get("Lifecycle"), live.get("Lifecycle")):
        return False
    if not copy_actions_equal(wanted.get("CopyActions"), live.get("CopyActions")):
        return False
    rest = {key: value for key, value in wanted.items() if key not in ("RecoveryPointTags", "Lifecycle", "CopyActions")}
    return is_subset(rest, live)


def plan_up_to_date(wanted_rules, wanted_settings, live_body):
    """True when the live plan body has exactly the wanted rules (by name) and advanced settings."""
    live_rules = {rule.get("RuleName"): rule for rule in live_body.get("Rules", [])}
    if set(live_rules) != set(rule["RuleName"] for rule in wanted_rules):
        return False
    if not all(rule_up_to_date(rule, live_rules[rule["RuleName"]]) for rule in wanted_rules):
        return False
    live_settings = live_body.get("AdvancedBackupSettings") or []
    return is_subset(wanted_settings, live_settings) if wanted_settings else not live_settings


def find_plan(module, client, name):
    """The plan named ``name`` (GetBackupPlan's answer), or None."""
    try:
        paginator = client.get_paginator("list_backup_plans")
        plans = paginator.paginate().build_full_result().get("BackupPlansList", [])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="Could not list the backup plans")
    ids = [plan["BackupPlanId"] for plan in plans if plan.get("BackupPlanName") == name and not plan.get("DeletionDate")]
    if len(ids) > 1:
        module.fail_json(msg=f"{len(ids)} backup plans are named {name} ({', '.join(ids)}): delete the extra ones, this module manages one plan per name")
    if not ids:
        return None
    try:
        plan = client.get_backup_plan(BackupPlanId=ids[0])
    except is_boto3_error_code("ResourceNotFoundException"):
        return None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Could not read backup plan {name} ({ids[0]})")
    plan.pop("ResponseMetadata", None)
    return plan


def result(plan, tags):
    plan = plan or {}
    return dict(
        backup_plan_id=plan.get("BackupPlanId", ""),
        backup_plan_arn=plan.get("BackupPlanArn", ""),
        version_id=plan.get("VersionId", ""),
        backup_plan=plan.get("BackupPlan", {}),
        tags=tags or {},
    )


def main():
    module = FastierAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            rules=dict(type="list", elements="dict"),
            advanced_backup_settings=dict(type="list", elements="dict", default=[]),
            **TAG_OPTIONS,
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["rules"])],
        supports_check_mode=True,
    )
    name = module.params["name"]
    client = module.client("backup")
    current = find_plan(module, client, name)
    current_tags = read_tags(module, client, current["BackupPlanArn"]) if current else {}
    before = dict(current["BackupPlan"], Tags=current_tags) if current else {}

    if module.params["state"] == "absent":
        if current is None:
            module.exit_with_diff(False, {}, {}, **result(None, {}))
        if not module.check_mode:
            try:
                client.delete_backup_plan(BackupPlanId=current["BackupPlanId"])
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                module.fail_json_aws(e, msg=f"Could not delete backup plan {name} (a plan with backup selections cannot be deleted: delete them first)")
        module.exit_with_diff(True, before, {}, **result(None, {}))

    rules = copy.deepcopy(module.params["rules"])
    for rule in rules:
        missing = [key for key in ("RuleName", "TargetBackupVaultName") if not rule.get(key)]
        if missing:
            module.fail_json(msg=f"Every rule of backup plan {name} needs {' and '.join(missing)} (got {rule})")
    names = [rule["RuleName"] for rule in rules]
    if len(set(names)) != len(names):
        module.fail_json(msg=f"Rule names of backup plan {name} must be unique (got {names})")
    settings = copy.deepcopy(module.params["advanced_backup_settings"])
    body = dict(BackupPlanName=name, Rules=rules)
    if settings:
        body["AdvancedBackupSettings"] = settings
    tags = module.params["tags"]

    if current is None:
        after = dict(body, Tags=tags or {})
        if module.check_mode:
            module.exit_with_diff(True, {}, after, **result(None, tags))
        params = dict(BackupPlan=body)
        if tags:
            params["BackupPlanTags"] = tags
        try:
            client.create_backup_plan(**params)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"Could not create backup plan {name}")
        plan = find_plan(module, client, name)
        module.exit_with_diff(True, {}, after, **result(plan, tags))

    arn = current["BackupPlanArn"]
    body_changed = not plan_up_to_date(rules, settings, current.get("BackupPlan", {}))
    if body_changed and not module.check_mode:
        try:
            client.update_backup_plan(BackupPlanId=current["BackupPlanId"], BackupPlan=body)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"Could not update backup plan {name}")
    tags_changed = sync_tags(
        module,
        current_tags,
        tags,
        purge=module.params["purge_tags"],
        tag=lambda add: client.tag_resource(ResourceArn=arn, Tags=add),
        untag=lambda keys: client.untag_resource(ResourceArn=arn, TagKeyList=keys),
        what=f"backup plan {name}",
    )
    wanted_tags = current_tags if tags is None else (tags if module.params["purge_tags"] else dict(current_tags, **tags))
    after = dict(body if body_changed else current["BackupPlan"], Tags=wanted_tags)
    if module.check_mode or not (body_changed or tags_changed):
        module.exit_with_diff(body_changed or tags_changed, before, after, **result(current, wanted_tags))
    plan = find_plan(module, client, name) if body_changed else current
    module.exit_with_diff(True, before, after, **result(plan, wanted_tags))


if __name__ == "__main__":
    main()
