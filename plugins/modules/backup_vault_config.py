#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: backup_vault_config
short_description: Manage an AWS Backup vault encrypted with a given KMS key
version_added: 0.1.0
description:
  - Creates an AWS Backup vault encrypted with a KMS key, keeps its tags, or deletes it when it holds no recovery point.
  - A vault's key is set when the vault is created and cannot change. A vault that exists with another key than
    O(encryption_key_arn) is an error that says so (nothing is changed), not a silent difference.
  - The module never deletes a recovery point. O(state=absent) on a vault that holds recovery points fails and says how many
    (AWS refuses to delete such a vault anyway).
  - Why not C(amazon.aws.backup_vault) - it fails on C(ResourceNotFoundException), the error the AWS Backup API reference
    documents for a vault that does not exist (it only expects C(AccessDeniedException)), and it does not check the key of
    an existing vault.
options:
  name:
    description: Name of the vault (2 to 50 letters, digits, C(-) or C(_)), unique per account and region.
    type: str
    required: true
  encryption_key_arn:
    description:
      - ARN of the KMS key that encrypts the vault's recovery points. Omitted, AWS Backup uses the AWS managed key
        C(aws/backup) at creation, and an existing vault's key is not checked.
    type: str
  state:
    description: Whether the vault exists.
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
- name: Vault of the DR region, encrypted with the platform's key there
  fastier.platform.backup_vault_config:
    name: fastier-production-backup-dr
    encryption_key_arn: arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
    region: eu-central-1
    tags:
      Name: fastier-production-backup-dr

- name: Delete the vault if it holds no recovery point
  fastier.platform.backup_vault_config:
    name: fastier-production-backup-dr
    region: eu-central-1
    state: absent
"""

RETURN = r"""
vault_name:
  description: Name of the vault.
  returned: always
  type: str
  sample: fastier-production-backup-dr
vault_arn:
  description: ARN of the vault (empty in check mode before it exists, and after deletion).
  returned: always
  type: str
  sample: arn:aws:backup:eu-central-1:123456789012:backup-vault:fastier-production-backup-dr
encryption_key_arn:
  description: The key of the vault (empty when there is no vault, or in check mode before it exists and no key was given).
  returned: always
  type: str
  sample: arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
recovery_points:
  description:
    - Number of recovery points in the vault, as AWS Backup counts them (0 when there is no vault; null when the endpoint
      does not say, as the local AWS).
  returned: always
  type: int
  sample: 12
tags:
  description: The vault's tags after the run.
  returned: always
  type: dict
  sample: {"Name": "fastier-production-backup-dr"}
"""

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    botocore = None

from ansible_collections.fastier.platform.plugins.module_utils.aws_compare import sync_tags
from ansible_collections.fastier.platform.plugins.module_utils.backup import describe_vault
from ansible_collections.fastier.platform.plugins.module_utils.backup import read_tags
from ansible_collections.fastier.platform.plugins.module_utils.base import TAG_OPTIONS
from ansible_collections.fastier.platform.plugins.module_utils.base import FastierAWSModule


def state_of(vault, tags):
    vault = vault or {}
    return dict(
        vault_arn=vault.get("BackupVaultArn", ""),
        encryption_key_arn=vault.get("EncryptionKeyArn", ""),
        recovery_points=vault.get("NumberOfRecoveryPoints") if vault else 0,
        tags=tags or {},
    )


def main():
    module = FastierAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            encryption_key_arn=dict(type="str", no_log=False),
            **TAG_OPTIONS,
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    name = module.params["name"]
    key = module.params["encryption_key_arn"] or ""
    client = module.client("backup")
    current = describe_vault(module, client, name)
    current_tags = read_tags(module, client, current["BackupVaultArn"]) if current else {}
    before = dict(state_of(current, current_tags), vault_name=name) if current else {}

    if module.params["state"] == "absent":
        if current is None:
            module.exit_with_diff(False, {}, {}, vault_name=name, **state_of(None, {}))
        points = before["recovery_points"]
        if points:
            module.fail_json(
                msg=f"Backup vault {name} holds {points} recovery point(s) and is kept: this module never deletes recovery points. "
                "Let them expire (their lifecycle) or delete them yourself, then delete the vault.",
                vault_name=name,
                **state_of(current, current_tags),
            )
        if not module.check_mode:
            try:
                client.delete_backup_vault(BackupVaultName=name)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                module.fail_json_aws(e, msg=f"Could not delete backup vault {name} (a vault that holds recovery points cannot be deleted)")
        module.exit_with_diff(True, before, {}, vault_name=name, **state_of(None, {}))

    tags = module.params["tags"]
    if current is None:
        after = dict(vault_name=name, vault_arn="", encryption_key_arn=key, recovery_points=0, tags=tags or {})
        if module.check_mode:
            module.exit_with_diff(True, {}, after, **after)
        params = dict(BackupVaultName=name)
        if key:
            params["EncryptionKeyArn"] = key
        if tags:
            params["BackupVaultTags"] = tags
        try:
            client.create_backup_vault(**params)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"Could not create backup vault {name}")
        made = describe_vault(module, client, name)
        after = dict(state_of(made, tags), vault_name=name)
        module.exit_with_diff(True, {}, after, **after)

    if key and current.get("EncryptionKeyArn", "") != key:
        module.fail_json(
            msg=f"Backup vault {name} is encrypted with {current.get('EncryptionKeyArn') or '(no key shown)'}, not {key}: a vault's key cannot change. "
            "Give the vault's own key, or move its recovery points away (or let them expire), delete the vault and run again.",
            vault_name=name,
            **state_of(current, current_tags),
        )
    arn = current["BackupVaultArn"]
    changed = sync_tags(
        module,
        current_tags,
        tags,
        purge=module.params["purge_tags"],
        tag=lambda add: client.tag_resource(ResourceArn=arn, Tags=add),
        untag=lambda keys: client.untag_resource(ResourceArn=arn, TagKeyList=keys),
        what=f"backup vault {name}",
    )
    wanted_tags = current_tags if tags is None else (tags if module.params["purge_tags"] else dict(current_tags, **tags))
    after = dict(state_of(current, wanted_tags), vault_name=name)
    module.exit_with_diff(changed, before, after, **after)


if __name__ == "__main__":
    main()
