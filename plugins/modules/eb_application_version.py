#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: eb_application_version
version_added: 0.1.0
short_description: Create or delete an Elastic Beanstalk application version
description:
  - Registers an application version from a source bundle already in S3 (O(s3_bucket) and O(s3_key)),
    or uploads a local zip (O(src)) to S3 first and registers that.
  - With O(process=true) Elastic Beanstalk validates the bundle's configuration files and the module
    waits (at most O(wait_timeout) seconds) until the version is C(Processed); a version that ends
    C(Failed) fails the task with the events that say why.
  - A version label is immutable. The same label with other content (another S3 location, or a local
    zip whose SHA-256 differs from the uploaded bundle's) is an error that says so; the same content is
    C(ok). Use a new label for new content.
  - When O(src) is uploaded the object gets the metadata C(sha256) (the zip's SHA-256), which is how a
    later run recognises the content. Objects uploaded by other tools are compared by their ETag (the
    MD5 of a single-part upload). The module never overwrites an existing object with other content.
  - O(state=absent) deletes the version. AWS refuses to delete a version that a running environment
    uses; the module checks first and names those environments.
author:
  - Fastier platform team (@fastier)
options:
  application_name:
    description: Name of the Elastic Beanstalk application (it must exist).
    type: str
    required: true
    aliases: [app_name]
  version_label:
    description: The label of the version, unique within the application (1 to 100 characters).
    type: str
    required: true
    aliases: [label]
  state:
    description: Whether the version should exist.
    type: str
    choices: [present, absent]
    default: present
  s3_bucket:
    description:
      - Bucket of the source bundle. Required with O(state=present).
      - With O(src) the zip is uploaded to this bucket.
    type: str
  s3_key:
    description:
      - Key of the source bundle in O(s3_bucket).
      - Required with O(state=present) unless O(src) is given; with O(src) it defaults to
        C(<application_name>/<version_label>.zip).
    type: str
  src:
    description:
      - Path of a local zip to upload to O(s3_bucket)/O(s3_key) before registering the version.
      - Nothing is uploaded when the object already holds the same content.
    type: path
  description:
    description: Description of the version (up to 200 characters). It is the only attribute of a version that can change.
    type: str
  process:
    description:
      - Ask Elastic Beanstalk to validate the bundle's C(.ebextensions) and C(env.yaml) when creating the
        version, and wait until it is C(Processed).
      - An existing version that is still processing is waited for as well.
    type: bool
    default: true
  wait_timeout:
    description: How long to wait, in seconds, for the version to be processed.
    type: int
    default: 600
  delete_source_bundle:
    description: With O(state=absent), also delete the source bundle from S3.
    type: bool
    default: false
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
notes:
  - Supports C(check_mode) (the planned upload and creation are reported, nothing is written) and C(diff_mode).
"""

EXAMPLES = r"""
- name: Register a bundle already in S3 and wait until it is processed
  fastier.platform.eb_application_version:
    application_name: fastier-production
    version_label: "2025.01.15-3f2a9c1"
    s3_bucket: fastier-production-artifacts
    s3_key: bundles/2025.01.15-3f2a9c1.zip
    description: "commit 3f2a9c1"
    tags:
      commit: 3f2a9c1

- name: Upload a local bundle and register it
  fastier.platform.eb_application_version:
    application_name: fastier-production
    version_label: "{{ bundle_label }}"
    src: "{{ playbook_dir }}/build/bundle.zip"
    s3_bucket: fastier-production-artifacts
  register: version

- name: Delete an old version and its bundle
  fastier.platform.eb_application_version:
    application_name: fastier-production
    version_label: "2024.12.01-0a1b2c3"
    state: absent
    delete_source_bundle: true
"""

RETURN = r"""
application_version:
  description: The version as Elastic Beanstalk describes it (empty after deletion).
  returned: always
  type: dict
  contains:
    application_name:
      description: The application.
      returned: when the version exists
      type: str
      sample: fastier-production
    version_label:
      description: The label.
      returned: when the version exists
      type: str
      sample: "2025.01.15-3f2a9c1"
    description:
      description: The description.
      returned: when set
      type: str
      sample: "commit 3f2a9c1"
    source_bundle:
      description: Where the bundle is.
      returned: when the version exists
      type: dict
      sample: {"s3_bucket": "fastier-production-artifacts", "s3_key": "bundles/2025.01.15-3f2a9c1.zip"}
    status:
      description: C(Unprocessed), C(Processing), C(Processed), C(Building) or C(Failed).
      returned: when the version exists
      type: str
      sample: Processed
    application_version_arn:
      description: ARN of the version.
      returned: when the version exists
      type: str
      sample: "arn:aws:elasticbeanstalk:us-east-1:123456789012:applicationversion/fastier-production/2025.01.15-3f2a9c1"
    date_created:
      description: When it was created.
      returned: when the version exists
      type: str
      sample: "2025-01-15T10:12:03.120000+00:00"
    tags:
      description: The version's tags.
      returned: when the version exists
      type: dict
      sample: {"commit": "3f2a9c1"}
content_sha256:
  description: SHA-256 of the local zip (O(src)).
  returned: when O(src) is given
  type: str
  sample: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
uploaded:
  description: Whether the zip was uploaded by this run.
  returned: always
  type: bool
  sample: true
would_upload:
  description: In check mode, whether a run would upload O(src).
  returned: in check mode, when the version would be created
  type: bool
  sample: true
events:
  description: Elastic Beanstalk events about the version seen while it was processed.
  returned: always
  type: list
  elements: dict
  sample: [{"event_date": "2025-01-15T10:12:05+00:00", "severity": "INFO", "message": "Processed application version 2025.01.15-3f2a9c1."}]
progress:
  description: What the module did, with elapsed seconds (also logged).
  returned: when something was done
  type: list
  elements: str
  sample: ["[    0.4s] uploaded bundle.zip to s3://fastier-production-artifacts/fastier-production/v1.zip"]
"""

import hashlib
import os

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # caught by AnsibleAWSModule

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.fastier.platform.plugins.module_utils.base import Deadline
from ansible_collections.fastier.platform.plugins.module_utils.base import FastierAWSModule
from ansible_collections.fastier.platform.plugins.module_utils.base import TAG_OPTIONS
from ansible_collections.fastier.platform.plugins.module_utils.base import WaitTimeout
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import VERSION_PENDING_STATUSES
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import VersionFailed
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import describe_application
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import describe_application_version
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import describe_environments
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import get_tags
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import plan_tags
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import update_tags
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import wait_for_version

HASH_METADATA_KEY = "sha256"


def file_digests(path):
    sha256, md5 = hashlib.sha256(), hashlib.md5()  # noqa: S324 - MD5 only to compare with S3 ETags
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            sha256.update(chunk)
            md5.update(chunk)
    return sha256.hexdigest(), md5.hexdigest()


def head_object(module, s3, bucket, key):
    """The object's metadata, or None when it does not exist."""
    try:
        return s3.head_object(Bucket=bucket, Key=key, aws_retry=True)
    except is_boto3_error_code(["404", "NoSuchKey", "NotFound"]):
        return None
    except (BotoCoreError, ClientError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="Cannot read s3://{0}/{1}".format(bucket, key))


def same_content(head, sha256, md5):
    """Whether an S3 object holds the zip with these digests (None: cannot tell)."""
    stored = (head.get("Metadata") or {}).get(HASH_METADATA_KEY)
    if stored:
        return stored == sha256
    etag = (head.get("ETag") or "").strip('"')
    if etag and "-" not in etag:
        return etag == md5
    return None


def version_result(client, module, version):
    if not version:
        return {}
    result = camel_dict_to_snake_dict(version)
    arn = version.get("ApplicationVersionArn")
    if arn:
        try:
            result["tags"] = get_tags(client, arn)
        except (BotoCoreError, ClientError) as e:
            module.fail_json_aws(e, msg="Cannot read the tags of application version {0}".format(version.get("VersionLabel")))
    return result


def snapshot(version, tags):
    if not version:
        return {}
    bundle = version.get("SourceBundle") or {}
    return {
        "version_label": version.get("VersionLabel"),
        "description": version.get("Description", ""),
        "source_bundle": "s3://{0}/{1}".format(bundle.get("S3Bucket", ""), bundle.get("S3Key", "")),
        "tags": tags,
    }


def wait_processed(module, client, application_name, label, deadline):
    module.progress("waiting for version {0} to be Processed".format(label))
    try:
        version = wait_for_version(client, application_name, label, deadline)
    except WaitTimeout as e:
        module.fail_json(msg="{0}. Elastic Beanstalk is still processing the bundle; run again later or raise wait_timeout.".format(e))
    except VersionFailed as e:
        module.fail_json(
            msg="{0}. The bundle did not pass Elastic Beanstalk's validation (see events); fix it and register it under a new label.".format(e),
            events=e.events,
            application_version=camel_dict_to_snake_dict(e.version or {}),
        )
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg="Failed while waiting for version {0} to be processed".format(label))
    module.progress("version {0} is {1}".format(label, version.get("Status")))
    return version


def ensure_absent(module, client, s3):
    app, label = module.params["application_name"], module.params["version_label"]
    try:
        version = describe_application_version(client, app, label)
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg="Cannot describe application version {0} of {1}".format(label, app))
    if not version:
        module.exit_with_diff(False, {}, {}, application_version={}, uploaded=False, events=[])
    try:
        running = describe_environments(client, app)
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg="Cannot list the environments of {0}".format(app))
    users = [env for env in running if env.get("VersionLabel") == label]
    if users:
        module.fail_json(
            msg="Cannot delete application version {0}: it runs in {1}. AWS refuses to delete a version a running environment uses; "
            "deploy another version to {2} or terminate {2} first.".format(
                label,
                ", ".join("{0} ({1})".format(e["EnvironmentName"], e.get("Status")) for e in users),
                "it" if len(users) == 1 else "them",
            ),
            environments=[e["EnvironmentName"] for e in users],
        )
    before = snapshot(version, {})
    if module.check_mode:
        module.exit_with_diff(True, before, {}, application_version={}, uploaded=False, events=[])
    try:
        client.delete_application_version(ApplicationName=app, VersionLabel=label, DeleteSourceBundle=module.params["delete_source_bundle"], aws_retry=True)
    except is_boto3_error_code("OperationInProgressFailure") as e:
        module.fail_json_aws(e, msg="Version {0} is being processed or deployed; run again once that finished".format(label))
    except (BotoCoreError, ClientError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="Cannot delete application version {0} of {1}".format(label, app))
    module.progress("deleted application version {0}".format(label))
    module.exit_with_diff(True, before, {}, application_version={}, uploaded=False, events=[])


def check_immutable(module, s3, version, location, digests):
    """Fail when an existing label would get other content."""
    label = version["VersionLabel"]
    bucket, key = location
    bundle = version.get("SourceBundle") or {}
    live = "s3://{0}/{1}".format(bundle.get("S3Bucket"), bundle.get("S3Key"))
    wanted = "s3://{0}/{1}".format(bucket, key)
    hint = "An application version label is immutable: register the new content under a new label."
    if (bundle.get("S3Bucket"), bundle.get("S3Key")) != (bucket, key):
        module.fail_json(msg="Application version {0} already exists with the bundle {1}, not {2}. {3}".format(label, live, wanted, hint))
    if digests is None:
        return
    head = head_object(module, s3, bucket, key)
    if head is None:
        module.fail_json(
            msg="Application version {0} exists but its bundle {1} is gone from S3, so its content cannot be compared with {2}. {3}".format(
                label, live, module.params["src"], hint
            )
        )
    same = same_content(head, *digests)
    if same is False:
        module.fail_json(
            msg="Application version {0} already exists with other content: {1} differs from {2} (sha256 {3}). {4}".format(
                label, live, module.params["src"], digests[0], hint
            )
        )
    if same is None:
        module.warn("Cannot compare {0} with {1} (multipart upload without a sha256 metadata); assuming the same content".format(live, module.params["src"]))


def ensure_present(module, client, s3):
    params = module.params
    app, label = params["application_name"], params["version_label"]
    bucket = params["s3_bucket"]
    key = params["s3_key"] or "{0}/{1}.zip".format(app, label)
    deadline = Deadline(params["wait_timeout"], "application version {0} to be Processed".format(label))
    digests = None
    result = {"uploaded": False, "events": []}
    if params["src"]:
        if not os.path.isfile(params["src"]):
            module.fail_json(msg="src {0} is not a file".format(params["src"]))
        digests = file_digests(params["src"])
        result["content_sha256"] = digests[0]
    try:
        version = describe_application_version(client, app, label)
        if version is None and describe_application(client, app) is None:
            module.fail_json(msg="Application {0} does not exist; create it first (community.aws.elasticbeanstalk_app or the beanstalk role).".format(app))
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg="Cannot describe application version {0} of {1}".format(label, app))

    if version:
        check_immutable(module, s3, version, (bucket, key), digests)
        if version.get("Status") == "Failed":
            module.fail_json(
                msg="Application version {0} exists and is Failed (its bundle did not pass processing); delete it "
                "(state=absent) and register the fixed bundle, preferably under a new label.".format(label),
                application_version=camel_dict_to_snake_dict(version),
            )
        return update_existing(module, client, version, deadline, result)

    # A new version: make sure the bundle is there (upload it when src is given).
    head = head_object(module, s3, bucket, key)
    upload = False
    if digests is not None:
        if head is None:
            upload = True
        elif same_content(head, *digests) is False:
            module.fail_json(
                msg="s3://{0}/{1} already holds other content than {2}; the module does not overwrite bundles (another version may use it). "
                "Choose another s3_key.".format(bucket, key, params["src"])
            )
    elif head is None:
        module.fail_json(msg="Source bundle s3://{0}/{1} not found; upload it first or give src.".format(bucket, key))

    after = {
        "version_label": label,
        "description": params["description"] or "",
        "source_bundle": "s3://{0}/{1}".format(bucket, key),
        "tags": params["tags"] or {},
    }
    if module.check_mode:
        result["uploaded"] = False
        module.exit_with_diff(True, {}, after, application_version={}, would_upload=upload, **result)

    if upload:
        try:
            with open(params["src"], "rb") as body:
                s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={HASH_METADATA_KEY: digests[0]}, aws_retry=True)
        except (BotoCoreError, ClientError) as e:
            module.fail_json_aws(e, msg="Cannot upload {0} to s3://{1}/{2}".format(params["src"], bucket, key))
        result["uploaded"] = True
        module.progress("uploaded {0} to s3://{1}/{2}".format(os.path.basename(params["src"]), bucket, key))

    request = {
        "ApplicationName": app,
        "VersionLabel": label,
        "SourceBundle": {"S3Bucket": bucket, "S3Key": key},
        "Process": params["process"],
    }
    if params["description"]:
        request["Description"] = params["description"]
    if params["tags"]:
        request["Tags"] = [{"Key": k, "Value": str(v)} for k, v in sorted(params["tags"].items())]
    try:
        version = client.create_application_version(aws_retry=True, **request)["ApplicationVersion"]
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg="Cannot create application version {0} of {1}".format(label, app))
    module.progress("created application version {0} ({1})".format(label, version.get("Status")))
    if params["process"]:
        version = wait_processed(module, client, app, label, deadline)
    module.exit_with_diff(True, {}, after, application_version=version_result(client, module, version), **result)


def update_existing(module, client, version, deadline, result):
    params = module.params
    app, label = params["application_name"], params["version_label"]
    arn = version.get("ApplicationVersionArn")
    try:
        current_tags = get_tags(client, arn) if arn else {}
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg="Cannot read the tags of application version {0}".format(label))
    to_set, to_remove = plan_tags(current_tags, params["tags"], params["purge_tags"])
    new_description = params["description"] if params["description"] is not None else version.get("Description", "")
    description_changes = new_description != version.get("Description", "")
    changed = bool(to_set or to_remove or description_changes)

    before = snapshot(version, current_tags)
    after_tags = dict((k, v) for k, v in current_tags.items() if k not in to_remove)
    after_tags.update(to_set)
    after = dict(before, description=new_description, tags=after_tags)
    if module.check_mode:
        module.exit_with_diff(changed, before, after, application_version=version_result(client, module, version), **result)
    try:
        if description_changes:
            version = client.update_application_version(ApplicationName=app, VersionLabel=label, Description=new_description, aws_retry=True)[
                "ApplicationVersion"
            ]
            module.progress("updated the description of version {0}".format(label))
        if to_set or to_remove:
            update_tags(client, arn, to_set, to_remove)
            module.progress("updated the tags of version {0}".format(label))
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg="Cannot update application version {0} of {1}".format(label, app))
    if params["process"] and version.get("Status") in VERSION_PENDING_STATUSES and version.get("Status") != "Unprocessed":
        version = wait_processed(module, client, app, label, deadline)
    module.exit_with_diff(changed, before, after, application_version=version_result(client, module, version), **result)


def main():
    argument_spec = dict(
        application_name=dict(type="str", required=True, aliases=["app_name"]),
        version_label=dict(type="str", required=True, aliases=["label"]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        s3_bucket=dict(type="str"),
        s3_key=dict(type="str", no_log=False),
        src=dict(type="path"),
        description=dict(type="str"),
        process=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=600),
        delete_source_bundle=dict(type="bool", default=False),
        **TAG_OPTIONS,
    )
    module = FastierAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[["state", "present", ["s3_bucket"]], ["state", "present", ["s3_key", "src"], True]],
    )
    client = module.client("elasticbeanstalk")
    s3 = module.client("s3")
    if module.params["state"] == "absent":
        ensure_absent(module, client, s3)
    ensure_present(module, client, s3)


if __name__ == "__main__":
    main()
