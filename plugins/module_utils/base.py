# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The base every fastier.platform AWS module builds on.

``FastierAWSModule`` is amazon.aws's ``AnsibleAWSModule`` (endpoint_url with
the ``AWS_URL`` fallback, region, profile and credentials, botocore version
checks, ``fail_json_aws``) plus what our modules all need:

* clients that retry throttling and 5xx with jittered backoff by default;
* ``Deadline`` for bounded waits whose timeout message says what was awaited;
* ``progress()`` lines returned in the result (shown with ``-v``) and logged;
* ``exit_with_diff()`` that adds ``diff: {before, after}`` when ``--diff``.

The last three are shared with modules that are not AWS (``common.py``).

The local AWS and a real account go through exactly this code: only the
endpoint and the credentials differ.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

# Deadline and WaitTimeout live in common (shared with modules that are not
# AWS); they stay importable from here. Relative, so this file also imports
# as plain ``plugins.module_utils.base`` (tests/unit) as well as from the
# installed collection.
from .common import Deadline  # noqa: F401 pylint: disable=unused-import
from .common import ProgressMixin
from .common import WaitTimeout  # noqa: F401 pylint: disable=unused-import

# Error codes worth retrying on every service we call, beyond AWSRetry's own
# list: the local endpoint's fault injection uses the same codes as AWS.
RETRY_CODES = [
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
]

DEFAULT_RETRY = AWSRetry.jittered_backoff(retries=10, delay=1, max_delay=30, catch_extra_error_codes=RETRY_CODES)


# The options the amazon.aws.tags doc fragment documents, for a module's argument_spec.
TAG_OPTIONS = dict(
    tags=dict(type="dict", aliases=["resource_tags"]),
    purge_tags=dict(type="bool", default=True),
)


class FastierAWSModule(ProgressMixin, AnsibleAWSModule):
    """AnsibleAWSModule with retries by default, progress lines and diffs.

    ``progress()``, ``elapsed()``, ``exit_with_diff()`` and the ``progress``
    key added by ``exit_json``/``fail_json`` come from ``common.ProgressMixin``.
    """

    def __init__(self, **kwargs):
        super(FastierAWSModule, self).__init__(**kwargs)
        self._init_progress()

    def client(self, service, retry_decorator=None, **extra_params):
        """A boto3 client whose calls retry throttling and 5xx with backoff."""
        return super(FastierAWSModule, self).client(service, retry_decorator=retry_decorator or DEFAULT_RETRY, **extra_params)
