#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: eb_environment
version_added: 0.1.0
short_description: Create, update, restart or terminate an Elastic Beanstalk environment
description:
  - Creates an environment, or updates the one that exists with that name in the application
    (the application version it runs, option settings as a nested dict C(namespace -> option -> value),
    options to reset to their defaults, the platform, the description and the tags).
  - Only the options given in O(option_settings) are compared with the live configuration; the others
    are left as they are. O(options_to_remove) resets options explicitly.
  - AWS does not accept a new version and new settings in one update, so the module changes the tags,
    then the configuration, then the version, waiting for the environment to be C(Ready) between steps.
  - When the environment is busy (C(Launching), C(Updating)...) the module waits for it, within
    O(wait_timeout), instead of failing with AWS's "invalid state for this operation".
  - With O(wait=true) the module waits until the environment is C(Ready) with one of the healths of
    O(wait_for_health). It streams the environment's events into the result and fails as soon as an
    C(ERROR) event appears or the health turns Red during the operation, with those events.
  - In check mode the module reads the environment, validates new settings with Elastic Beanstalk
    (C(ValidateConfigurationSettings), a read-only call) and reports the planned changes; it makes no
    change. With C(--diff) it shows, for changed keys only, the values before and after.
author:
  - Fastier platform team (@fastier)
options:
  name:
    description: Name of the environment (4 to 40 characters).
    type: str
    required: true
    aliases: [environment_name]
  application_name:
    description: Name of the application the environment belongs to.
    type: str
    required: true
    aliases: [app_name]
  state:
    description:
      - V(present) creates or updates the environment.
      - V(absent) terminates it (and its resources) and waits for C(Terminated) when O(wait=true).
      - V(restarted) restarts the application server on every instance (C(RestartAppServer)); it always reports a change.
    type: str
    choices: [present, absent, restarted]
    default: present
  version_label:
    description:
      - The application version to run. It must exist and must not be C(Failed); a version still processing is waited for.
      - Without it a new environment runs the platform's sample application, and an existing one keeps its version.
    type: str
  solution_stack_name:
    description:
      - The platform, e.g. C(64bit Amazon Linux 2023 v4.6.0 running Python 3.11). Required (or O(platform_arn)) to create an environment.
      - A different value on an existing environment is a platform update. A newer version of the same
        platform branch (what managed platform updates install) counts as up to date; the module never downgrades.
    type: str
  platform_arn:
    description: The platform as an ARN, instead of O(solution_stack_name). Compared like O(solution_stack_name).
    type: str
  description:
    description: Description of the environment.
    type: str
  tier:
    description: The environment tier. It is set at creation; AWS does not allow changing it afterwards (the module fails if it differs).
    type: str
    choices: [WebServer, Worker]
  cname_prefix:
    description:
      - The CNAME prefix (C(<prefix>.<region>.elasticbeanstalk.com)), used only when the environment is created.
      - It is checked with C(CheckDNSAvailability) first; when it is taken the module fails and suggests a free one.
      - It is not compared afterwards, because a blue/green swap moves CNAMEs between environments.
    type: str
  option_settings:
    description:
      - Option settings as a nested dict, C(namespace -> option name -> value).
      - Values may be strings, numbers, booleans (sent as C(true)/C(false)) or lists (sent comma-separated).
      - Do not put secrets in C(aws:elasticbeanstalk:application:environment) properties; they are visible
        in the console, in the result and in diffs. Pass a Secrets Manager ARN instead.
    type: dict
  options_to_remove:
    description:
      - Options to reset to their default (environment properties are deleted), as C(namespace:OptionName),
        e.g. C(aws:elasticbeanstalk:application:environment:OLD_FLAG).
      - An option that is already at its default (or absent) is not a change.
    type: list
    elements: str
  wait:
    description: Wait until the environment reaches the state asked for (and, for V(present) and V(restarted), a health of O(wait_for_health)).
    type: bool
    default: true
  wait_timeout:
    description:
      - The longest the module waits in total, in seconds, for a busy environment before changing it,
        between update steps, and for the final state.
    type: int
    default: 1200
  wait_for_health:
    description:
      - Healths accepted at the end of the wait, as colours (V(Green), V(Yellow), V(Red), V(Grey)) and/or
        enhanced health statuses (V(Ok), V(Warning), V(Degraded)...).
      - Unless V(Red) (or V(Degraded)/V(Severe)) is listed, an environment that turns Red during the wait fails the task at once.
    type: list
    elements: str
    default: [Green]
    choices: [Green, Yellow, Red, Grey, Ok, Info, Warning, Degraded, Severe, Pending, Unknown, NoData, Suspended]
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
notes:
  - Supports C(check_mode) and C(diff_mode).
  - Tags whose keys start with C(aws:) or C(elasticbeanstalk:) are managed by AWS and ignored. The C(Name)
    tag Elastic Beanstalk puts on environments is never purged.
seealso:
  - module: fastier.platform.eb_environment_info
  - module: fastier.platform.eb_application_version
"""

EXAMPLES = r"""
- name: Create or update the live environment and wait until it is Ready and Green
  fastier.platform.eb_environment:
    name: fastier-production-blue
    application_name: fastier-production
    solution_stack_name: "64bit Amazon Linux 2023 v4.6.0 running Python 3.11"
    cname_prefix: fastier-production
    version_label: "2025.01.15-3f2a9c1"
    option_settings:
      aws:autoscaling:asg:
        MinSize: 2
        MaxSize: 6
      aws:autoscaling:launchconfiguration:
        DisableIMDSv1: true
      aws:elasticbeanstalk:environment:process:default:
        HealthCheckPath: /healthz
      aws:elasticbeanstalk:application:environment:
        DATABASE_SECRET_ARN: "{{ database_outputs.secret_arn }}"
    options_to_remove:
      - "aws:elasticbeanstalk:application:environment:OLD_FLAG"
    tags:
      Name: fastier-production-blue
    wait_for_health: [Green]
  register: environment

- name: Deploy a version, accepting Yellow while the fleet warms up
  fastier.platform.eb_environment:
    name: fastier-production-green
    application_name: fastier-production
    version_label: "{{ bundle_label }}"
    wait_for_health: [Green, Yellow]
    wait_timeout: 1800

- name: Restart the application servers
  fastier.platform.eb_environment:
    name: fastier-production-blue
    application_name: fastier-production
    state: restarted

- name: Terminate an environment
  fastier.platform.eb_environment:
    name: fastier-staging-green
    application_name: fastier-staging
    state: absent
"""

RETURN = r"""
environment:
  description: The environment as DescribeEnvironments returns it, in snake_case (empty once terminated and gone).
  returned: always
  type: dict
  contains:
    environment_name:
      description: The name.
      returned: when the environment exists
      type: str
      sample: fastier-production-blue
    environment_id:
      description: The id.
      returned: when the environment exists
      type: str
      sample: e-abcd1234
    environment_arn:
      description: The ARN.
      returned: when the environment exists
      type: str
      sample: "arn:aws:elasticbeanstalk:us-east-1:123456789012:environment/fastier-production/fastier-production-blue"
    application_name:
      description: The application.
      returned: when the environment exists
      type: str
      sample: fastier-production
    version_label:
      description: The application version it runs.
      returned: when it runs one
      type: str
      sample: "2025.01.15-3f2a9c1"
    solution_stack_name:
      description: The platform.
      returned: when the environment exists
      type: str
      sample: "64bit Amazon Linux 2023 v4.6.0 running Python 3.11"
    platform_arn:
      description: The platform ARN.
      returned: when the environment exists
      type: str
      sample: "arn:aws:elasticbeanstalk:us-east-1::platform/Python 3.11 running on 64bit Amazon Linux 2023/4.6.0"
    cname:
      description: The environment's CNAME.
      returned: when the environment exists
      type: str
      sample: fastier-production.us-east-1.elasticbeanstalk.com
    endpoint_url:
      description: The load balancer's (or instance's) address.
      returned: when the environment exists
      type: str
      sample: awseb-e-a-AWSEBLoa-1ABC.us-east-1.elb.amazonaws.com
    status:
      description: C(Launching), C(Updating), C(Ready), C(Terminating), C(Terminated)...
      returned: when the environment exists
      type: str
      sample: Ready
    health:
      description: C(Green), C(Yellow), C(Red) or C(Grey).
      returned: when the environment exists
      type: str
      sample: Green
    health_status:
      description: The enhanced health status (C(Ok), C(Warning), C(Degraded), C(Severe)...).
      returned: with enhanced health
      type: str
      sample: Ok
    tier:
      description: The tier.
      returned: when the environment exists
      type: dict
      sample: {"name": "WebServer", "type": "Standard", "version": "1.0"}
    tags:
      description: The environment's tags (AWS-managed keys left out).
      returned: when the environment exists
      type: dict
      sample: {"Name": "fastier-production-blue"}
option_settings:
  description: The environment's deployed option settings after the run, nested C(namespace -> option -> value).
  returned: when the environment exists
  type: dict
  sample: {"aws:autoscaling:asg": {"MinSize": "2", "MaxSize": "6"}}
events:
  description: The environment's events during this run's operations, oldest first.
  returned: always
  type: list
  elements: dict
  sample: [{"event_date": "2025-01-15T10:12:03+00:00", "severity": "INFO", "message": "Environment update is starting."}]
operations:
  description: The operations performed (or, in check mode, planned), in order.
  returned: always
  type: list
  elements: str
  sample: ["update_tags", "update_configuration", "deploy_version"]
timings:
  description: Seconds spent, per phase (C(busy_wait_s), C(create_s), C(tags_s), C(configuration_s), C(deploy_s), C(restart_s), C(terminate_s)) and C(total_s).
  returned: always
  type: dict
  sample: {"busy_wait_s": 0.0, "configuration_s": 41.2, "deploy_s": 63.9, "total_s": 106.3}
progress:
  description: What the module did and saw, with elapsed seconds (also logged).
  returned: when something was done
  type: list
  elements: str
  sample: ["[    0.3s] updating configuration of fastier-production-blue", "[    1.1s] event INFO: Environment update is starting."]
"""

import hashlib
import time

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # caught by AnsibleAWSModule

from ansible_collections.fastier.platform.plugins.module_utils.base import Deadline
from ansible_collections.fastier.platform.plugins.module_utils.base import FastierAWSModule
from ansible_collections.fastier.platform.plugins.module_utils.base import TAG_OPTIONS
from ansible_collections.fastier.platform.plugins.module_utils.base import WaitTimeout
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import BUSY_STATUSES
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import ENV_PROPERTIES_NAMESPACE
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import HEALTH_COLORS
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import HEALTH_STATUSES
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import VERSION_PENDING_STATUSES
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import EnvironmentFailed
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import EventStream
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import VersionFailed
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import call_when_ready
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import check_dns_availability
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import client_error_code
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import client_error_message
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import describe_application_version
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import describe_state
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import diff_option_settings
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import environment_to_result
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import find_environment
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import get_option_defaults
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import get_option_settings
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import get_tags
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import option_in_message
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import option_settings_to_list
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import option_value_to_text
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import options_to_remove_list
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import parse_option_specifier
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import plan_tags
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import platform_satisfied
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import update_tags
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import validation_errors
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import wait_for_environment
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import wait_for_version
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import wait_until_not_busy

TIERS = {"WebServer": {"Name": "WebServer", "Type": "Standard"}, "Worker": {"Name": "Worker", "Type": "SQS/HTTP"}}
# Tags AWS puts on environments itself; never purged.
KEEP_TAGS = ("Name",)


class EnvironmentManager:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = module.client("elasticbeanstalk")
        self.app = module.params["application_name"]
        self.name = module.params["name"]
        self.deadline = Deadline(module.params["wait_timeout"], "environment {0}".format(self.name))
        self.timings = {}
        self.operations = []
        self.events = None

    # -- plumbing ---------------------------------------------------------------------

    def _on_event(self, event):
        self.module.progress("event {0}: {1}".format(event.get("severity"), event.get("message")))

    def _stream(self, environment_id, prime):
        stream = EventStream(self.client, on_event=self._on_event, EnvironmentId=environment_id)
        if prime:
            try:
                stream.prime()
            except (BotoCoreError, ClientError) as e:
                self.module.fail_json_aws(e, msg="Cannot read the events of environment {0}".format(self.name))
        return stream

    def _timed(self, key, started):
        self.timings[key] = round(self.timings.get(key, 0.0) + time.monotonic() - started, 3)

    def _events(self):
        return self.events.events if self.events is not None else []

    def _deadline(self, what):
        self.deadline.what = "environment {0} {1}".format(self.name, what)
        return self.deadline

    def fail(self, msg, environment=None, **kwargs):
        kwargs.setdefault("events", self._events())
        kwargs.setdefault("timings", self._timings())
        kwargs.setdefault("operations", self.operations)
        self.module.fail_json(msg=msg, environment=environment_to_result(environment), **kwargs)

    def fail_aws(self, error, msg):
        self.module.fail_json_aws(error, msg=msg, events=self._events(), operations=self.operations, timings=self._timings())

    def fail_wait(self, error, hint):
        if isinstance(error, WaitTimeout):
            self.fail("{0}. {1}".format(error, hint))
        self.fail("{0}. {1}".format(error, hint), environment=error.environment, events=error.events or self._events())

    def _timings(self):
        out = dict(self.timings)
        out["total_s"] = self.module.elapsed()
        return out

    def find(self):
        try:
            return find_environment(self.client, self.app, name=self.name)
        except (BotoCoreError, ClientError) as e:
            self.fail_aws(e, "Cannot describe environment {0} of application {1}".format(self.name, self.app))

    def wait(self, environment, what, acceptable, target="Ready", after_change=True):
        try:
            return wait_for_environment(
                self.client,
                environment["EnvironmentId"],
                self._deadline(what),
                target_status=target,
                acceptable_health=acceptable,
                events=self.events,
                initial=environment,
                after_change=after_change,
            )
        except (WaitTimeout, EnvironmentFailed) as e:
            hint = "Look at the events and the environment's health (fastier.platform.eb_environment_info with include_health)"
            if isinstance(e, WaitTimeout):
                hint = "The operation continues in AWS; run again later (the module waits for a busy environment) or raise wait_timeout"
            self.fail_wait(e, hint)
        except (BotoCoreError, ClientError) as e:
            self.fail_aws(e, "Failed while waiting for environment {0}".format(self.name))

    def wait_not_busy(self, environment):
        """Wait (bounded) while another operation runs; return the fresh description (None when gone)."""
        if environment.get("Status") not in BUSY_STATUSES:
            return environment
        self.module.progress("environment {0} is {1}: waiting for it before changing it".format(self.name, describe_state(environment)))
        started = time.monotonic()
        try:
            environment = wait_until_not_busy(self.client, environment["EnvironmentId"], self._deadline("to finish its current operation"))
        except WaitTimeout as e:
            self.fail_wait(e, "Another operation is still running on the environment; run again once it is Ready")
        except (BotoCoreError, ClientError) as e:
            self.fail_aws(e, "Failed while waiting for environment {0}".format(self.name))
        self._timed("busy_wait_s", started)
        if environment is not None and environment.get("Status") == "Terminated":
            return None
        return environment

    def when_ready(self, environment, call, what):
        """Run a mutating call, waiting (bounded) while AWS says the environment is busy."""

        def busy(_error):
            self.module.progress("environment {0} is busy; waiting before {1}".format(self.name, what))

        try:
            return call_when_ready(call, self.client, environment["EnvironmentId"], self._deadline("to accept " + what), on_busy=busy)
        except WaitTimeout as e:
            self.fail_wait(e, "Another operation is still running on the environment; run again once it is Ready")
        except ClientError as e:
            self.fail_client_error(e, what)
        except BotoCoreError as e:
            self.fail_aws(e, "Cannot {0} on environment {1}".format(what, self.name))

    def fail_client_error(self, error, what):
        code, message = client_error_code(error), client_error_message(error)
        where = option_in_message(message)
        if code == "ConfigurationValidationException" or where:
            detail = ""
            if where:
                value = (self.params["option_settings"] or {}).get(where[0], {}).get(where[1])
                detail = " Option {0}/{1}{2}.".format(where[0], where[1], "" if value is None else " (you set {0!r})".format(option_value_to_text(value)))
            self.fail(
                "Elastic Beanstalk rejected the option settings of {0}: {1}.{2} Fix option_settings and run again.".format(self.name, message, detail),
                error_code=code,
                option={"namespace": where[0], "option_name": where[1]} if where else None,
            )
        self.fail_aws(error, "Cannot {0} on environment {1}".format(what, self.name))

    # -- checks -------------------------------------------------------------------------

    def check_version(self, label):
        try:
            version = describe_application_version(self.client, self.app, label)
        except (BotoCoreError, ClientError) as e:
            self.fail_aws(e, "Cannot describe application version {0}".format(label))
        if version is None:
            self.fail(
                "Application version {0} not found in application {1}; register it first (fastier.platform.eb_application_version).".format(label, self.app)
            )
        status = version.get("Status")
        if status == "Failed":
            self.fail("Application version {0} is Failed (its bundle did not pass processing); it cannot be deployed. Register a fixed bundle.".format(label))
        if status in VERSION_PENDING_STATUSES and status != "Unprocessed":
            if self.module.check_mode:
                self.module.warn("application version {0} is {1}; a real run waits until it is Processed".format(label, status))
                return
            self.module.progress("application version {0} is {1}: waiting until it is Processed".format(label, status))
            try:
                wait_for_version(self.client, self.app, label, self._deadline("version {0} to be Processed".format(label)))
            except WaitTimeout as e:
                self.fail("{0}. Run again once the version is Processed or raise wait_timeout.".format(e))
            except VersionFailed as e:
                self.fail("{0}. Register a fixed bundle under a new label.".format(e), events=e.events)

    def check_cname(self, prefix):
        try:
            available, fqdn = check_dns_availability(self.client, prefix)
        except (BotoCoreError, ClientError) as e:
            self.fail_aws(e, "Cannot check whether the CNAME prefix {0} is available".format(prefix))
        if available:
            return
        suffix = hashlib.sha256(self.name.encode("utf-8")).hexdigest()[:6]
        candidates = ["{0}-{1}".format(prefix[:56], suffix)] + ["{0}-{1}".format(prefix[:60], n) for n in (2, 3)]
        suggestion = None
        for candidate in candidates:
            try:
                if check_dns_availability(self.client, candidate)[0]:
                    suggestion = candidate
                    break
            except (BotoCoreError, ClientError):
                break
        msg = "CNAME prefix {0} is not available ({1} is taken by another environment, possibly in another account).".format(prefix, fqdn or prefix)
        if suggestion:
            msg += " Choose another cname_prefix, for example {0} (available now).".format(suggestion)
        else:
            msg += " Choose another cname_prefix."
        self.fail(msg, suggested_cname_prefix=suggestion)

    # -- states ---------------------------------------------------------------------------

    def present(self):
        environment = self.find()
        if environment is not None and not self.module.check_mode:
            environment = self.wait_not_busy(environment)
        if environment is None:
            return self.create()
        return self.update(environment)

    def desired_creation(self):
        params = self.params
        after = {"environment_name": self.name, "application_name": self.app}
        for key in ("version_label", "solution_stack_name", "platform_arn", "description", "tier", "cname_prefix"):
            if params[key] is not None:
                after[key] = params[key]
        after["option_settings"] = dict(
            (ns, dict((opt, option_value_to_text(value)) for opt, value in options.items())) for ns, options in (params["option_settings"] or {}).items()
        )
        after["tags"] = params["tags"] or {}
        return after

    def create(self):
        params = self.params
        if not (params["solution_stack_name"] or params["platform_arn"]):
            self.fail("Environment {0} does not exist; give solution_stack_name or platform_arn to create it.".format(self.name))
        try:
            settings = option_settings_to_list(params["option_settings"])
        except TypeError as e:
            self.fail(str(e))
        if params["version_label"]:
            self.check_version(params["version_label"])
        if params["cname_prefix"]:
            self.check_cname(params["cname_prefix"])
        self.operations.append("create")
        after = self.desired_creation()
        if self.module.check_mode:
            self.module.exit_with_diff(True, {}, after, environment={}, events=[], operations=self.operations, timings=self._timings())

        request = {"ApplicationName": self.app, "EnvironmentName": self.name, "Tier": TIERS[params["tier"] or "WebServer"]}
        optional = {
            "VersionLabel": params["version_label"],
            "SolutionStackName": params["solution_stack_name"],
            "PlatformArn": params["platform_arn"],
            "Description": params["description"],
            "CNAMEPrefix": params["cname_prefix"],
        }
        request.update(dict((k, v) for k, v in optional.items() if v))
        if settings:
            request["OptionSettings"] = settings
        if params["tags"]:
            request["Tags"] = [{"Key": k, "Value": str(v)} for k, v in sorted(params["tags"].items())]
        started = time.monotonic()
        self.module.progress("creating environment {0}".format(self.name))
        try:
            environment = self.client.create_environment(aws_retry=True, **request)
        except ClientError as e:
            self.fail_client_error(e, "create the environment")
        except BotoCoreError as e:
            self.fail_aws(e, "Cannot create environment {0}".format(self.name))
        environment.pop("ResponseMetadata", None)
        self.events = self._stream(environment["EnvironmentId"], prime=False)
        if params["wait"]:
            what = "to be Ready with health in {0}".format(params["wait_for_health"])
            environment = self.wait(environment, what, params["wait_for_health"], after_change=False)
        self._timed("create_s", started)
        self.finish(True, {}, after, environment)

    def plan(self, environment):
        """What an update would change: (changes, before, after) with only changed keys."""
        params = self.params
        changes = {}
        before, after = {}, {}
        try:
            live = get_option_settings(self.client, self.app, self.name)
            to_remove = [parse_option_specifier(item) for item in params["options_to_remove"] or []]
            defaults = get_option_defaults(self.client, self.app, self.name, [k for k in to_remove if k[0] != ENV_PROPERTIES_NAMESPACE])
            diff = diff_option_settings(params["option_settings"] or {}, live, to_remove, defaults)
        except (ValueError, TypeError) as e:
            self.fail(str(e))
        except (BotoCoreError, ClientError) as e:
            self.fail_aws(e, "Cannot read the configuration of environment {0}".format(self.name))
        if diff["set"] or diff["remove"]:
            changes["option_settings"] = diff
            before["option_settings"], after["option_settings"] = diff["before"], diff["after"]

        tier = params["tier"]
        if tier and (environment.get("Tier") or {}).get("Name") != tier:
            self.fail(
                "Environment {0} is a {1} environment; AWS cannot change the tier to {2}. Create a new environment instead.".format(
                    self.name, (environment.get("Tier") or {}).get("Name"), tier
                )
            )
        for key, live_key in (("solution_stack_name", "SolutionStackName"), ("platform_arn", "PlatformArn")):
            if params[key] and not platform_satisfied(params[key], environment.get(live_key)):
                changes[key] = params[key]
                before[key], after[key] = environment.get(live_key), params[key]
        if params["description"] is not None and params["description"] != environment.get("Description", ""):
            changes["description"] = params["description"]
            before["description"], after["description"] = environment.get("Description"), params["description"]
        if params["version_label"] and params["version_label"] != environment.get("VersionLabel"):
            changes["version_label"] = params["version_label"]
            before["version_label"], after["version_label"] = environment.get("VersionLabel"), params["version_label"]

        try:
            current_tags = get_tags(self.client, environment["EnvironmentArn"])
        except (BotoCoreError, ClientError) as e:
            self.fail_aws(e, "Cannot read the tags of environment {0}".format(self.name))
        to_set, to_remove_tags = plan_tags(current_tags, params["tags"], params["purge_tags"], keep=KEEP_TAGS)
        if to_set or to_remove_tags:
            changes["tags"] = (to_set, to_remove_tags)
            keys = set(to_set) | set(to_remove_tags)
            before["tags"] = dict((k, current_tags.get(k)) for k in keys if k in current_tags)
            after["tags"] = dict((k, str(v)) for k, v in to_set.items())
        return changes, before, after, live

    def validate(self, settings):
        """ValidateConfigurationSettings (read-only): fail with the options AWS rejects."""
        try:
            found = self.client.validate_configuration_settings(ApplicationName=self.app, EnvironmentName=self.name, OptionSettings=settings, aws_retry=True)
        except ClientError as e:
            self.fail_client_error(e, "validate the option settings")
        except BotoCoreError as e:
            self.fail_aws(e, "Cannot validate the option settings of {0}".format(self.name))
        errors = validation_errors(found.get("Messages"))
        if errors:
            self.fail(
                "Elastic Beanstalk rejected the option settings of {0}: {1}. Fix option_settings and run again.".format(self.name, "; ".join(errors)),
                validation_messages=found.get("Messages"),
            )
        for message in found.get("Messages") or []:
            if message.get("Severity") == "warning":
                self.module.warn("{0} [{1}/{2}]".format(message.get("Message"), message.get("Namespace"), message.get("OptionName")))

    def update(self, environment):
        params = self.params
        if self.module.check_mode and environment.get("Status") in BUSY_STATUSES:
            self.module.warn("environment {0} is {1}: the plan is against its deployed configuration".format(self.name, environment.get("Status")))
        changes, before, after, live = self.plan(environment)
        config = changes.get("option_settings")
        settings = option_settings_to_list(config["set"]) if config else []
        removals = options_to_remove_list(["{0}:{1}".format(ns, opt) for ns, opt in config["remove"]]) if config else []
        if settings:
            self.validate(settings)
        if changes.get("version_label"):
            self.check_version(changes["version_label"])
        if "tags" in changes:
            self.operations.append("update_tags")
        configuration = dict((k, changes[k]) for k in ("solution_stack_name", "platform_arn", "description") if k in changes)
        if settings or removals or configuration:
            self.operations.append("update_configuration")
        if "version_label" in changes:
            self.operations.append("deploy_version")
        if not changes or self.module.check_mode:
            self.finish(bool(changes), before, after, environment, live_settings=live)

        self.events = self._stream(environment["EnvironmentId"], prime=True)
        steps = list(self.operations)
        acceptable = params["wait_for_health"]
        current = environment

        def settle(key, what, initial, response, started):
            """Wait after a step: for any health between steps, for wait_for_health after the last."""
            timing = {"update_tags": "tags_s", "update_configuration": "configuration_s", "deploy_version": "deploy_s"}[key]
            last = steps[-1] == key
            if last and not params["wait"]:
                self._timed(timing, started)
                return response or initial
            result = self.wait(initial, what, acceptable if last else ())
            self._timed(timing, started)
            return result or response or initial

        if "tags" in changes:
            started = time.monotonic()
            to_set, to_remove_tags = changes["tags"]
            self.module.progress("updating the tags of {0}".format(self.name))
            self.when_ready(current, lambda: update_tags(self.client, environment["EnvironmentArn"], to_set, to_remove_tags), "updating tags")
            current = settle("update_tags", "to apply the new tags", current, None, started)

        if "update_configuration" in steps:
            started = time.monotonic()
            request = {"EnvironmentId": environment["EnvironmentId"]}
            if settings:
                request["OptionSettings"] = settings
            if removals:
                request["OptionsToRemove"] = removals
            names = {"solution_stack_name": "SolutionStackName", "platform_arn": "PlatformArn", "description": "Description"}
            for key, value in configuration.items():
                request[names[key]] = value
            self.module.progress(
                "updating the configuration of {0}: {1} option(s) set, {2} removed{3}".format(
                    self.name, len(settings), len(removals), ", " + ", ".join(sorted(configuration)) if configuration else ""
                )
            )
            update = self.when_ready(current, lambda: self.client.update_environment(aws_retry=True, **request), "updating the configuration")
            update.pop("ResponseMetadata", None)
            current = settle("update_configuration", "to apply the new configuration", current, update, started)

        if "version_label" in changes:
            started = time.monotonic()
            label = changes["version_label"]
            self.module.progress("deploying version {0} to {1}".format(label, self.name))
            update = self.when_ready(
                current,
                lambda: self.client.update_environment(EnvironmentId=environment["EnvironmentId"], VersionLabel=label, aws_retry=True),
                "deploying version " + label,
            )
            update.pop("ResponseMetadata", None)
            current = settle("deploy_version", "to run version {0} with health in {1}".format(label, acceptable), current, update, started)

        self.finish(True, before, after, current)

    def absent(self):
        environment = self.find()
        if environment is None:
            self.module.exit_with_diff(False, {}, {}, environment={}, events=[], operations=[], timings=self._timings())
        before = {"environment_name": self.name, "status": environment.get("Status"), "version_label": environment.get("VersionLabel")}
        self.operations.append("terminate")
        if self.module.check_mode:
            self.module.exit_with_diff(
                True, before, {}, environment=environment_to_result(environment), events=[], operations=self.operations, timings=self._timings()
            )
        started = time.monotonic()
        self.events = self._stream(environment["EnvironmentId"], prime=True)
        if environment.get("Status") != "Terminating":
            environment = self.wait_not_busy(environment)
            if environment is None:
                self.module.exit_with_diff(False, {}, {}, environment={}, events=self._events(), operations=[], timings=self._timings())
            self.module.progress("terminating environment {0}".format(self.name))
            self.when_ready(
                environment,
                lambda: self.client.terminate_environment(EnvironmentId=environment["EnvironmentId"], TerminateResources=True, aws_retry=True),
                "terminating the environment",
            )
        if self.params["wait"]:
            environment = self.wait(environment, "to be Terminated", (), target="Terminated", after_change=False)
        else:
            environment = find_environment(self.client, environment_id=environment["EnvironmentId"])
        self._timed("terminate_s", started)
        self.module.exit_with_diff(
            True,
            before,
            {},
            environment=environment_to_result(environment),
            events=self._events(),
            operations=self.operations,
            timings=self._timings(),
        )

    def restarted(self):
        environment = self.find()
        if environment is None:
            self.fail("Environment {0} of application {1} does not exist; nothing to restart.".format(self.name, self.app))
        self.operations.append("restart_app_server")
        if self.module.check_mode:
            self.finish(True, {}, {}, environment)
        environment = self.wait_not_busy(environment)
        if environment is None:
            self.fail("Environment {0} was terminated while waiting to restart it.".format(self.name))
        started = time.monotonic()
        self.events = self._stream(environment["EnvironmentId"], prime=True)
        self.module.progress("restarting the application server of {0}".format(self.name))
        self.when_ready(
            environment,
            lambda: self.client.restart_app_server(EnvironmentId=environment["EnvironmentId"], aws_retry=True),
            "restarting the application server",
        )
        if self.params["wait"]:
            environment = self.wait(environment, "to be Ready after the restart", self.params["wait_for_health"])
        self._timed("restart_s", started)
        self.finish(True, {}, {}, environment)

    def finish(self, changed, before, after, environment, live_settings=None):
        result = environment_to_result(environment)
        settings = live_settings
        if environment and environment.get("Status") != "Terminated":
            try:
                fresh = find_environment(self.client, environment_id=environment["EnvironmentId"]) if changed and not self.module.check_mode else environment
                result = environment_to_result(fresh)
                if environment.get("EnvironmentArn"):
                    result["tags"] = get_tags(self.client, environment["EnvironmentArn"])
                if settings is None or (changed and not self.module.check_mode):
                    settings = get_option_settings(self.client, self.app, self.name)
            except (BotoCoreError, ClientError) as e:
                self.fail_aws(e, "Cannot describe environment {0} after the changes".format(self.name))
        self.module.exit_with_diff(
            changed,
            before,
            after,
            environment=result,
            option_settings=settings or {},
            events=self._events(),
            operations=self.operations,
            timings=self._timings(),
        )


def main():
    argument_spec = dict(
        name=dict(type="str", required=True, aliases=["environment_name"]),
        application_name=dict(type="str", required=True, aliases=["app_name"]),
        state=dict(type="str", default="present", choices=["present", "absent", "restarted"]),
        version_label=dict(type="str"),
        solution_stack_name=dict(type="str"),
        platform_arn=dict(type="str"),
        description=dict(type="str"),
        tier=dict(type="str", choices=list(TIERS)),
        cname_prefix=dict(type="str"),
        option_settings=dict(type="dict"),
        options_to_remove=dict(type="list", elements="str"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=1200),
        wait_for_health=dict(type="list", elements="str", default=["Green"], choices=list(HEALTH_COLORS + HEALTH_STATUSES)),
        **TAG_OPTIONS,
    )
    module = FastierAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[["solution_stack_name", "platform_arn"]],
    )
    manager = EnvironmentManager(module)
    state = module.params["state"]
    if state == "absent":
        manager.absent()
    elif state == "restarted":
        manager.restarted()
    else:
        manager.present()


if __name__ == "__main__":
    main()
