# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The pieces of a blue/green promotion (``eb_environment_swap``).

Elastic Beanstalk basics (describe, waits, events, the CNAME swap call) are
in ``elasticbeanstalk.py``; this file holds what only the promotion needs:

* the HTTP smoke test (``http_check``, ``smoke_test``) with retries, and a
  URL template that names the environment under test (``{cname}``);
* Route 53 weighted records: read the weights of a pair of environments,
  write new ones in one atomic change batch and wait until it is ``INSYNC``;
  the step plan (``weight_plan``) from a list such as ``[10, 50, 100]``;
* CloudWatch alarm states (a missing alarm is an error: a typo must not
  turn a gate off);
* ``watch``: poll a set of probes (health, alarms, smoke test, CNAME) for a
  window of time and return the first bad signal, with what was seen.

Nothing here calls ``fail_json``. Clocks and sleeps are injectable so the
unit tests run without waiting.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six.moves.urllib.error import HTTPError
from ansible.module_utils.six.moves.urllib.error import URLError
from ansible.module_utils.urls import open_url

from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import Poller
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import _call

STRATEGIES = ("cname_swap", "route53_weighted")
ALARM = "ALARM"
EXCERPT_CHARS = 200  # characters of a response body kept as evidence


# -- smoke test ----------------------------------------------------------------------------


def render_url(template, environment):
    """``template`` with ``{cname}``, ``{endpoint_url}`` and ``{environment_name}`` of the environment.

    ``{cname}`` is the environment's CNAME when the check runs: before a
    CNAME swap the idle environment's own name, after it the live name.
    """
    environment = environment or {}
    out = template
    for key, field in (("{cname}", "CNAME"), ("{endpoint_url}", "EndpointURL"), ("{environment_name}", "EnvironmentName")):
        out = out.replace(key, environment.get(field) or "")
    return out


def _excerpt(body):
    text = to_text(body or b"", errors="surrogate_or_replace")
    text = " ".join(text.split())
    return text[:EXCERPT_CHARS] + ("..." if len(text) > EXCERPT_CHARS else "")


def http_check(url, *, expected_status=(200,), expected_text=None, timeout=10, validate_certs=True, headers=None, opener=open_url, clock=time.monotonic):
    """One HTTP GET; returns ``{url, ok, status, detail, elapsed_s}``.

    ``ok`` when the status is one of ``expected_status`` and, if given,
    ``expected_text`` is in the body. A connection error is a failed check
    (``status`` None) with the error in ``detail``.
    """
    started = clock()
    status, body, detail = None, b"", ""
    try:
        response = opener(url, method="GET", headers=dict(headers or {}), timeout=timeout, validate_certs=validate_certs, follow_redirects="safe")
        status = response.getcode()
        body = response.read()
    except HTTPError as error:
        status = error.code
        try:
            body = error.read()
        except Exception:  # pylint: disable=broad-except
            body = b""
    except (URLError, OSError, ValueError) as error:
        detail = "request failed: {0}".format(getattr(error, "reason", None) or error)
    elapsed = round(clock() - started, 3)
    text = to_text(body or b"", errors="surrogate_or_replace")
    ok = status is not None and int(status) in [int(s) for s in expected_status]
    if status is not None and not ok:
        detail = "HTTP {0}, expected {1}; body: {2}".format(status, "/".join(str(s) for s in expected_status), _excerpt(body) or "(empty)")
    elif ok and expected_text and expected_text not in text:
        ok = False
        detail = "HTTP {0} but the body does not contain {1!r}; body: {2}".format(status, expected_text, _excerpt(body) or "(empty)")
    elif ok:
        detail = "HTTP {0}".format(status)
    return {"url": url, "ok": ok, "status": status, "detail": detail, "elapsed_s": elapsed}


def smoke_test(spec, environment, sleep=time.sleep, check=http_check):
    """Run the smoke test of ``spec`` against ``environment``, retrying; returns ``(ok, attempts)``.

    ``spec`` keys: ``url`` (template, see ``render_url``), ``expected_status``
    (list), ``expected_text``, ``retries`` (attempts after the first),
    ``delay`` (seconds between attempts), ``timeout``, ``validate_certs``,
    ``headers``.
    """
    attempts = []
    tries = max(0, int(spec.get("retries") or 0)) + 1
    for number in range(1, tries + 1):
        url = render_url(spec["url"], environment)
        result = check(
            url,
            expected_status=spec.get("expected_status") or [200],
            expected_text=spec.get("expected_text"),
            timeout=spec.get("timeout") or 10,
            validate_certs=spec.get("validate_certs", True),
            headers=spec.get("headers"),
        )
        result["attempt"] = number
        attempts.append(result)
        if result["ok"]:
            return True, attempts
        if number < tries:
            sleep(float(spec.get("delay") or 0))
    return False, attempts


# -- Route 53 weighted records -----------------------------------------------------------------


def fqdn(name):
    """A record name as Route 53 returns it: lower case with a final dot."""
    name = (name or "").strip().lower()
    return name if name.endswith(".") else name + "."


def validate_weights(steps):
    """The weight steps (percent of traffic to the new environment) or ValueError."""
    if not steps:
        raise ValueError("route53.weights must list at least one step, e.g. [10, 50, 100]")
    out = []
    for step in steps:
        try:
            value = int(step)
        except (TypeError, ValueError):
            raise ValueError("route53.weights must be whole percentages; got {0!r}".format(step)) from None
        if value < 1 or value > 100:
            raise ValueError("each step of route53.weights must be between 1 and 100; got {0}".format(value))
        if out and value <= out[-1]:
            raise ValueError("route53.weights must increase step by step; got {0}".format(list(steps)))
        out.append(value)
    if out[-1] != 100:
        raise ValueError("the last step of route53.weights must be 100 (all traffic to the new environment); got {0}".format(list(steps)))
    return out


def weight_plan(steps, live, target):
    """``[{target: w, live: 100 - w}, ...]`` for each step."""
    return [{target: step, live: 100 - step} for step in validate_weights(steps)]


def read_weighted_records(client, zone_id, record_name, set_identifiers):
    """``{set_identifier: record}`` of the weighted records named ``record_name`` (any type)."""
    wanted = fqdn(record_name)
    params = {"HostedZoneId": zone_id, "StartRecordName": wanted, "MaxItems": "100"}
    out = {}
    while True:
        page = _call(client, "list_resource_record_sets", **params)
        records = page.get("ResourceRecordSets", [])
        for record in records:
            if fqdn(record.get("Name")) != wanted:
                continue
            if record.get("SetIdentifier") in set_identifiers and "Weight" in record:
                out[record["SetIdentifier"]] = record
        past = any(fqdn(r.get("Name")) != wanted for r in records)
        if past or not page.get("IsTruncated"):
            return out
        params["StartRecordName"] = page["NextRecordName"]
        if page.get("NextRecordType"):
            params["StartRecordType"] = page["NextRecordType"]
        if page.get("NextRecordIdentifier"):
            params["StartRecordIdentifier"] = page["NextRecordIdentifier"]


def weights_of(records):
    """``{set_identifier: weight}`` of weighted records."""
    return dict((name, int(record.get("Weight", 0))) for name, record in records.items())


def record_targets(records):
    """``{set_identifier: value}`` (the CNAME each weighted record points at)."""
    out = {}
    for name, record in records.items():
        values = [r.get("Value") for r in record.get("ResourceRecords", [])]
        out[name] = values[0] if values else None
    return out


def change_weights(client, zone_id, record_name, *, ttl, targets, deadline, comment=None, sleep=time.sleep):
    """UPSERT one weighted CNAME per environment in one change batch and wait until INSYNC.

    ``targets`` is ``{set_identifier: (cname, weight)}``. One batch makes the
    change atomic: Route 53 never serves a half-applied step.
    """
    changes = []
    for name in sorted(targets):
        value, weight = targets[name]
        changes.append(
            {
                "Action": "UPSERT",
                "ResourceRecordSet": {
                    "Name": fqdn(record_name),
                    "Type": "CNAME",
                    "SetIdentifier": name,
                    "Weight": int(weight),
                    "TTL": int(ttl),
                    "ResourceRecords": [{"Value": value}],
                },
            }
        )
    batch = {"Changes": changes}
    if comment:
        batch["Comment"] = comment[:256]
    found = _call(client, "change_resource_record_sets", HostedZoneId=zone_id, ChangeBatch=batch)
    change = found.get("ChangeInfo", {})
    poller = Poller(deadline, first=1.0, maximum=10.0, sleep=sleep)
    while change.get("Status") != "INSYNC":
        poller.wait(last_seen="change {0} is {1}".format(change.get("Id"), change.get("Status")))
        change = _call(client, "get_change", Id=change["Id"]).get("ChangeInfo", {})
    return change.get("Id")


# -- CloudWatch alarms ---------------------------------------------------------------------------


def alarm_states(client, names):
    """``{name: {"state": ..., "reason": ...}}`` of the alarms; ValueError names the missing ones."""
    names = list(dict.fromkeys(names or []))
    if not names:
        return {}
    out = {}
    params = {"AlarmNames": names, "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
    while True:
        page = _call(client, "describe_alarms", **params)
        for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
            out[alarm["AlarmName"]] = {"state": alarm.get("StateValue"), "reason": alarm.get("StateReason", "")}
        token = page.get("NextToken")
        if not token:
            break
        params["NextToken"] = token
    missing = [name for name in names if name not in out]
    if missing:
        raise ValueError("CloudWatch alarm(s) not found: {0}".format(", ".join(missing)))
    return out


def alarms_firing(states):
    return dict((name, value) for name, value in states.items() if value.get("state") == ALARM)


# -- watch ---------------------------------------------------------------------------------------


class Signal:
    """A bad signal seen by a probe during a watch."""

    def __init__(self, probe, detail, elapsed):
        self.probe = probe
        self.detail = detail
        self.elapsed = elapsed

    def as_dict(self):
        return {"probe": self.probe, "detail": self.detail, "after_s": round(self.elapsed, 3)}

    def __str__(self):
        return "{0} ({1:.1f}s into the window)".format(self.detail, self.elapsed)


def watch(seconds, interval, probes, clock=time.monotonic, sleep=time.sleep):
    """Poll ``probes`` until ``seconds`` have passed; return the first ``Signal`` or None.

    ``probes`` is a list of ``(name, callable)``; a callable returns None when
    all is well, or a text saying what is wrong. Every probe runs at the
    start and at the end of the window, so a zero-length window still checks
    once.
    """
    started = clock()
    polls = 0
    while True:
        polls += 1
        for name, probe in probes:
            detail = probe()
            if detail:
                return Signal(name, detail, clock() - started)
        remaining = float(seconds) - (clock() - started)
        if remaining <= 0:
            return None
        sleep(max(0.0, min(float(interval), remaining)))


class ConsecutiveFailures:
    """Wrap a probe so that it reports only after ``limit`` failures in a row (flaky HTTP)."""

    def __init__(self, probe, limit):
        self.probe = probe
        self.limit = max(1, int(limit))
        self.count = 0

    def __call__(self):
        detail = self.probe()
        if not detail:
            self.count = 0
            return None
        self.count += 1
        if self.count >= self.limit:
            return "{0} ({1} failures in a row)".format(detail, self.count) if self.limit > 1 else detail
        return None


__all__ = [
    "ALARM",
    "STRATEGIES",
    "ConsecutiveFailures",
    "Signal",
    "alarm_states",
    "alarms_firing",
    "change_weights",
    "fqdn",
    "http_check",
    "read_weighted_records",
    "record_targets",
    "render_url",
    "smoke_test",
    "validate_weights",
    "watch",
    "weight_plan",
    "weights_of",
]
