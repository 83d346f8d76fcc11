#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cloudfront_origin_access_control
short_description: Manage a CloudFront origin access control (OAC)
version_added: 0.1.0
description:
  - Creates, updates or deletes a CloudFront origin access control, found by its name.
  - An OAC lets a CloudFront distribution sign its requests to a private S3 bucket (SigV4), so the bucket
    policy can allow only that distribution (C(AWS:SourceArn)). It replaces the legacy origin access
    identity (OAI) that C(community.aws.cloudfront_origin_access_identity) manages; neither amazon.aws nor
    community.aws 10 has an OAC module.
  - Attach it to an origin with C(origin_access_control_id) in the origins of
    C(community.aws.cloudfront_distribution).
options:
  name:
    description: Name of the OAC (unique in the account).
    type: str
    required: true
  description:
    description: Description of the OAC.
    type: str
    default: ""
  origin_type:
    description: Kind of origin the OAC signs for.
    type: str
    choices: [s3, mediastore, mediapackagev2, lambda]
    default: s3
  signing_behavior:
    description:
      - V(always) signs every origin request (the secure setting); V(no-override) keeps a viewer's
        C(Authorization) header; V(never) does not sign.
    type: str
    choices: [always, never, no-override]
    default: always
  signing_protocol:
    description: Signing protocol; AWS supports only V(sigv4).
    type: str
    choices: [sigv4]
    default: sigv4
  state:
    description: Whether the OAC exists. Deleting one that a distribution still uses fails.
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
- name: OAC for the static bucket
  fastier.platform.cloudfront_origin_access_control:
    name: fastier-production-static-oac
    description: fastier-production static bucket
  register: oac

- name: Distribution reading the bucket through it
  community.aws.cloudfront_distribution:
    caller_reference: fastier-production-static
    origins:
      - id: static
        domain_name: fastier-production-static.s3.eu-west-1.amazonaws.com
        s3_origin_access_identity_enabled: false
        origin_access_control_id: "{{ oac.id }}"
"""

RETURN = r"""
id:
  description: Id of the OAC (empty in check mode before it exists, and after deletion).
  returned: always
  type: str
  sample: E2QWRUHAPOMQZL
etag:
  description: Current version of the OAC (C(IfMatch) of updates).
  returned: when it exists
  type: str
  sample: E1PA6795UKMFR9
config:
  description: The OAC's configuration now (empty dict when absent).
  returned: always
  type: dict
  sample:
    name: fastier-production-static-oac
    description: fastier-production static bucket
    origin_access_control_origin_type: s3
    signing_behavior: always
    signing_protocol: sigv4
"""

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    botocore = None

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.fastier.platform.plugins.module_utils.base import FastierAWSModule

ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) if botocore else ()


def snake(config):
    return {
        "name": config.get("Name", ""),
        "description": config.get("Description", "") or "",
        "origin_access_control_origin_type": config.get("OriginAccessControlOriginType", ""),
        "signing_behavior": config.get("SigningBehavior", ""),
        "signing_protocol": config.get("SigningProtocol", ""),
    }


def find(module, client, name):
    """(id, etag, config) of the OAC named ``name``, or (None, None, None)."""
    paginator = client.get_paginator("list_origin_access_controls")
    try:
        for page in paginator.paginate():
            for item in page.get("OriginAccessControlList", {}).get("Items", []) or []:
                if item.get("Name") == name:
                    found = client.get_origin_access_control(Id=item["Id"])
                    return item["Id"], found.get("ETag"), found["OriginAccessControl"]["OriginAccessControlConfig"]
    except ERRORS as e:
        module.fail_json_aws(e, msg=f"Could not look up origin access control {name}")
    return None, None, None


def main():
    module = FastierAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            description=dict(type="str", default=""),
            origin_type=dict(type="str", choices=["s3", "mediastore", "mediapackagev2", "lambda"], default="s3"),
            signing_behavior=dict(type="str", choices=["always", "never", "no-override"], default="always"),
            signing_protocol=dict(type="str", choices=["sigv4"], default="sigv4"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    name = module.params["name"]
    client = module.client("cloudfront")
    oac_id, etag, current = find(module, client, name)
    before = snake(current) if current else {}

    if module.params["state"] == "absent":
        if not oac_id:
            module.exit_with_diff(False, {}, {}, id="", config={})
        if not module.check_mode:
            try:
                client.delete_origin_access_control(Id=oac_id, IfMatch=etag)
            except is_boto3_error_code("OriginAccessControlInUse") as e:
                module.fail_json_aws(e, msg=f"Origin access control {name} ({oac_id}) is still used by a distribution; remove it from the origin first")
            except ERRORS as e:  # pylint: disable=duplicate-except
                module.fail_json_aws(e, msg=f"Could not delete origin access control {name}")
        module.exit_with_diff(True, before, {}, id="", config={})

    wanted = {
        "Name": name,
        "Description": module.params["description"],
        "OriginAccessControlOriginType": module.params["origin_type"],
        "SigningBehavior": module.params["signing_behavior"],
        "SigningProtocol": module.params["signing_protocol"],
    }
    after = snake(wanted)
    if current and before == after:
        module.exit_with_diff(False, before, after, id=oac_id, etag=etag, config=before)
    if module.check_mode:
        module.exit_with_diff(True, before, after, id=oac_id or "", config=after)
    try:
        if current:
            result = client.update_origin_access_control(Id=oac_id, IfMatch=etag, OriginAccessControlConfig=wanted)
        else:
            result = client.create_origin_access_control(OriginAccessControlConfig=wanted)
    except ERRORS as e:
        module.fail_json_aws(e, msg=f"Could not {'update' if current else 'create'} origin access control {name}")
    oac = result["OriginAccessControl"]
    module.exit_with_diff(True, before, after, id=oac["Id"], etag=result.get("ETag"), config=snake(oac["OriginAccessControlConfig"]))


if __name__ == "__main__":
    main()
