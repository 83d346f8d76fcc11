#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cloudfront_distribution_config
short_description: Manage a CloudFront distribution from its API configuration
version_added: 0.1.0
description:
  - Creates, updates, disables and deletes a CloudFront distribution found by its comment, from a
    C(DistributionConfig) written exactly as in the CloudFront API reference (CamelCase keys, C(Quantity)
    and C(Items) lists).
  - The configuration given is compared with the distribution's as a subset - keys and list items given
    must match, keys CloudFront adds (defaults, new API fields) are ignored - so a re-run reports no
    change. An update sends the current configuration with each top-level key given replaced as a whole.
  - Why not C(community.aws.cloudfront_distribution) - it has no check mode, cannot express an origin
    access control except by passing unknown keys through, and compares its rebuilt configuration
    with the whole returned one, so fields it does not manage (C(TrustedKeyGroups),
    C(FunctionAssociations), ...) make every run a change.
options:
  comment:
    description: The distribution's comment, unique among the account's distributions; it identifies the distribution.
    type: str
    required: true
  config:
    description:
      - The C(DistributionConfig) (without C(CallerReference) and C(Comment), which come from O(caller_reference)
        and O(comment)). Required with O(state=present).
    type: dict
  caller_reference:
    description: Caller reference used when the distribution is created. Defaults to O(comment).
    type: str
  state:
    description:
      - V(present) creates or updates; V(absent) disables the distribution, waits until CloudFront has deployed
        that, then deletes it.
    type: str
    choices: [present, absent]
    default: present
  wait:
    description: With O(state=present), wait until the distribution is C(Deployed).
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for a deployment.
    type: int
    default: 1800
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - amazon.aws.tags
author:
  - Fastier platform team (@fastier)
"""

EXAMPLES = r"""
- name: Static site distribution through an origin access control
  fastier.platform.cloudfront_distribution_config:
    comment: fastier-production-static
    config:
      Enabled: true
      DefaultRootObject: index.html
      PriceClass: PriceClass_100
      Origins:
        Quantity: 1
        Items:
          - Id: static
            DomainName: fastier-production-static.s3.eu-west-1.amazonaws.com
            OriginPath: ""
            OriginAccessControlId: E2QWRUHAPOMQZL
            S3OriginConfig: {OriginAccessIdentity: ""}
      DefaultCacheBehavior:
        TargetOriginId: static
        ViewerProtocolPolicy: redirect-to-https
        Compress: true
        CachePolicyId: 658327ea-f89d-4fab-a63d-7e88639e58f6
    tags:
      Name: fastier-production-static
"""

RETURN = r"""
id:
  description: Id of the distribution (empty in check mode before it exists, and after deletion).
  returned: always
  type: str
  sample: E1ABCDEFGHIJKL
arn:
  description: ARN of the distribution.
  returned: when it exists
  type: str
  sample: arn:aws:cloudfront::123456789012:distribution/E1ABCDEFGHIJKL
domain_name:
  description: The distribution's C(*.cloudfront.net) name.
  returned: when it exists
  type: str
  sample: d111111abcdef8.cloudfront.net
status:
  description: C(InProgress) while a change deploys, then C(Deployed).
  returned: when it exists
  type: str
  sample: Deployed
config:
  description: The distribution's configuration now (as CloudFront returns it).
  returned: when it exists
  type: dict
  sample: {}
"""

import copy
import time

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    botocore = None

from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list, boto3_tag_list_to_ansible_dict
from ansible_collections.fastier.platform.plugins.module_utils.aws_compare import is_subset, sync_tags
from ansible_collections.fastier.platform.plugins.module_utils.base import TAG_OPTIONS, Deadline, FastierAWSModule, WaitTimeout


def merged(current, wanted):
    """The update to send: the current configuration with each top-level key given replaced as a whole.

    Replacing whole sections (not merging them) keeps an update valid: a
    ViewerCertificate switching to ACM must not keep CloudFrontDefaultCertificate,
    and sub-fields not given fall back to CloudFront's defaults.
    """
    out = copy.deepcopy(current)
    out.update(copy.deepcopy(wanted))
    return out


class Distributions:
    def __init__(self, module):
        self.module = module
        self.client = module.client("cloudfront")

    def fail(self, e, msg):
        self.module.fail_json_aws(e, msg=msg)

    def find(self, comment):
        """(summary, config, etag) of the distribution with this comment, or (None, None, None)."""
        try:
            for page in self.client.get_paginator("list_distributions").paginate():
                for item in page.get("DistributionList", {}).get("Items", []) or []:
                    if item.get("Comment") == comment:
                        found = self.client.get_distribution(Id=item["Id"])
                        return found["Distribution"], found["Distribution"]["DistributionConfig"], found["ETag"]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail(e, f"Could not look up the distribution with comment {comment!r}")
        return None, None, None

    def tags(self, arn):
        try:
            items = self.client.list_tags_for_resource(Resource=arn)["Tags"].get("Items", [])
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail(e, f"Could not read the tags of {arn}")
        return boto3_tag_list_to_ansible_dict(items)

    def update_tags(self, arn, wanted, purge):
        if wanted is None:
            return False
        return sync_tags(
            self.module,
            self.tags(arn),
            wanted,
            purge=purge,
            tag=lambda tags: self.client.tag_resource(Resource=arn, Tags={"Items": ansible_dict_to_boto3_tag_list(tags)}),
            untag=lambda keys: self.client.untag_resource(Resource=arn, TagKeys={"Items": keys}),
            what=arn,
        )

    def wait_deployed(self, dist_id, seconds):
        deadline = Deadline(seconds, f"distribution {dist_id} to be Deployed")
        status = None
        while True:
            try:
                status = self.client.get_distribution(Id=dist_id)["Distribution"]["Status"]
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                self.fail(e, f"Could not read distribution {dist_id}")
            if status == "Deployed":
                return
            try:
                deadline.check(last_seen=status)
            except WaitTimeout as e:
                self.module.fail_json(msg=f"{e}; the change is still deploying, re-run later")
            self.module.progress(f"distribution {dist_id}: {status}")
            time.sleep(deadline.sleep_for(15))


def result(dist):
    if not dist:
        return {"id": ""}
    return {
        "id": dist["Id"],
        "arn": dist["ARN"],
        "domain_name": dist["DomainName"],
        "status": dist["Status"],
        "config": dist["DistributionConfig"],
    }


def absent(module, api, dist, config, etag):
    if not dist:
        module.exit_with_diff(False, {}, {}, id="")
    if module.check_mode:
        module.exit_with_diff(True, config, {}, id="")
    dist_id = dist["Id"]
    try:
        if config.get("Enabled"):
            module.progress(f"disabling distribution {dist_id}")
            etag = api.client.update_distribution(Id=dist_id, IfMatch=etag, DistributionConfig=merged(config, {"Enabled": False}))["ETag"]
        api.wait_deployed(dist_id, module.params["wait_timeout"])
        etag = api.client.get_distribution(Id=dist_id)["ETag"]
        api.client.delete_distribution(Id=dist_id, IfMatch=etag)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        api.fail(e, f"Could not delete distribution {dist_id}")
    module.exit_with_diff(True, config, {}, id="")


def main():
    module = FastierAWSModule(
        argument_spec=dict(
            comment=dict(type="str", required=True),
            config=dict(type="dict"),
            caller_reference=dict(type="str"),
            **TAG_OPTIONS,
            state=dict(type="str", choices=["present", "absent"], default="present"),
            wait=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=1800),
        ),
        required_if=[("state", "present", ["config"])],
        supports_check_mode=True,
    )
    comment = module.params["comment"]
    api = Distributions(module)
    dist, config, etag = api.find(comment)

    if module.params["state"] == "absent":
        absent(module, api, dist, config, etag)

    wanted = dict(module.params["config"], Comment=comment)
    if dist is None:
        after = dict(wanted, CallerReference=module.params["caller_reference"] or comment)
        if module.check_mode:
            module.exit_with_diff(True, {}, after, id="")
        tags = ansible_dict_to_boto3_tag_list(module.params["tags"] or {})
        try:
            created = api.client.create_distribution_with_tags(DistributionConfigWithTags={"DistributionConfig": after, "Tags": {"Items": tags}})
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            api.fail(e, f"Could not create distribution {comment!r}")
        dist = created["Distribution"]
        if module.params["wait"]:
            api.wait_deployed(dist["Id"], module.params["wait_timeout"])
        module.exit_with_diff(True, {}, dist["DistributionConfig"], **result(dist))

    changed = False
    after = config
    if not is_subset(wanted, config):
        changed = True
        after = merged(config, wanted)
        if not module.check_mode:
            try:
                dist = api.client.update_distribution(Id=dist["Id"], IfMatch=etag, DistributionConfig=after)["Distribution"]
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                api.fail(e, f"Could not update distribution {dist['Id']} ({comment!r})")
    changed |= api.update_tags(dist["ARN"], module.params["tags"], module.params["purge_tags"])
    if changed and module.params["wait"] and not module.check_mode:
        api.wait_deployed(dist["Id"], module.params["wait_timeout"])
    module.exit_with_diff(changed, config, after, **result(dist))


if __name__ == "__main__":
    main()
