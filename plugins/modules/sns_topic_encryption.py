#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: sns_topic_encryption
short_description: Set or remove the KMS key of an SNS topic (server-side encryption)
version_added: 0.1.0
description:
  - Sets the C(KmsMasterKeyId) attribute of an existing SNS topic, or removes it.
  - C(community.aws.sns_topic) manages topics, policies and subscriptions but not encryption.
  - CloudWatch alarms can publish to an encrypted topic only when the key policy lets
    C(cloudwatch.amazonaws.com) use the key, which the AWS managed key C(alias/aws/sns) does not.
options:
  topic_arn:
    description: ARN of the topic.
    type: str
    required: true
  kms_master_key_id:
    description:
      - Key id, key ARN, alias name or alias ARN of the KMS key; an empty string turns encryption off.
    type: str
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
author:
  - Fastier platform team (@fastier)
"""

EXAMPLES = r"""
- name: Encrypt the alarm topic with the platform's key
  fastier.platform.sns_topic_encryption:
    topic_arn: arn:aws:sns:eu-west-1:123456789012:fastier-production-alarms
    kms_master_key_id: alias/fastier-production-alarms
"""

RETURN = r"""
topic_arn:
  description: ARN of the topic.
  returned: always
  type: str
  sample: arn:aws:sns:eu-west-1:123456789012:fastier-production-alarms
kms_master_key_id:
  description: The topic's key after the run (empty when not encrypted).
  returned: always
  type: str
  sample: alias/fastier-production-alarms
"""

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    botocore = None

from ansible_collections.fastier.platform.plugins.module_utils.base import FastierAWSModule


def main():
    module = FastierAWSModule(
        argument_spec=dict(
            topic_arn=dict(type="str", required=True),
            kms_master_key_id=dict(type="str", required=True, no_log=False),
        ),
        supports_check_mode=True,
    )
    arn = module.params["topic_arn"]
    wanted = module.params["kms_master_key_id"] or ""
    client = module.client("sns")
    try:
        attributes = client.get_topic_attributes(TopicArn=arn)["Attributes"]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Could not read the attributes of topic {arn}; does it exist?")
    current = attributes.get("KmsMasterKeyId", "") or ""
    before = {"kms_master_key_id": current}
    after = {"kms_master_key_id": wanted}
    if current == wanted:
        module.exit_with_diff(False, before, after, topic_arn=arn, kms_master_key_id=current)
    if not module.check_mode:
        try:
            client.set_topic_attributes(TopicArn=arn, AttributeName="KmsMasterKeyId", AttributeValue=wanted)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"Could not set the KMS key of topic {arn} to {wanted!r}")
    module.exit_with_diff(True, before, after, topic_arn=arn, kms_master_key_id=wanted)


if __name__ == "__main__":
    main()
