# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the AWS Backup modules (``backup_vault_config``, ``backup_plan_config``) share.

* ``describe_vault()``: a vault, or None when it does not exist - AWS Backup
  answers a vault that does not exist with ``ResourceNotFoundException`` (the
  API reference) or ``AccessDeniedException`` (what AWS has been seen to
  answer, and what ``amazon.aws.backup_vault`` expects): both mean "none";
* ``read_tags()``: the tags of a vault or a plan as a dict.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    botocore = None

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

VAULT_NOT_FOUND = ["ResourceNotFoundException", "AccessDeniedException"]


def describe_vault(module, client, name):
    """DescribeBackupVault's answer for ``name`` (without ResponseMetadata), or None when there is no such vault."""
    try:
        vault = client.describe_backup_vault(BackupVaultName=name)
    except is_boto3_error_code(VAULT_NOT_FOUND):
        return None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="Could not read backup vault {0}".format(name))
    vault.pop("ResponseMetadata", None)
    return vault


def read_tags(module, client, arn):
    """The tags of an AWS Backup resource (vault, plan) as a dict."""
    try:
        return client.list_tags(ResourceArn=arn).get("Tags", {}) or {}
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="Could not read the tags of {0}".format(arn))
