#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: codepipeline_pipeline
short_description: Manage a CodePipeline pipeline idempotently
version_added: 0.1.0
description:
  - Creates, updates or deletes a CodePipeline pipeline from its declaration (C(roleArn), C(artifactStore),
    C(stages) as in the CodePipeline API) and its tags.
  - The declaration is compared with the pipeline's as a subset (defaults CodePipeline adds, such as
    C(runOrder), and the C(version) it increments are ignored); the pipeline is updated only when it differs.
  - Why not C(community.aws.codepipeline) - it has no check mode and no tags, calls C(UpdatePipeline) on
    every run and compares the result with the pipeline before the update, whose C(version) always
    differs, so every run reports a change.
  - Right after its service role is created, IAM may not let CodePipeline assume it yet; creation and
    update are retried for up to a minute on that error.
options:
  name:
    description: Name of the pipeline.
    type: str
    required: true
  role_arn:
    description: ARN of the role CodePipeline assumes. Required with O(state=present).
    type: str
  artifact_store:
    description: The C(artifactStore) (C(type), C(location), optional C(encryptionKey)). Required with O(state=present).
    type: dict
  stages:
    description: The C(stages), each with its C(name) and C(actions), as in the CodePipeline API. Required with O(state=present).
    type: list
    elements: dict
  state:
    description: Whether the pipeline exists.
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
- name: Release pipeline
  fastier.platform.codepipeline_pipeline:
    name: fastier-production-release
    role_arn: arn:aws:iam::123456789012:role/fastier-production-codepipeline
    artifact_store:
      type: S3
      location: fastier-production-artifacts
      encryptionKey: {id: alias/aws/s3, type: KMS}
    stages:
      - name: Source
        actions:
          - name: Bundle
            actionTypeId: {category: Source, owner: AWS, provider: S3, version: "1"}
            configuration: {S3Bucket: fastier-production-artifacts, S3ObjectKey: source/fastier-production.zip}
            outputArtifacts: [{name: Source}]
      - name: Build
        actions:
          - name: BuildAndTest
            actionTypeId: {category: Build, owner: AWS, provider: CodeBuild, version: "1"}
            configuration: {ProjectName: fastier-production-build}
            inputArtifacts: [{name: Source}]
    tags:
      Name: fastier-production-release
"""

RETURN = r"""
arn:
  description: ARN of the pipeline (empty in check mode before it exists, and after deletion).
  returned: always
  type: str
  sample: arn:aws:codepipeline:eu-west-1:123456789012:fastier-production-release
version:
  description: Version of the pipeline's declaration (CodePipeline increments it on each update).
  returned: when it exists
  type: int
  sample: 3
pipeline:
  description: The pipeline's declaration now.
  returned: when it exists
  type: dict
  sample: {}
"""

import copy

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    botocore = None

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list, boto3_tag_list_to_ansible_dict
from ansible_collections.fastier.platform.plugins.module_utils.aws_compare import call_when_iam_ready, is_subset, sync_tags
from ansible_collections.fastier.platform.plugins.module_utils.base import TAG_OPTIONS, FastierAWSModule

IAM_NOT_READY = ("not authorized to perform AssumeRole", "not authorized to perform: sts:AssumeRole")


def update_tags(module, client, arn, wanted, purge):
    if wanted is None:
        return False
    try:
        current = boto3_tag_list_to_ansible_dict(
            client.list_tags_for_resource(resourceArn=arn).get("tags", []), tag_name_key_name="key", tag_value_key_name="value"
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Could not read the tags of {arn}")
    return sync_tags(
        module,
        current,
        wanted,
        purge=purge,
        tag=lambda tags: client.tag_resource(resourceArn=arn, tags=ansible_dict_to_boto3_tag_list(tags, tag_name_key_name="key", tag_value_key_name="value")),
        untag=lambda keys: client.untag_resource(resourceArn=arn, tagKeys=keys),
        what=arn,
    )


def main():
    module = FastierAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            role_arn=dict(type="str"),
            artifact_store=dict(type="dict"),
            stages=dict(type="list", elements="dict"),
            **TAG_OPTIONS,
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["role_arn", "artifact_store", "stages"])],
        supports_check_mode=True,
    )
    name = module.params["name"]
    client = module.client("codepipeline")
    try:
        found = client.get_pipeline(name=name)
        current, arn = found["pipeline"], found["metadata"]["pipelineArn"]
    except is_boto3_error_code("PipelineNotFoundException"):
        current, arn = None, ""
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Could not read pipeline {name}")

    if module.params["state"] == "absent":
        if current is None:
            module.exit_with_diff(False, {}, {}, arn="")
        if not module.check_mode:
            try:
                client.delete_pipeline(name=name)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                module.fail_json_aws(e, msg=f"Could not delete pipeline {name}")
        module.exit_with_diff(True, current, {}, arn="")

    wanted = {
        "name": name,
        "roleArn": module.params["role_arn"],
        "artifactStore": copy.deepcopy(module.params["artifact_store"]),
        "stages": copy.deepcopy(module.params["stages"]),
    }
    tags = module.params["tags"]
    if current is None:
        if module.check_mode:
            module.exit_with_diff(True, {}, wanted, arn="")
        tag_list = ansible_dict_to_boto3_tag_list(tags or {}, tag_name_key_name="key", tag_value_key_name="value")
        created = call_when_iam_ready(module, client.create_pipeline, f"create pipeline {name}", hints=IAM_NOT_READY, pipeline=wanted, tags=tag_list)[
            "pipeline"
        ]
        arn = client.get_pipeline(name=name)["metadata"]["pipelineArn"]
        module.exit_with_diff(True, {}, created, arn=arn, version=created.get("version"), pipeline=created)

    changed = False
    after = current
    if not is_subset(wanted, current):
        changed = True
        after = dict(current, **wanted)
        if not module.check_mode:
            after = call_when_iam_ready(module, client.update_pipeline, f"update pipeline {name}", hints=IAM_NOT_READY, pipeline=after)["pipeline"]
    changed |= update_tags(module, client, arn, tags, module.params["purge_tags"])
    module.exit_with_diff(changed, current, after, arn=arn, version=after.get("version"), pipeline=after)


if __name__ == "__main__":
    main()
