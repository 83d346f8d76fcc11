#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: eb_environment_swap
version_added: 0.1.0
short_description: Promote the idle Elastic Beanstalk environment of a blue/green pair, with health gates and automatic swap-back
description:
  - The blue/green switch of an Elastic Beanstalk application. Of a pair of environments, the B(live) one serves
    the traffic and the B(idle) one receives the next version; this module makes the idle one live.
  - It finds which environment is live from the live CNAME (O(live_cname)), or, with
    O(strategy=route53_weighted), from the weights of the Route 53 records. The environment to promote is
    O(target_environment), or the one of the pair that runs O(version_label).
  - It refuses to promote an environment that is not C(Ready), whose health is not one of O(acceptable_health),
    that does not run O(version_label), while one of O(alarm_names) is in C(ALARM), or that fails the HTTP
    O(smoke_test). A refusal changes nothing and says what was seen (health, causes, recent events, HTTP answers).
  - V(cname_swap) exchanges the CNAMEs of the two environments (C(SwapEnvironmentCNAMEs)), waits until both are
    C(Ready) and checks that the live CNAME now belongs to the promoted environment.
  - V(route53_weighted) shifts the traffic of a weighted CNAME record in steps (O(route53.weights), e.g.
    10 -> 50 -> 100 percent) with a bake time per step, watching the environment's health, the alarms and the
    smoke test; on a bad signal it restores the weights it found and fails.
  - After the switch it watches the promoted environment for O(watch_seconds) (health, alarms, smoke test, the
    CNAME or the weights). On a bad signal it switches back on its own (unless O(swap_back=false)) and fails with
    what it saw. The previous environment is never terminated, it is the rollback.
  - Idempotent. When the environment to promote is already live (it holds the live CNAME, or all the weight)
    and runs O(version_label), nothing is done and the result is C(ok).
  - Check mode reads everything, runs the checks that need no change (not the smoke test) and returns the plan;
    what would refuse the promotion is reported in RV(blockers) rather than failing, because in a
    deploy's check mode the new version is not deployed yet. C(--diff) shows which environment is live before and
    after.
  - Waits for busy environments (C(Launching), C(Updating)) instead of failing with AWS's "invalid state", within
    O(wait_timeout).
author:
  - Fastier platform team (@fastier)
options:
  application_name:
    description: The Elastic Beanstalk application of the two environments.
    type: str
    required: true
    aliases: [app_name]
  live_cname:
    description:
      - The CNAME that users reach, which belongs to the live environment, e.g.
        C(fastier-production.us-east-1.elasticbeanstalk.com), or only its prefix (C(fastier-production)).
      - Required with O(strategy=cname_swap). With O(strategy=route53_weighted) it tells which environment is live
        before the weighted records exist.
    type: str
  environment_names:
    description:
      - The two environments of the blue/green pair, e.g. C([fastier-production-blue, fastier-production-green]).
        One of them may not exist yet (it is then reported as the idle one, and cannot be promoted).
      - Default is the application's environments, which must then be at most two.
    type: list
    elements: str
  target_environment:
    description:
      - The environment to make live.
      - Default is the environment of the pair that runs O(version_label) (the live one when both run it).
      - One of O(target_environment) and O(version_label) is required.
    type: str
  version_label:
    description:
      - The application version the promoted environment must run. An environment on another version is not
        promoted.
    type: str
  strategy:
    description:
      - V(cname_swap) swaps the environments' CNAMEs (instant, all traffic at once; DNS caches follow within the
        record's TTL).
      - V(route53_weighted) shifts traffic gradually with two weighted records in a Route 53 zone (O(route53)).
    type: str
    choices: [cname_swap, route53_weighted]
    default: cname_swap
  acceptable_health:
    description:
      - Healths the promoted environment must have before the switch and keep during the bake and watch windows,
        as colours (V(Green), V(Yellow)...) and/or enhanced health statuses (V(Ok), V(Warning)...).
    type: list
    elements: str
    default: [Green]
    choices: [Green, Yellow, Red, Grey, Ok, Info, Warning, Degraded, Severe, Pending, Unknown, NoData, Suspended]
  smoke_test:
    description:
      - An HTTP check of the environment to promote, run before the switch (with retries) and, with
        O(smoke_test.during_watch), during the bake and watch windows.
    type: dict
    suboptions:
      url:
        description:
          - The URL to GET. C({cname}), C({endpoint_url}) and C({environment_name}) are replaced by those of the
            environment being promoted at the time of the check (before a CNAME swap C({cname}) is the idle
            environment's own CNAME, after it the live one).
        type: str
        required: true
      expected_status:
        description: HTTP statuses that pass.
        type: list
        elements: int
        default: [200]
      expected_text:
        description: Text the response body must contain.
        type: str
      retries:
        description: Attempts after a failed first one before the check fails (in the windows, failures in a row).
        type: int
        default: 3
      delay:
        description: Seconds between attempts.
        type: float
        default: 2
      timeout:
        description: Seconds to wait for each answer.
        type: float
        default: 10
      validate_certs:
        description: Check the server's TLS certificate.
        type: bool
        default: true
      headers:
        description: Extra request headers (e.g. C(Host)).
        type: dict
      during_watch:
        description: Also run the check during the bake and watch windows.
        type: bool
        default: true
  route53:
    description: The weighted records of O(strategy=route53_weighted).
    type: dict
    suboptions:
      zone_id:
        description: Id of the hosted zone.
        type: str
        required: true
      record_name:
        description:
          - The name users reach (not the zone apex, a CNAME cannot be there), e.g. C(app.fastier.example). The
            module writes one weighted CNAME per environment (set identifier = environment name) pointing at the
            environment's CNAME. No other record may have that name.
        type: str
        required: true
      ttl:
        description: TTL of the weighted records, in seconds. Keep it below O(route53.bake_seconds).
        type: int
        default: 60
      weights:
        description: The steps, in percent of the traffic sent to the promoted environment; increasing, ending at 100.
        type: list
        elements: int
        default: [10, 50, 100]
      bake_seconds:
        description: How long each step is watched before the next one.
        type: float
        default: 300
  alarm_names:
    description:
      - CloudWatch alarms (metric or composite) that must not be in C(ALARM) before the switch, during each bake and
        during the watch window. An alarm that does not exist is an error.
    type: list
    elements: str
    default: []
  watch_seconds:
    description: How long the promoted environment is watched after the switch (0 checks once).
    type: float
    default: 60
  poll_interval:
    description: Seconds between two looks at health, alarms and smoke test during the bake and watch windows.
    type: float
    default: 5
  swap_back:
    description: Switch back to the previous environment when the watch window sees a bad signal.
    type: bool
    default: true
  wait_timeout:
    description:
      - The longest, in seconds, the module waits for busy environments before the switch, for the switch itself
        and for a switch back (each Route 53 change too).
    type: int
    default: 900
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - Supports C(check_mode) and C(diff_mode).
  - The previous live environment is kept as it is (same version, same capacity) for a rollback; terminate it with
    M(fastier.platform.eb_environment) and O(fastier.platform.eb_environment#module:state=absent) when the rollback
    window is over.
  - Permissions - C(elasticbeanstalk:Describe*), C(elasticbeanstalk:SwapEnvironmentCNAMEs); with alarms
    C(cloudwatch:DescribeAlarms); with V(route53_weighted) C(route53:ListResourceRecordSets),
    C(route53:ChangeResourceRecordSets), C(route53:GetChange).
seealso:
  - module: fastier.platform.eb_environment
  - module: fastier.platform.eb_environment_info
  - name: Blue/green deployments with Elastic Beanstalk
    description: AWS's description of the CNAME swap.
    link: https://docs.aws.amazon.com/elasticbeanstalk/latest/dg/using-features.CNAMESwap.html
"""

EXAMPLES = r"""
- name: Promote the environment that runs the new version (CNAME swap), after a smoke test
  fastier.platform.eb_environment_swap:
    application_name: fastier-production
    live_cname: fastier-production.us-east-1.elasticbeanstalk.com
    environment_names: [fastier-production-blue, fastier-production-green]
    version_label: "2025.01.15-3f2a9c1"
    strategy: cname_swap
    acceptable_health: [Green]
    smoke_test:
      url: "https://{cname}/healthz"
      expected_status: [200]
      expected_text: '"status": "ok"'
      retries: 5
      delay: 3
      validate_certs: false   # the certificate names the site, not the environment's own CNAME
    alarm_names: [fastier-production-alb-5xx]
    watch_seconds: 300
  register: promotion

- name: Say which environment is live now
  ansible.builtin.debug:
    msg: "{{ promotion.live_environment }} runs {{ promotion.live_version }}; {{ promotion.idle_environment }} is kept for a rollback"

- name: Shift traffic 10 % -> 50 % -> 100 % through weighted records, aborting on the 5xx alarm
  fastier.platform.eb_environment_swap:
    application_name: fastier-production
    environment_names: [fastier-production-blue, fastier-production-green]
    live_cname: fastier-production
    target_environment: fastier-production-green
    version_label: "2025.01.15-3f2a9c1"
    strategy: route53_weighted
    route53:
      zone_id: Z0123456789ABCDEFGHIJ
      record_name: app.fastier.example
      ttl: 60
      weights: [10, 50, 100]
      bake_seconds: 600
    alarm_names: [fastier-production-alb-5xx, fastier-production-p99-latency]
    watch_seconds: 600

- name: Roll back - make the previous environment live again (it still runs the previous version)
  fastier.platform.eb_environment_swap:
    application_name: fastier-production
    live_cname: fastier-production
    environment_names: [fastier-production-blue, fastier-production-green]
    version_label: "2025.01.14-9be01d2"
    watch_seconds: 60

- name: Plan only - which environment is live, and what a promotion would do
  fastier.platform.eb_environment_swap:
    application_name: fastier-production
    live_cname: fastier-production
    environment_names: [fastier-production-blue, fastier-production-green]
    version_label: "2025.01.15-3f2a9c1"
  check_mode: true
  register: plan
"""

RETURN = r"""
live_environment:
  description: The live environment after the run (after a switch back, the previous one).
  returned: always
  type: str
  sample: fastier-production-green
live_version:
  description: The version the live environment runs.
  returned: always
  type: str
  sample: "2025.01.15-3f2a9c1"
idle_environment:
  description: The other environment of the pair after the run (it may not exist yet).
  returned: always
  type: str
  sample: fastier-production-blue
idle_version:
  description: The version the idle environment runs (empty when it does not exist or runs none).
  returned: always
  type: str
  sample: "2025.01.14-9be01d2"
previous_live_environment:
  description: The environment that was live when the run started.
  returned: always
  type: str
  sample: fastier-production-blue
target_environment:
  description: The environment the run promoted (or would promote, or found already live).
  returned: always
  type: str
  sample: fastier-production-green
strategy:
  description: The strategy used.
  returned: always
  type: str
  sample: cname_swap
switched:
  description: Whether traffic was switched to the target environment (and stayed there).
  returned: always
  type: bool
  sample: true
switched_back:
  description: Whether a bad signal after the switch made the module switch back to the previous environment.
  returned: always
  type: bool
  sample: false
plan:
  description: The steps of the promotion, in order (what was done, or in check mode what would be done).
  returned: always
  type: list
  elements: str
  sample:
    - "check fastier-production-green: Ready, health in [Green], version 2025.01.15-3f2a9c1"
    - "swap the CNAMEs of fastier-production-blue and fastier-production-green"
    - "watch fastier-production-green for 60s (health); switch back to fastier-production-blue on a bad signal"
blockers:
  description: What refuses the promotion (in check mode; a real run fails with them instead).
  returned: always
  type: list
  elements: str
  sample: ["fastier-production-green runs version 2025.01.14-9be01d2, not 2025.01.15-3f2a9c1"]
environments:
  description: Both environments of the pair after the run, by name.
  returned: always
  type: dict
  sample:
    fastier-production-green:
      exists: true
      status: Ready
      health: Green
      health_status: Ok
      version_label: "2025.01.15-3f2a9c1"
      cname: fastier-production.us-east-1.elasticbeanstalk.com
      live: true
weights:
  description: The weights of the Route 53 records after the run, by environment (V(route53_weighted) only).
  returned: always
  type: dict
  sample: {"fastier-production-green": 100, "fastier-production-blue": 0}
weight_history:
  description: Each weight step applied, with how long it was baked and its outcome (V(route53_weighted) only).
  returned: always
  type: list
  elements: dict
  sample: [{"weights": {"fastier-production-green": 10, "fastier-production-blue": 90}, "baked_s": 300.0, "outcome": "ok"}]
smoke_test:
  description: Every smoke test attempt before the switch (URL, status, outcome, detail).
  returned: always
  type: list
  elements: dict
  sample:
    - attempt: 1
      url: https://fastier-production-green.us-east-1.elasticbeanstalk.com/healthz
      status: 200
      ok: true
      detail: HTTP 200
      elapsed_s: 0.12
alarms:
  description: The state of each alarm of O(alarm_names) last seen.
  returned: always
  type: dict
  sample: {"fastier-production-alb-5xx": {"state": "OK", "reason": "Threshold Crossed"}}
signal:
  description: The bad signal that stopped the promotion or caused the switch back (probe, detail, seconds into the window).
  returned: when a bake or watch window saw a bad signal
  type: dict
  sample: {"probe": "health", "detail": "fastier-production-green is Ready / Red (Severe): 100 % of requests are 5xx", "after_s": 12.4}
evidence:
  description: What was seen of the target environment when the promotion was refused or switched back (state, causes, recent events).
  returned: on failure
  type: dict
  sample: {"state": "Ready / Red (Severe)", "causes": ["100.0 % of the requests are failing with HTTP 5xx."]}
events:
  description: The events of both environments during the run, oldest first.
  returned: always
  type: list
  elements: dict
  sample:
    - event_date: "2025-01-15T10:12:03+00:00"
      severity: INFO
      message: swapEnvironmentCNAMEs is starting.
      environment_name: fastier-production-green
timings:
  description:
    - Seconds spent per phase - C(discover_s), C(checks_s) (including waits for busy environments), C(smoke_s),
      C(switch_s) (the swap, or the weight steps with their bakes), C(watch_s), C(switch_back_s) - and C(total_s).
  returned: always
  type: dict
  sample: {"discover_s": 0.2, "checks_s": 0.3, "smoke_s": 0.1, "switch_s": 31.0, "watch_s": 60.0, "total_s": 91.7}
progress:
  description: What the module did and saw, with elapsed seconds (also logged).
  returned: when something was done
  type: list
  elements: str
  sample: ["[    0.4s] swapping the CNAMEs of fastier-production-blue and fastier-production-green"]
"""

import contextlib
import time

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # caught by AnsibleAWSModule

from ansible_collections.fastier.platform.plugins.module_utils.base import Deadline
from ansible_collections.fastier.platform.plugins.module_utils.base import FastierAWSModule
from ansible_collections.fastier.platform.plugins.module_utils.base import WaitTimeout
from ansible_collections.fastier.platform.plugins.module_utils.eb_swap import ConsecutiveFailures
from ansible_collections.fastier.platform.plugins.module_utils.eb_swap import alarm_states
from ansible_collections.fastier.platform.plugins.module_utils.eb_swap import alarms_firing
from ansible_collections.fastier.platform.plugins.module_utils.eb_swap import change_weights
from ansible_collections.fastier.platform.plugins.module_utils.eb_swap import http_check
from ansible_collections.fastier.platform.plugins.module_utils.eb_swap import read_weighted_records
from ansible_collections.fastier.platform.plugins.module_utils.eb_swap import record_targets
from ansible_collections.fastier.platform.plugins.module_utils.eb_swap import render_url
from ansible_collections.fastier.platform.plugins.module_utils.eb_swap import smoke_test
from ansible_collections.fastier.platform.plugins.module_utils.eb_swap import validate_weights
from ansible_collections.fastier.platform.plugins.module_utils.eb_swap import watch
from ansible_collections.fastier.platform.plugins.module_utils.eb_swap import weights_of
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import BUSY_STATUSES
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import HEALTH_COLORS
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import HEALTH_STATUSES
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import EnvironmentFailed
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import EventStream
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import call_when_ready
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import cname_matches
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import describe_environments
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import describe_state
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import find_cname_holder
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import find_environment
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import format_events
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import health_accepted
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import health_causes
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import recent_events
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import swap_environment_cnames
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import wait_for_environment
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import wait_until_not_busy

GONE_STATUSES = ("Terminating", "Terminated")


class Abort(Exception):
    """Stop the run and fail with ``message`` (the manager adds the result keys)."""

    def __init__(self, message, **extra):
        super(Abort, self).__init__(message)
        self.extra = extra


class SwapManager:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.app = module.params["application_name"]
        self.strategy = module.params["strategy"]
        self.acceptable = module.params["acceptable_health"]
        self.client = module.client("elasticbeanstalk")
        self._route53 = None
        self._cloudwatch = None
        self.deadline = Deadline(module.params["wait_timeout"], "the environments")
        self.timings = {}
        self.plan = []
        self.blockers = []
        self.streams = {}
        self.smoke_attempts = []
        self.alarms = {}
        self.weight_history = []
        self.weights = {}
        self.records = {}
        self.switched = False
        self.switched_back = False
        self.signal = None
        self.pair = []
        self.by_name = {}
        self.live = None
        self.target = None
        self.previous_live = None
        self.initial_weights = {}

    # -- plumbing -------------------------------------------------------------------------

    @property
    def route53(self):
        if self._route53 is None:
            self._route53 = self.module.client("route53")
        return self._route53

    @property
    def cloudwatch(self):
        if self._cloudwatch is None:
            self._cloudwatch = self.module.client("cloudwatch")
        return self._cloudwatch

    def _timed(self, key, started):
        self.timings[key] = round(self.timings.get(key, 0.0) + time.monotonic() - started, 3)

    def _timings(self):
        out = dict(self.timings)
        out["total_s"] = self.module.elapsed()
        return out

    def _deadline(self, what):
        self.deadline.what = what
        return self.deadline

    def fresh_deadline(self):
        """A new wait_timeout for the way back: it must not inherit what the way forward used up."""
        self.deadline = Deadline(self.params["wait_timeout"], "the switch back")

    def _on_event(self, event):
        self.module.progress("event {0} {1}: {2}".format(event.get("environment_name", ""), event.get("severity"), event.get("message")))

    def _events(self):
        merged = []
        for stream in self.streams.values():
            merged.extend(stream.events)
        merged.sort(key=lambda e: (e.get("event_date") is None, e.get("event_date") or ""))
        return merged

    def _poll_events(self):
        for stream in self.streams.values():
            with contextlib.suppress(BotoCoreError, ClientError):  # events are evidence, never a reason to fail
                stream.poll()

    def describe(self, name):
        environment = self.by_name.get(name)
        if environment is None:
            return None
        fresh = find_environment(self.client, environment_id=environment["EnvironmentId"])
        if fresh is not None and fresh.get("Status") != "Terminated":
            self.by_name[name] = fresh
            return fresh
        self.by_name.pop(name, None)
        return None

    def other(self, name):
        others = [n for n in self.pair if n != name]
        return others[0] if others else ""

    def summary(self):
        out = {}
        for name in self.pair:
            environment = self.by_name.get(name)
            entry = {"exists": environment is not None}
            if environment is not None:
                entry.update(
                    {
                        "environment_id": environment.get("EnvironmentId"),
                        "status": environment.get("Status"),
                        "health": environment.get("Health"),
                        "health_status": environment.get("HealthStatus", ""),
                        "version_label": environment.get("VersionLabel", ""),
                        "cname": environment.get("CNAME", ""),
                    }
                )
            entry["live"] = name == self.live
            if self.strategy == "route53_weighted":
                entry["weight"] = self.weights.get(name)
            out[name] = entry
        return out

    def version_of(self, name):
        return (self.by_name.get(name) or {}).get("VersionLabel", "")

    def state(self):
        idle = self.other(self.live) if self.live else ""
        return {
            "live_environment": self.live or "",
            "live_version": self.version_of(self.live) if self.live else "",
            "idle_environment": idle,
            "idle_version": self.version_of(idle) if idle else "",
        }

    def result(self):
        out = self.state()
        out.update(
            previous_live_environment=self.previous_live or "",
            target_environment=self.target or "",
            strategy=self.strategy,
            switched=self.switched,
            switched_back=self.switched_back,
            plan=self.plan,
            blockers=self.blockers,
            environments=self.summary(),
            weights=self.weights if self.strategy == "route53_weighted" else {},
            weight_history=self.weight_history,
            smoke_test=self.smoke_attempts,
            alarms=self.alarms,
            events=self._events(),
            timings=self._timings(),
        )
        if self.signal is not None:
            out["signal"] = self.signal.as_dict()
        return out

    def diff_state(self, live):
        out = {"live_environment": live or "", "live_version": self.version_of(live) if live else ""}
        if self.strategy == "route53_weighted":
            out["weights"] = dict(self.weights)
        return out

    def fail(self, message, **extra):
        result = self.result()
        result.update(extra)
        self.module.fail_json(msg=message, **result)

    def fail_aws(self, error, message):
        result = self.result()
        self.module.fail_json_aws(error, msg=message, **result)

    # -- discovery ------------------------------------------------------------------------

    def discover(self):
        started = time.monotonic()
        environments = describe_environments(self.client, self.app)
        names = self.params["environment_names"]
        if names:
            names = list(dict.fromkeys(names))
            if len(names) != 2:
                raise Abort("environment_names must name two different environments (the blue/green pair); got {0}".format(self.params["environment_names"]))
        else:
            names = sorted(e["EnvironmentName"] for e in environments)
            if len(names) > 2:
                raise Abort(
                    "Application {0} has {1} environments ({2}); say which two are the blue/green pair with environment_names.".format(
                        self.app, len(names), ", ".join(names)
                    )
                )
            if not names:
                raise Abort("Application {0} has no environment: there is nothing to promote.".format(self.app))
        self.pair = names
        self.by_name = dict((e["EnvironmentName"], e) for e in environments if e["EnvironmentName"] in names)

        live_cname = self.params["live_cname"]
        holder = find_cname_holder(environments, live_cname) if live_cname else None
        if holder is not None and holder["EnvironmentName"] not in names:
            raise Abort(
                "The live CNAME {0} belongs to {1}, which is not one of {2}; check live_cname and environment_names.".format(
                    holder.get("CNAME"), holder["EnvironmentName"], ", ".join(names)
                )
            )
        if self.strategy == "route53_weighted":
            self.live = self.discover_weights(holder)
        else:
            if holder is None:
                raise Abort(
                    "No environment of application {0} holds the live CNAME {1} (environments: {2}). Check live_cname, or create the live "
                    "environment with that CNAME prefix (fastier.platform.beanstalk role).".format(
                        self.app, live_cname, ", ".join("{0} ({1})".format(e["EnvironmentName"], e.get("CNAME", "no CNAME")) for e in environments) or "none"
                    )
                )
            self.live = holder["EnvironmentName"]
        self.previous_live = self.live
        self.target = self.choose_target()
        self._timed("discover_s", started)

    def discover_weights(self, holder):
        spec = self.params["route53"]
        self.records = read_weighted_records(self.route53, spec["zone_id"], spec["record_name"], self.pair)
        self.weights = weights_of(self.records)
        if self.weights and max(self.weights.values()) > 0:
            return sorted(self.weights, key=lambda n: (-self.weights[n], n != (holder or {}).get("EnvironmentName"), n))[0]
        if holder is not None:
            return holder["EnvironmentName"]
        target = self.params["target_environment"]
        if target and target in self.pair:
            return self.other(target)
        raise Abort(
            "Cannot tell which environment is live: the weighted records {0} do not exist yet and no live_cname is given (or none holds it). "
            "Give live_cname or target_environment.".format(spec["record_name"])
        )

    def choose_target(self):
        target = self.params["target_environment"]
        version = self.params["version_label"]
        if target:
            if target not in self.pair:
                raise Abort("target_environment {0} is not one of the pair {1}.".format(target, ", ".join(self.pair)))
            return target
        running = [n for n in self.pair if self.version_of(n) == version]
        if self.live in running:
            return self.live
        if running:
            return running[0]
        # Nobody runs it yet: the idle environment is the one it would go to.
        idle = self.other(self.live)
        self.blockers.append(
            "no environment of the pair runs version {0} (live {1} runs {2}{3}); deploy it to the idle environment first".format(
                version,
                self.live,
                self.version_of(self.live) or "no version",
                ", idle {0} runs {1}".format(idle, self.version_of(idle) or "no version") if idle in self.by_name else ", idle {0} does not exist".format(idle),
            )
        )
        return idle

    def already_live(self):
        """Whether the target already takes all the traffic with the right version."""
        if self.blockers or self.target != self.live:
            return False
        version = self.params["version_label"]
        if version and self.version_of(self.target) != version:
            return False
        if self.strategy == "route53_weighted":
            return (
                self.weights.get(self.target) is not None
                and self.weights.get(self.target, 0) > 0
                and all(self.weights.get(n, 0) == 0 for n in self.pair if n != self.target)
                and self.records_point_right()
            )
        return True

    def records_point_right(self):
        targets = record_targets(self.records)
        for name in self.pair:
            environment = self.by_name.get(name)
            if name in targets and environment is not None and targets[name] != environment.get("CNAME"):
                return False
        return True

    # -- checks before the switch ------------------------------------------------------------

    def check_target(self):
        """Refusals that need no change (health, status, version, alarms), as blockers."""
        started = time.monotonic()
        name = self.target
        environment = self.by_name.get(name)
        version = self.params["version_label"]
        if environment is None:
            if not self.blockers:  # choose_target already said that nobody runs the version
                self.blockers.append("environment {0} does not exist; deploy the version to it first".format(name))
        else:
            if not self.module.check_mode and environment.get("Status") in BUSY_STATUSES:
                environment = self.wait_not_busy(name)
            if environment is None:
                self.blockers.append("environment {0} disappeared".format(name))
            else:
                if environment.get("Status") != "Ready":
                    self.blockers.append("environment {0} is {1}, not Ready".format(name, describe_state(environment)))
                elif not health_accepted(environment, self.acceptable):
                    self.blockers.append("environment {0} is {1}; acceptable health: {2}".format(name, describe_state(environment), ", ".join(self.acceptable)))
                if version and environment.get("VersionLabel") != version and not any("runs version" in b for b in self.blockers):
                    self.blockers.append("environment {0} runs version {1}, not {2}".format(name, environment.get("VersionLabel") or "none", version))
        if self.strategy == "cname_swap" and self.live and self.live != name and not self.module.check_mode:
            self.wait_not_busy(self.live)
        self.check_alarms()
        self._timed("checks_s", started)

    def check_alarms(self):
        names = self.params["alarm_names"]
        if not names:
            return
        try:
            self.alarms = alarm_states(self.cloudwatch, names)
        except ValueError as e:
            raise Abort("{0}. Fix alarm_names (a missing alarm would silently turn that gate off).".format(e)) from None
        for alarm, value in sorted(alarms_firing(self.alarms).items()):
            self.blockers.append("alarm {0} is in ALARM ({1})".format(alarm, value.get("reason") or "no reason given"))

    def wait_not_busy(self, name):
        environment = self.by_name.get(name)
        if environment is None or environment.get("Status") not in BUSY_STATUSES:
            return environment
        self.module.progress("environment {0} is {1}: waiting for it".format(name, describe_state(environment)))
        try:
            what = "environment {0} to finish its current operation".format(name)
            fresh = wait_until_not_busy(self.client, environment["EnvironmentId"], self._deadline(what))
        except WaitTimeout as e:
            raise Abort("{0}. Another operation is still running on {1}; run again once it is Ready.".format(e, name)) from None
        if fresh is None or fresh.get("Status") == "Terminated":
            self.by_name.pop(name, None)
            return None
        self.by_name[name] = fresh
        return fresh

    def evidence(self, name):
        environment = self.by_name.get(name)
        if environment is None:
            return {"environment_name": name, "state": "not found"}
        out = {"environment_name": name, "state": describe_state(environment), "version_label": environment.get("VersionLabel", "")}
        try:
            out["causes"] = health_causes(self.client, name)
        except (BotoCoreError, ClientError):
            out["causes"] = []
        try:
            out["events"] = recent_events(self.client, environment["EnvironmentId"], limit=10)
        except (BotoCoreError, ClientError):
            out["events"] = []
        return out

    def refuse(self):
        name = self.target
        evidence = self.evidence(name)
        message = "Not promoting {0}: {1}.".format(name, "; ".join(self.blockers))
        if evidence.get("causes"):
            message += " Causes: {0}.".format("; ".join(evidence["causes"]))
        if evidence.get("events"):
            message += " Recent events of {0}: {1}.".format(name, format_events(evidence["events"]))
        message += " {0} is still live; nothing was changed.".format(self.live)
        raise Abort(message, evidence=evidence)

    def run_smoke_test(self):
        spec = self.params["smoke_test"]
        if not spec:
            return
        started = time.monotonic()
        environment = self.by_name.get(self.target)
        self.module.progress("smoke test of {0}: GET {1}".format(self.target, render_url(spec["url"], environment)))
        ok, attempts = smoke_test(spec, environment)
        self.smoke_attempts.extend(attempts)
        self._timed("smoke_s", started)
        if not ok:
            last = attempts[-1]
            raise Abort(
                "Not promoting {0}: the smoke test failed {1} time(s); last: GET {2} -> {3}. {4} is still live; nothing was changed.".format(
                    self.target, len(attempts), last["url"], last["detail"], self.live
                ),
                evidence={"environment_name": self.target, "smoke_test": attempts},
            )

    # -- plan ------------------------------------------------------------------------------------

    def make_plan(self):
        name, live = self.target, self.live
        version = self.params["version_label"]
        checks = ["Ready", "health in [{0}]".format(", ".join(self.acceptable))]
        if version:
            checks.append("version {0}".format(version))
        if self.params["alarm_names"]:
            checks.append("alarms {0} not in ALARM".format(", ".join(self.params["alarm_names"])))
        self.plan.append("check {0}: {1}".format(name, ", ".join(checks)))
        spec = self.params["smoke_test"]
        if spec:
            self.plan.append("smoke test GET {0} (expect {1})".format(spec["url"], "/".join(str(s) for s in spec["expected_status"])))
        if self.strategy == "cname_swap":
            self.plan.append("swap the CNAMEs of {0} and {1}: {2} moves to {1}".format(live, name, self.params["live_cname"]))
        else:
            route53 = self.params["route53"]
            for step in validate_weights(route53["weights"]):
                self.plan.append(
                    "set weights of {0}: {1} {2}, {3} {4}; bake {5:g}s".format(route53["record_name"], name, step, live, 100 - step, route53["bake_seconds"])
                )
        probes = ["health"]
        if self.params["alarm_names"]:
            probes.append("alarms")
        if spec and spec["during_watch"]:
            probes.append("smoke test")
        self.plan.append(
            "watch {0} for {1:g}s ({2}){3}".format(
                name,
                self.params["watch_seconds"],
                ", ".join(probes),
                "; switch back to {0} on a bad signal".format(live) if self.params["swap_back"] else "",
            )
        )

    # -- probes for the bake and watch windows -----------------------------------------------------

    def probes(self, stage):
        name = self.target

        def health():
            self._poll_events()
            environment = self.describe(name)
            if environment is None or environment.get("Status") in GONE_STATUSES:
                return "{0} is {1}".format(name, describe_state(environment))
            if not health_accepted(environment, self.acceptable):
                causes = []
                with contextlib.suppress(BotoCoreError, ClientError):
                    causes = health_causes(self.client, name)
                return "{0} is {1}{2}".format(name, describe_state(environment), ": " + "; ".join(causes) if causes else "")
            return None

        def alarms():
            self.alarms = alarm_states(self.cloudwatch, self.params["alarm_names"])
            firing = alarms_firing(self.alarms)
            if firing:
                return "; ".join("alarm {0} is in ALARM ({1})".format(n, v.get("reason") or "no reason") for n, v in sorted(firing.items()))
            return None

        def cname():
            environment = self.by_name.get(name)
            if environment is not None and not cname_matches(environment.get("CNAME"), self.params["live_cname"]):
                return "{0} no longer holds {1} (it has {2})".format(name, self.params["live_cname"], environment.get("CNAME"))
            return None

        def smoke():
            spec = self.params["smoke_test"]
            url = render_url(spec["url"], self.by_name.get(name))
            check = http_check(
                url,
                expected_status=spec["expected_status"],
                expected_text=spec["expected_text"],
                timeout=spec["timeout"],
                validate_certs=spec["validate_certs"],
                headers=spec["headers"],
            )
            return None if check["ok"] else "smoke test GET {0} -> {1}".format(url, check["detail"])

        out = [("health", health)]
        if self.strategy == "cname_swap" and stage == "watch":
            out.append(("cname", cname))
        if self.params["alarm_names"]:
            out.append(("alarms", alarms))
        spec = self.params["smoke_test"]
        if spec and spec["during_watch"]:
            out.append(("smoke_test", ConsecutiveFailures(smoke, (spec["retries"] or 0) + 1)))
        return out

    # -- switch: CNAME swap --------------------------------------------------------------------------

    def swap(self, source, destination, what, destination_health=None):
        """Swap the CNAMEs of two environments and wait until both are Ready; ``destination`` gets the live CNAME.

        ``destination_health``: healths the destination must keep (default
        ``acceptable_health``; a switch back accepts any, it must happen).
        """
        src, dst = self.by_name[source], self.by_name[destination]
        self.module.progress("{0}: swapping the CNAMEs of {1} and {2}".format(what, source, destination))

        def busy(_error):
            self.module.progress("{0} or {1} is busy; waiting before the swap".format(source, destination))

        call_when_ready(
            lambda: swap_environment_cnames(self.client, src["EnvironmentId"], dst["EnvironmentId"]),
            self.client,
            dst["EnvironmentId"],
            self._deadline("environments {0} and {1} to accept the CNAME swap".format(source, destination)),
            on_busy=busy,
        )
        wanted = self.acceptable if destination_health is None else destination_health
        for name, acceptable, initial in ((destination, wanted, dst), (source, (), src)):
            fresh = wait_for_environment(
                self.client,
                initial["EnvironmentId"],
                self._deadline("environment {0} to be Ready after the CNAME swap".format(name)),
                target_status="Ready",
                acceptable_health=acceptable,
                events=self.streams.get(name),
                initial=initial,
                after_change=True,
            )
            self.by_name[name] = fresh
        holder = self.by_name[destination]
        if not cname_matches(holder.get("CNAME"), self.params["live_cname"]):
            raise EnvironmentFailed(
                "the CNAME swap completed but {0} has {1}, not {2}".format(destination, holder.get("CNAME"), self.params["live_cname"]), holder, self._events()
            )

    def switch_cname(self):
        started = time.monotonic()
        try:
            self.swap(self.live, self.target, "switch")
        except (EnvironmentFailed, WaitTimeout) as e:
            self._timed("switch_s", started)
            self.after_failed_switch("the CNAME swap failed: {0}".format(e))
        self._timed("switch_s", started)
        self.live = self.target
        self.switched = True

    def after_failed_switch(self, reason):
        """The switch itself went wrong: make sure the previous environment is live, then fail."""
        previous = self.previous_live
        self.fresh_deadline()
        try:
            self._poll_events()
            # A swap still in flight would move the CNAME after we looked: wait until both are settled.
            for name in self.pair:
                self.describe(name)
                self.wait_not_busy(name)
            fresh = dict((n, self.describe(n)) for n in self.pair)
            holder = [n for n, e in fresh.items() if e is not None and cname_matches(e.get("CNAME"), self.params["live_cname"])]
        except (BotoCoreError, ClientError, WaitTimeout) as e:
            raise Abort(
                "{0}; could not tell which environment holds {1} afterwards ({2}). Check it by hand.".format(reason, self.params["live_cname"], e)
            ) from None
        if holder == [previous]:
            self.live = previous
            raise Abort(
                "{0}. {1} still holds {2}: nothing was switched.".format(reason, previous, self.params["live_cname"]),
                evidence=self.evidence(self.target),
            )
        self.live = holder[0] if holder else None
        self.switch_back(reason, self.evidence(self.target))

    # -- switch: Route 53 weights -----------------------------------------------------------------------

    def set_weights(self, weights, why):
        spec = self.params["route53"]
        targets = {}
        for name, weight in weights.items():
            environment = self.by_name.get(name)
            if environment is None:
                continue
            targets[name] = (environment["CNAME"], weight)
        self.module.progress("{0}: weights of {1}: {2}".format(why, spec["record_name"], ", ".join("{0} {1}".format(n, w) for n, w in sorted(targets.items()))))
        change_weights(
            self.route53,
            spec["zone_id"],
            spec["record_name"],
            ttl=spec["ttl"],
            targets=targets,
            deadline=self._deadline("the Route 53 change of {0} to be INSYNC".format(spec["record_name"])),
            comment="fastier.platform.eb_environment_swap: {0}".format(why),
        )
        self.weights = dict((n, w) for n, (_v, w) in targets.items())

    def switch_weights(self):
        started = time.monotonic()
        spec = self.params["route53"]
        name, live = self.target, self.live
        initial = dict(self.weights) if self.weights else {}
        initial.setdefault(live, 100 if not self.weights else 0)
        initial.setdefault(name, 0)
        self.initial_weights = initial
        for step in validate_weights(spec["weights"]):
            weights = {name: step, live: 100 - step}
            try:
                self.set_weights(weights, "step {0}%".format(step))
            except (BotoCoreError, ClientError, WaitTimeout) as e:
                self._timed("switch_s", started)
                self.restore_weights("Route 53 refused the weights {0}: {1}".format(weights, e))
            entry = {"weights": dict(weights), "baked_s": 0.0, "outcome": "ok"}
            self.weight_history.append(entry)
            baked = time.monotonic()
            signal = watch(spec["bake_seconds"], self.params["poll_interval"], self.probes("bake"))
            entry["baked_s"] = round(time.monotonic() - baked, 3)
            if signal is not None:
                entry["outcome"] = "aborted: {0}".format(signal.detail)
                self.signal = signal
                self._timed("switch_s", started)
                self.restore_weights("bad signal at {0}% on {1}: {2}".format(step, name, signal))
        self._timed("switch_s", started)
        self.live = name
        self.switched = True
        self.verify_weights()

    def verify_weights(self):
        spec = self.params["route53"]
        records = read_weighted_records(self.route53, spec["zone_id"], spec["record_name"], self.pair)
        weights = weights_of(records)
        if weights.get(self.target) != 100 or any(weights.get(n, 0) != 0 for n in self.pair if n != self.target):
            self.switch_back("after the last step the records of {0} have the weights {1}".format(spec["record_name"], weights), self.evidence(self.target))
        self.records = records
        self.weights = weights

    def restore_weights(self, reason):
        """Put back the weights found at the start, then fail."""
        started = time.monotonic()
        self.fresh_deadline()
        try:
            self.set_weights(self.initial_weights, "restore")
        except (BotoCoreError, ClientError, WaitTimeout) as e:
            self._timed("switch_back_s", started)
            raise Abort(
                "{0}; RESTORING THE WEIGHTS FAILED ({1}). Set the weights of {2} back by hand: {3}.".format(
                    reason, e, self.params["route53"]["record_name"], self.initial_weights
                ),
                evidence=self.evidence(self.target),
            ) from None
        self._timed("switch_back_s", started)
        self.live = self.previous_live
        self.switched = False
        self.switched_back = True
        self.weight_history.append({"weights": dict(self.initial_weights), "baked_s": 0.0, "outcome": "restored"})
        raise Abort(
            "Promotion of {0} aborted: {1}. The weights are back to {2}: {3} takes the traffic again.".format(
                self.target, reason, ", ".join("{0} {1}".format(n, w) for n, w in sorted(self.initial_weights.items())), self.previous_live
            ),
            evidence=self.evidence(self.target),
        )

    # -- after the switch --------------------------------------------------------------------------------

    def watch_window(self):
        seconds = self.params["watch_seconds"]
        started = time.monotonic()
        self.module.progress("watching {0} for {1:g}s".format(self.target, seconds))
        signal = watch(seconds, self.params["poll_interval"], self.probes("watch"))
        self._timed("watch_s", started)
        if signal is None:
            return
        self.signal = signal
        evidence = self.evidence(self.target)
        reason = "bad signal during the watch window of {0}: {1}".format(self.target, signal)
        if not self.params["swap_back"]:
            raise Abort("{0}. swap_back is off: {1} stays live; roll back by hand if needed.".format(reason, self.target), evidence=evidence)
        self.switch_back(reason, evidence)

    def switch_back(self, reason, evidence):
        """Make the previous environment live again, then fail with ``reason`` and the evidence."""
        previous = self.previous_live
        if self.strategy == "route53_weighted":
            self.restore_weights(reason)
        started = time.monotonic()
        self.fresh_deadline()
        try:
            self.describe(previous)
            self.describe(self.target)
            self.swap(self.target, previous, "switch back", destination_health=())
        except (EnvironmentFailed, WaitTimeout, BotoCoreError, ClientError) as e:
            self._timed("switch_back_s", started)
            raise Abort(
                "{0}; THE SWITCH BACK FAILED ({1}). Check which environment holds {2} and swap back by hand "
                "(aws elasticbeanstalk swap-environment-cnames --source-environment-name {3} --destination-environment-name {4}).".format(
                    reason, e, self.params["live_cname"], self.target, previous
                ),
                evidence=evidence,
            ) from None
        self._timed("switch_back_s", started)
        self.live = previous
        self.switched = False
        self.switched_back = True
        raise Abort(
            "{0}. Switched back: {1} (version {2}) holds {3} again; {4} is kept as it is for investigation.".format(
                reason, previous, self.version_of(previous) or "none", self.params["live_cname"], self.target
            ),
            evidence=evidence,
        )

    # -- the run -----------------------------------------------------------------------------------------

    def start_streams(self):
        for name in self.pair:
            environment = self.by_name.get(name)
            if environment is None:
                continue
            stream = EventStream(self.client, on_event=self._on_event, EnvironmentId=environment["EnvironmentId"])
            stream.prime()
            self.streams[name] = stream

    def run(self):
        self.discover()
        before = self.diff_state(self.live)
        if self.already_live():
            self.module.progress("{0} is live and runs {1}: nothing to do".format(self.target, self.version_of(self.target) or "no version"))
            self.module.exit_with_diff(False, before, before, **self.result())
        if self.strategy == "route53_weighted" and self.target == self.live and not self.blockers:
            # Live by CNAME but the weighted records are missing or stale: point them all at the target.
            self.plan.append("set weights of {0}: {1} 100, {2} 0".format(self.params["route53"]["record_name"], self.target, self.other(self.target)))
        else:
            self.make_plan()
        if not self.module.check_mode:
            self.start_streams()
        self.check_target()
        after = self.diff_state(self.target)
        # The plan: the target live with the version asked for (in check mode it may not be deployed yet).
        after["live_version"] = self.params["version_label"] or after["live_version"]
        if self.strategy == "route53_weighted":
            after["weights"] = dict((n, 100 if n == self.target else 0) for n in self.pair if n in self.by_name)
        if self.module.check_mode:
            self.module.exit_with_diff(True, before, after, **self.result())
        if self.blockers:
            self.refuse()
        if self.target == self.live:
            self.initial_weights = dict(self.weights)
            self.set_weights(dict((n, 100 if n == self.target else 0) for n in self.pair), "point the records at the live environment")
            self.verify_weights()
            self.module.exit_with_diff(True, before, self.diff_state(self.target), **self.result())
        self.run_smoke_test()
        if self.strategy == "cname_swap":
            self.switch_cname()
        else:
            self.switch_weights()
        self.watch_window()
        self._poll_events()
        for name in self.pair:
            self.describe(name)
        self.module.exit_with_diff(True, before, self.diff_state(self.live), **self.result())


def main():
    health_choices = list(HEALTH_COLORS + HEALTH_STATUSES)
    argument_spec = dict(
        application_name=dict(type="str", required=True, aliases=["app_name"]),
        live_cname=dict(type="str"),
        environment_names=dict(type="list", elements="str"),
        target_environment=dict(type="str"),
        version_label=dict(type="str"),
        strategy=dict(type="str", default="cname_swap", choices=["cname_swap", "route53_weighted"]),
        acceptable_health=dict(type="list", elements="str", default=["Green"], choices=health_choices),
        smoke_test=dict(
            type="dict",
            options=dict(
                url=dict(type="str", required=True),
                expected_status=dict(type="list", elements="int", default=[200]),
                expected_text=dict(type="str"),
                retries=dict(type="int", default=3),
                delay=dict(type="float", default=2),
                timeout=dict(type="float", default=10),
                validate_certs=dict(type="bool", default=True),
                headers=dict(type="dict"),
                during_watch=dict(type="bool", default=True),
            ),
        ),
        route53=dict(
            type="dict",
            options=dict(
                zone_id=dict(type="str", required=True),
                record_name=dict(type="str", required=True),
                ttl=dict(type="int", default=60),
                weights=dict(type="list", elements="int", default=[10, 50, 100]),
                bake_seconds=dict(type="float", default=300),
            ),
        ),
        alarm_names=dict(type="list", elements="str", default=[]),
        watch_seconds=dict(type="float", default=60),
        poll_interval=dict(type="float", default=5),
        swap_back=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=900),
    )
    module = FastierAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_one_of=[["target_environment", "version_label"]],
        required_if=[["strategy", "cname_swap", ["live_cname"]], ["strategy", "route53_weighted", ["route53"]]],
    )
    params = module.params
    if params["route53"]:
        try:
            validate_weights(params["route53"]["weights"])
        except ValueError as e:
            module.fail_json(msg=str(e))
        zone = params["route53"]["zone_id"]
        params["route53"]["zone_id"] = zone.split("/")[-1]
        if params["route53"]["bake_seconds"] < params["route53"]["ttl"]:
            module.warn(
                "route53.bake_seconds ({0:g}) is shorter than the records' TTL ({1}): resolvers may not have seen a step before the next one".format(
                    params["route53"]["bake_seconds"], params["route53"]["ttl"]
                )
            )
    for key in ("watch_seconds", "poll_interval"):
        if params[key] < 0:
            module.fail_json(msg="{0} must not be negative; got {1}".format(key, params[key]))
    if params["poll_interval"] == 0:
        params["poll_interval"] = 0.5
    manager = SwapManager(module)
    try:
        manager.run()
    except Abort as e:
        manager.fail(str(e), **e.extra)
    except WaitTimeout as e:
        manager.fail("{0}. The operation may continue in AWS; run again later or raise wait_timeout.".format(e))
    except ClientError as e:
        manager.fail_aws(e, "Elastic Beanstalk, Route 53 or CloudWatch refused a call for application {0}".format(manager.app))
    except BotoCoreError as e:
        manager.fail_aws(e, "Cannot reach AWS for application {0}".format(manager.app))


if __name__ == "__main__":
    main()
