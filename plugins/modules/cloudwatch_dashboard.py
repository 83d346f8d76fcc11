#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cloudwatch_dashboard
short_description: Manage a CloudWatch dashboard
version_added: 0.1.0
description:
  - Creates, updates or deletes a CloudWatch dashboard from a body given as a dict.
  - Neither amazon.aws nor community.aws has a dashboard module.
  - The body is compared as JSON data with the dashboard's current body, so key order and
    whitespace never cause a change.
options:
  name:
    description: Name of the dashboard.
    type: str
    required: true
  body:
    description:
      - The dashboard body (C(widgets), ...) as documented in the CloudWatch "Dashboard Body Structure
        and Syntax" reference. Required with O(state=present).
    type: dict
  state:
    description: Whether the dashboard exists.
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
- name: Platform dashboard
  fastier.platform.cloudwatch_dashboard:
    name: fastier-production-overview
    body:
      widgets:
        - type: metric
          x: 0
          y: 0
          width: 12
          height: 6
          properties:
            title: Load balancer 5xx
            region: eu-west-1
            metrics:
              - [AWS/ApplicationELB, HTTPCode_Target_5XX_Count, LoadBalancer, app/fastier/0123456789abcdef]
            stat: Sum
            period: 60
"""

RETURN = r"""
dashboard_name:
  description: Name of the dashboard.
  returned: always
  type: str
  sample: fastier-production-overview
dashboard_arn:
  description: ARN of the dashboard (empty in check mode before it exists, and after deletion).
  returned: always
  type: str
  sample: arn:aws:cloudwatch::123456789012:dashboard/fastier-production-overview
body:
  description: The dashboard body now (empty dict when absent).
  returned: always
  type: dict
  sample: {"widgets": []}
validation_messages:
  description: Messages CloudWatch returned about the body (warnings it accepted the body with).
  returned: when the dashboard was written
  type: list
  elements: dict
  sample: []
"""

import json

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    botocore = None

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.fastier.platform.plugins.module_utils.base import FastierAWSModule


def current_dashboard(module, client, name):
    """(body dict, arn) of the dashboard, or (None, "") when it does not exist."""
    try:
        found = client.get_dashboard(DashboardName=name)
    except is_boto3_error_code(["ResourceNotFound", "ResourceNotFoundException"]):
        return None, ""
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Could not read dashboard {name}")
    try:
        body = json.loads(found.get("DashboardBody") or "{}")
    except ValueError:
        body = {}
    return body, found.get("DashboardArn", "")


def main():
    module = FastierAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            body=dict(type="dict"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["body"])],
        supports_check_mode=True,
    )
    name = module.params["name"]
    client = module.client("cloudwatch")
    before, arn = current_dashboard(module, client, name)

    if module.params["state"] == "absent":
        if before is None:
            module.exit_with_diff(False, {}, {}, dashboard_name=name, dashboard_arn="", body={})
        if not module.check_mode:
            try:
                client.delete_dashboards(DashboardNames=[name])
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                module.fail_json_aws(e, msg=f"Could not delete dashboard {name}")
        module.exit_with_diff(True, before, {}, dashboard_name=name, dashboard_arn="", body={})

    # Round-trip through JSON so that the comparison sees what CloudWatch stores.
    wanted = json.loads(json.dumps(module.params["body"]))
    if before == wanted:
        module.exit_with_diff(False, before, wanted, dashboard_name=name, dashboard_arn=arn, body=before)
    messages = []
    if not module.check_mode:
        try:
            result = client.put_dashboard(DashboardName=name, DashboardBody=json.dumps(wanted, sort_keys=True))
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"CloudWatch refused the body of dashboard {name}")
        messages = result.get("DashboardValidationMessages", [])
        arn = current_dashboard(module, client, name)[1]
    module.exit_with_diff(
        True,
        before or {},
        wanted,
        dashboard_name=name,
        dashboard_arn=arn,
        body=wanted,
        validation_messages=messages,
    )


if __name__ == "__main__":
    main()
