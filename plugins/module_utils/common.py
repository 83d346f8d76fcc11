# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What every fastier.platform module shares, AWS or not.

* ``Deadline`` / ``WaitTimeout`` for bounded waits whose timeout message says
  what was awaited and what was seen last;
* ``ProgressMixin``: ``progress()`` lines returned in the result (shown with
  ``-v``) and logged, ``elapsed()``, and ``exit_with_diff()`` that adds
  ``diff: {before, after}`` when ``--diff`` is on;
* ``FastierModule``: ``AnsibleModule`` with that mixin, for modules that talk
  to something other than AWS (``rds_cutover`` talks PostgreSQL).

``base.FastierAWSModule`` is the same mixin over amazon.aws's
``AnsibleAWSModule``; ``base`` re-exports ``Deadline`` and ``WaitTimeout``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible.module_utils.basic import AnsibleModule


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


class ProgressMixin:
    """Progress lines, elapsed time and diffs for a module class.

    Put it before the module class in the bases (``class M(ProgressMixin,
    AnsibleModule)``) and call ``_init_progress()`` from ``__init__``.
    """

    def _init_progress(self):
        self._started = time.monotonic()
        self.progress_lines = []

    def progress(self, message):
        """Record a progress line: returned as ``progress`` and logged."""
        line = "[{0:7.1f}s] {1}".format(time.monotonic() - self._started, message)
        self.progress_lines.append(line)
        self.log(line)
        return line

    def elapsed(self):
        return round(time.monotonic() - self._started, 3)

    def exit_json(self, *args, **kwargs):
        if self.progress_lines and "progress" not in kwargs:
            kwargs["progress"] = self.progress_lines
        return super(ProgressMixin, self).exit_json(*args, **kwargs)

    def fail_json(self, *args, **kwargs):
        if self.progress_lines and "progress" not in kwargs:
            kwargs["progress"] = self.progress_lines
        return super(ProgressMixin, self).fail_json(*args, **kwargs)

    def exit_with_diff(self, changed, before, after, **result):
        """exit_json with ``diff: {before, after}`` when ``--diff`` is on."""
        if self._diff:
            result["diff"] = {"before": before, "after": after}
        self.exit_json(changed=changed, **result)


class FastierModule(ProgressMixin, AnsibleModule):
    """AnsibleModule with progress lines and diffs (modules that are not AWS)."""

    def __init__(self, **kwargs):
        super(FastierModule, self).__init__(**kwargs)
        self._init_progress()
