#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: eb_environment_info
version_added: 0.1.0
short_description: Describe Elastic Beanstalk environments
description:
  - Lists the environments of an application, or the ones named or identified, with their tags.
  - Optionally adds each environment's deployed option settings (nested C(namespace -> option -> value))
    and its enhanced health (C(DescribeEnvironmentHealth)).
author:
  - Fastier platform team (@fastier)
options:
  application_name:
    description: Only environments of this application.
    type: str
    aliases: [app_name]
  environment_names:
    description: Only environments with these names.
    type: list
    elements: str
    default: []
    aliases: [names]
  environment_ids:
    description: Only environments with these ids.
    type: list
    elements: str
    default: []
    aliases: [ids]
  include_settings:
    description: Add each environment's deployed option settings as C(option_settings).
    type: bool
    default: false
  include_health:
    description:
      - Add each environment's enhanced health (status, colour, causes, metrics, instance counts) as C(health_details).
      - Environments without enhanced health get C(health_details) with the error AWS gave.
    type: bool
    default: false
  include_deleted:
    description: Also list environments terminated recently (AWS keeps them for about an hour).
    type: bool
    default: false
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - Read-only; supports C(check_mode).
seealso:
  - module: fastier.platform.eb_environment
"""

EXAMPLES = r"""
- name: Every environment of the application with its settings and health
  fastier.platform.eb_environment_info:
    application_name: fastier-production
    include_settings: true
    include_health: true
  register: eb

- name: Which environment serves the live CNAME
  ansible.builtin.set_fact:
    live_environment: >-
      {{ (eb.environments | selectattr('cname', 'match', 'fastier-production\\.') | first).environment_name }}

- name: One environment by name
  fastier.platform.eb_environment_info:
    application_name: fastier-production
    environment_names: [fastier-production-blue]
"""

RETURN = r"""
environments:
  description: The environments found, in snake_case (DescribeEnvironments), sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    environment_name:
      description: The name.
      returned: always
      type: str
      sample: fastier-production-blue
    environment_id:
      description: The id.
      returned: always
      type: str
      sample: e-abcd1234
    application_name:
      description: The application.
      returned: always
      type: str
      sample: fastier-production
    version_label:
      description: The application version it runs.
      returned: when it runs one
      type: str
      sample: "2025.01.15-3f2a9c1"
    cname:
      description: The environment's CNAME.
      returned: always
      type: str
      sample: fastier-production.us-east-1.elasticbeanstalk.com
    endpoint_url:
      description: The load balancer's address.
      returned: when the environment has one
      type: str
      sample: awseb-e-a-AWSEBLoa-1ABC.us-east-1.elb.amazonaws.com
    status:
      description: C(Launching), C(Updating), C(Ready), C(Terminating), C(Terminated)...
      returned: always
      type: str
      sample: Ready
    health:
      description: C(Green), C(Yellow), C(Red) or C(Grey).
      returned: always
      type: str
      sample: Green
    health_status:
      description: The enhanced health status.
      returned: with enhanced health
      type: str
      sample: Ok
    tags:
      description: The environment's tags (AWS-managed keys left out; not read for terminated environments).
      returned: always
      type: dict
      sample: {"Name": "fastier-production-blue"}
    option_settings:
      description: Deployed option settings, nested.
      returned: when O(include_settings=true) and the environment is not terminated
      type: dict
      sample: {"aws:autoscaling:asg": {"MinSize": "2", "MaxSize": "6"}}
    health_details:
      description: DescribeEnvironmentHealth in snake_case, or C(error) when AWS has none (basic health).
      returned: when O(include_health=true) and the environment is not terminated
      type: dict
      sample: {"health_status": "Ok", "color": "Green", "causes": [], "instances_health": {"ok": 2}}
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # caught by AnsibleAWSModule

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.fastier.platform.plugins.module_utils.base import FastierAWSModule
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import client_error_message
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import describe_environment_health
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import describe_environments
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import environment_to_result
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import get_option_settings
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import get_tags


def describe_one(module, client, environment):
    result = environment_to_result(environment)
    name = environment["EnvironmentName"]
    if environment.get("Status") == "Terminated":
        result["tags"] = {}
        return result
    try:
        result["tags"] = get_tags(client, environment["EnvironmentArn"]) if environment.get("EnvironmentArn") else {}
        if module.params["include_settings"]:
            result["option_settings"] = get_option_settings(client, environment["ApplicationName"], name)
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg="Cannot describe environment {0}".format(name))
    if module.params["include_health"]:
        try:
            result["health_details"] = camel_dict_to_snake_dict(describe_environment_health(client, name))
        except ClientError as e:
            # Basic health: AWS has no enhanced health report for this environment.
            result["health_details"] = {"error": client_error_message(e)}
        except BotoCoreError as e:
            module.fail_json_aws(e, msg="Cannot describe the health of environment {0}".format(name))
    return result


def main():
    argument_spec = dict(
        application_name=dict(type="str", aliases=["app_name"]),
        environment_names=dict(type="list", elements="str", default=[], aliases=["names"]),
        environment_ids=dict(type="list", elements="str", default=[], aliases=["ids"]),
        include_settings=dict(type="bool", default=False),
        include_health=dict(type="bool", default=False),
        include_deleted=dict(type="bool", default=False),
    )
    module = FastierAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    client = module.client("elasticbeanstalk")
    params = module.params
    try:
        found = describe_environments(
            client,
            params["application_name"],
            names=params["environment_names"],
            ids=params["environment_ids"],
            include_deleted=params["include_deleted"],
        )
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg="Cannot describe the environments")
    found.sort(key=lambda env: (env.get("EnvironmentName", ""), env.get("Status") == "Terminated", str(env.get("DateUpdated", ""))))
    module.exit_json(changed=False, environments=[describe_one(module, client, env) for env in found])


if __name__ == "__main__":
    main()
