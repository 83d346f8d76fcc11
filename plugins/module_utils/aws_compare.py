# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Comparison and update helpers shared by the modules that take an AWS API
configuration as it is (CloudFront, CodeBuild, CodePipeline).

* ``is_subset()``: a configuration given is up to date when every key and
  list item given has the same value in the live one; keys the service adds
  (defaults, new API fields) are ignored, so a re-run is not a change;
* ``call_when_iam_ready()``: a create/update that names a role just created,
  retried while IAM has not propagated it yet;
* ``sync_tags()``: add/remove tags with ``compare_aws_tags``, check mode aware,
  for any service's tag calls.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    botocore = None

from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags


def is_subset(wanted, current):
    """True when every key and list item of ``wanted`` has the same value in ``current``.

    Lists of plain values (HTTP methods, aliases) are compared in any order;
    lists of objects (origins, cache behaviours, stages) in order and with the
    same length.
    """
    if isinstance(wanted, dict):
        return isinstance(current, dict) and all(key in current and is_subset(value, current[key]) for key, value in wanted.items())
    if isinstance(wanted, list):
        if not isinstance(current, list) or len(wanted) != len(current):
            return False
        if all(not isinstance(item, (dict, list)) for item in wanted + current):
            return sorted(wanted, key=str) == sorted(current, key=str)
        return all(is_subset(wanted[i], current[i]) for i in range(len(wanted)))
    return wanted == current


def call_when_iam_ready(module, call, what, *, hints, timeout=60, interval=5, **kwargs):
    """``call(**kwargs)``; while its error message contains one of ``hints``
    (IAM has not propagated a new role yet), retry for up to ``timeout`` seconds.

    Any other error, or the same one after the timeout, fails the module with
    "Could not <what>".
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call(**kwargs)
        except botocore.exceptions.ClientError as e:
            message = e.response.get("Error", {}).get("Message", "")
            if time.monotonic() < deadline and any(hint in message for hint in hints):
                module.progress("{0}: the role is not usable yet ({1}); retrying".format(what, message))
                time.sleep(interval)
                continue
            module.fail_json_aws(e, msg="Could not {0}".format(what))
        except botocore.exceptions.BotoCoreError as e:
            module.fail_json_aws(e, msg="Could not {0}".format(what))


def sync_tags(module, current, wanted, *, purge, tag, untag, what):
    """Make the tags ``current`` (a dict) into ``wanted``; True when that is a change.

    ``wanted=None`` leaves the tags alone. ``tag(dict)`` and ``untag(list of
    keys)`` make the service's calls; they are not called in check mode.
    """
    if wanted is None:
        return False
    to_set, to_unset = compare_aws_tags(current, wanted, purge_tags=purge)
    if not (to_set or to_unset):
        return False
    if module.check_mode:
        return True
    try:
        if to_unset:
            untag(to_unset)
        if to_set:
            tag(to_set)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="Could not tag {0}".format(what))
    return True
