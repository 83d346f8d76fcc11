#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: codebuild_project_config
short_description: Manage a CodeBuild project from its API configuration
version_added: 0.1.0
description:
  - Creates, updates or deletes a CodeBuild project, with its configuration written as in the CodeBuild
    C(CreateProject) API (camelCase keys).
  - The configuration is compared with the project's as a subset (keys CodeBuild adds are ignored) and the
    project is updated only when it differs, so a re-run makes no API write and reports no change.
  - Why not C(community.aws.codebuild_project) - it has no check mode and no C(logsConfig), and it calls
    C(UpdateProject) on every run.
  - Right after its service role is created, IAM may not let CodeBuild assume it yet; creation and update are
    retried for up to a minute on that error.
options:
  name:
    description: Name of the project.
    type: str
    required: true
  config:
    description:
      - The project's C(CreateProject) parameters except C(name) and C(tags) (C(source), C(artifacts),
        C(environment), C(serviceRole), C(logsConfig), C(encryptionKey), ...). Required with O(state=present).
    type: dict
  state:
    description: Whether the project exists.
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
- name: Build project of the pipeline
  fastier.platform.codebuild_project_config:
    name: fastier-production-build
    config:
      source: {type: CODEPIPELINE, buildspec: buildspec.yml}
      artifacts: {type: CODEPIPELINE}
      environment:
        type: LINUX_CONTAINER
        image: aws/codebuild/amazonlinux-x86_64-standard:5.0
        computeType: BUILD_GENERAL1_SMALL
      serviceRole: arn:aws:iam::123456789012:role/fastier-production-codebuild-build
      logsConfig:
        cloudWatchLogs: {status: ENABLED, groupName: /aws/codebuild/fastier-production-build}
    tags:
      Name: fastier-production-build
"""

RETURN = r"""
arn:
  description: ARN of the project (empty in check mode before it exists, and after deletion).
  returned: always
  type: str
  sample: arn:aws:codebuild:eu-west-1:123456789012:project/fastier-production-build
project:
  description: The project as CodeBuild describes it (empty dict when absent or not created yet).
  returned: always
  type: dict
  sample: {}
"""

import copy

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    botocore = None

from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list, boto3_tag_list_to_ansible_dict
from ansible_collections.fastier.platform.plugins.module_utils.aws_compare import call_when_iam_ready, is_subset
from ansible_collections.fastier.platform.plugins.module_utils.base import TAG_OPTIONS, FastierAWSModule

IAM_NOT_READY = ("not authorized to perform: sts:AssumeRole", "Service role", "cannot be assumed")


def tag_list(tags):
    return ansible_dict_to_boto3_tag_list(tags or {}, tag_name_key_name="key", tag_value_key_name="value")


def tag_dict(tags):
    return boto3_tag_list_to_ansible_dict(tags or [], tag_name_key_name="key", tag_value_key_name="value")


def main():
    module = FastierAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            config=dict(type="dict"),
            **TAG_OPTIONS,
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["config"])],
        supports_check_mode=True,
    )
    name = module.params["name"]
    client = module.client("codebuild")
    try:
        found = client.batch_get_projects(names=[name]).get("projects", [])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Could not read CodeBuild project {name}")
    current = found[0] if found else None
    before = {key: value for key, value in (current or {}).items() if key not in ("created", "lastModified")}

    if module.params["state"] == "absent":
        if current is None:
            module.exit_with_diff(False, {}, {}, arn="", project={})
        if not module.check_mode:
            try:
                client.delete_project(name=name)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                module.fail_json_aws(e, msg=f"Could not delete CodeBuild project {name}")
        module.exit_with_diff(True, before, {}, arn="", project={})

    wanted = copy.deepcopy(module.params["config"])
    tags = module.params["tags"]
    if current is None:
        after = dict(wanted, name=name, tags=tag_list(tags))
        if module.check_mode:
            module.exit_with_diff(True, {}, after, arn="", project={})
        project = call_when_iam_ready(module, client.create_project, f"create CodeBuild project {name}", hints=IAM_NOT_READY, **after)["project"]
        module.exit_with_diff(True, {}, project, arn=project["arn"], project=project)

    current_tags = tag_dict(current.get("tags"))
    wanted_tags = current_tags if tags is None else (tags if module.params["purge_tags"] else dict(current_tags, **tags))
    if is_subset(wanted, current) and wanted_tags == current_tags:
        module.exit_with_diff(False, before, before, arn=current["arn"], project=current)
    after = dict(before, **wanted)
    after["tags"] = tag_list(wanted_tags)
    if module.check_mode:
        module.exit_with_diff(True, before, after, arn=current["arn"], project=current)
    project = call_when_iam_ready(
        module, client.update_project, f"update CodeBuild project {name}", hints=IAM_NOT_READY, name=name, tags=tag_list(wanted_tags), **wanted
    )["project"]
    module.exit_with_diff(True, before, project, arn=project["arn"], project=project)


if __name__ == "__main__":
    main()
