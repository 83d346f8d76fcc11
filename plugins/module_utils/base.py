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

The local AWS and a real account go through exactly this code: only the
endpoint and the credentials differ.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

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


class WaitTimeout(Exception):
    """A bounded wait ran out; the message says what and what was seen last."""


class Deadline:
    """A point in time a wait must not pass.

    >>> deadline = Deadline(600, "environment fastier-blue to be Ready")
    >>> while not ready():
    ...     deadline.check(last_seen="Updating / Grey")
    ...     time.sleep(deadline.sleep_for(5))
    """

    def __init__(self, seconds, what, clock=time.monotonic):
        self.seconds = float(seconds)
        self.what = what
        self._clock = clock
        self.started = clock()

    @property
    def elapsed(self):
        return self._clock() - self.started

    @property
    def remaining(self):
        return max(0.0, self.seconds - self.elapsed)

    @property
    def expired(self):
        return self.remaining <= 0

    def sleep_for(self, interval):
        """The poll interval, shortened so the wait never overshoots."""
        return max(0.0, min(float(interval), self.remaining))

    def check(self, last_seen=None):
        if self.expired:
            message = "timed out after {0:.0f}s waiting for {1}".format(self.seconds, self.what)
            if last_seen:
                message += "; last seen: {0}".format(last_seen)
            raise WaitTimeout(message)


class FastierAWSModule(AnsibleAWSModule):
    """AnsibleAWSModule with retries by default, progress lines and diffs."""

    def __init__(self, **kwargs):
        super(FastierAWSModule, self).__init__(**kwargs)
        self._started = time.monotonic()
        self.progress_lines = []

    def client(self, service, retry_decorator=None, **extra_params):
        """A boto3 client whose calls retry throttling and 5xx with backoff."""
        return super(FastierAWSModule, self).client(service, retry_decorator=retry_decorator or DEFAULT_RETRY, **extra_params)

    def progress(self, message):
        """Record a progress line: returned as ``progress`` and logged."""
        line = "[{0:7.1f}s] {1}".format(time.monotonic() - self._started, message)
        self.progress_lines.append(line)
        self.log(line)

    def elapsed(self):
        return round(time.monotonic() - self._started, 3)

    def exit_json(self, *args, **kwargs):
        if self.progress_lines and "progress" not in kwargs:
            kwargs["progress"] = self.progress_lines
        return super(FastierAWSModule, self).exit_json(*args, **kwargs)

    def fail_json(self, *args, **kwargs):
        if self.progress_lines and "progress" not in kwargs:
            kwargs["progress"] = self.progress_lines
        return super(FastierAWSModule, self).fail_json(*args, **kwargs)

    def exit_with_diff(self, changed, before, after, **result):
        """exit_json with ``diff: {before, after}`` when ``--diff`` is on."""
        if self._diff:
            result["diff"] = {"before": before, "after": after}
        self.exit_json(changed=changed, **result)
