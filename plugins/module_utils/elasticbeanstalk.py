# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Elastic Beanstalk code shared by the fastier.platform modules.

One place for what ``eb_application_version``, ``eb_environment``,
``eb_environment_info`` and ``eb_environment_swap`` all need:

* option settings as a nested dict ``{namespace: {option: value}}`` and back
  to the AWS ``OptionSettings`` list, with values written the way AWS returns
  them (booleans ``"true"``/``"false"``, numbers as text, lists joined by
  commas); comparison of the options a user set against the live ones, and
  removal through an explicit list;
* describe helpers (environments, versions, settings, tags, health);
* ``EventStream``: the environment's DescribeEvents, newest first on the
  wire, turned into a stream of events not seen before (no clock is
  compared with the server's: events seen before the operation are marked);
* ``wait_for_environment``: a bounded wait (``Deadline``) for a status and a
  health the caller accepts; it fails fast when an ERROR event appears or
  the health turns Red during the wait, with the events;
* ``wait_until_not_busy`` and ``call_when_ready``: wait (bounded) while an
  environment is Launching/Updating instead of failing with "invalid state";
* a botocore waiter model for application versions (botocore has none);
* blue/green basics: which environment holds the live CNAME (full name or
  prefix), the CNAME swap, and evidence for error messages (the last events
  of an environment, its enhanced health causes).

The blue/green orchestration itself (checks, Route 53 weights, watch
window, swap-back) is in ``eb_swap.py``.

Nothing here calls ``fail_json``: helpers raise ``EnvironmentFailed`` or
``WaitTimeout`` and the module decides what to tell the user.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

try:
    import botocore.waiter as core_waiter
    from botocore.exceptions import ClientError
except ImportError:  # caught by AnsibleAWSModule
    core_waiter = None
    ClientError = Exception

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list
from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags

from ansible_collections.fastier.platform.plugins.module_utils.base import WaitTimeout

# -- vocabulary of the API ---------------------------------------------------------

ENV_PROPERTIES_NAMESPACE = "aws:elasticbeanstalk:application:environment"

HEALTH_COLORS = ("Green", "Yellow", "Red", "Grey")
HEALTH_STATUSES = ("Ok", "Info", "Warning", "Degraded", "Severe", "Pending", "Unknown", "NoData", "Suspended")
# What counts as "Red": the basic colour, or the enhanced statuses that map to it.
RED_HEALTH_STATUSES = ("Degraded", "Severe")
ERROR_SEVERITIES = ("ERROR", "FATAL")
# Statuses during which AWS refuses another operation ("Must be Ready").
BUSY_STATUSES = ("Launching", "Updating", "Terminating", "Aborting", "LinkingFrom", "LinkingTo")
VERSION_PENDING_STATUSES = ("Unprocessed", "Processing", "Building")

# Tags AWS manages on Elastic Beanstalk resources; never purged or compared.
RESERVED_TAG_PREFIXES = ("aws:", "elasticbeanstalk:")

# Poll intervals (seconds): start small (local transitions are sub-second),
# grow to a polite cap for real environments that take minutes.
POLL_FIRST = 1.0
POLL_MAX = 10.0
POLL_FACTOR = 1.5
STABLE_POLLS = 3

_STACK = re.compile(r"^64bit (?P<os>.+?) v(?P<version>\d+(?:\.\d+)*) running (?P<platform>.+)$")
_PLATFORM_ARN = re.compile(
    r"^arn:aws[a-z-]*:elasticbeanstalk:[a-z0-9-]*:(?P<account>\d*):platform/(?P<platform>.+) running on 64bit (?P<os>.+)/(?P<version>\d+(?:\.\d+)*)$"
)
_OPTION_IN_MESSAGE = re.compile(r"Namespace:\s*'(?P<namespace>[^']+)',\s*OptionName:\s*'(?P<option>[^']+)'")
_INVALID_STATE = re.compile(r"invalid state for this operation", re.IGNORECASE)


class EnvironmentFailed(Exception):
    """An operation on an environment failed while we waited for it.

    ``environment`` is the last description seen (AWS shape), ``events`` the
    events streamed during the operation (snake_case dicts).
    """

    def __init__(self, message, environment=None, events=None):
        super(EnvironmentFailed, self).__init__(message)
        self.environment = environment
        self.events = list(events or [])


# -- option settings ------------------------------------------------------------------


def option_value_to_text(value):
    """A value as AWS stores and returns it: text, booleans lower case, lists comma-joined."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(option_value_to_text(item) for item in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        raise TypeError("an option value cannot be a dict: {0!r}".format(value))
    return str(value)


def option_settings_to_list(settings):
    """``{namespace: {option: value}}`` -> AWS ``OptionSettings`` (sorted, values as text)."""
    out = []
    for namespace in sorted(settings or {}):
        options = settings[namespace]
        if not isinstance(options, dict):
            raise TypeError("option_settings[{0!r}] must be a dict of option: value, got {1!r}".format(namespace, options))
        for option in sorted(options):
            out.append({"Namespace": namespace, "OptionName": option, "Value": option_value_to_text(options[option])})
    return out


def option_settings_from_list(option_settings):
    """AWS ``OptionSettings`` -> ``{namespace: {option: value}}`` (ResourceName dropped)."""
    out = {}
    for setting in option_settings or []:
        out.setdefault(setting["Namespace"], {})[setting["OptionName"]] = setting.get("Value", "")
    return out


def parse_option_specifier(item):
    """One entry of ``options_to_remove`` -> ``(namespace, option)``.

    Accepts ``{"namespace": ..., "option_name": ...}`` or the text
    ``"namespace:OptionName"`` (the option is what follows the last colon).
    """
    if isinstance(item, dict):
        namespace = item.get("namespace")
        option = item.get("option_name", item.get("option"))
    else:
        namespace, sep, option = str(item).rpartition(":")
        if not sep:
            namespace = None
    if not namespace or not option:
        raise ValueError("cannot read {0!r} as a namespace and an option name (use 'namespace:OptionName')".format(item))
    return namespace, option


def options_to_remove_list(items):
    """``options_to_remove`` -> AWS ``OptionsToRemove`` (sorted, duplicates dropped)."""
    keys = sorted(set(parse_option_specifier(item) for item in items or []))
    return [{"Namespace": namespace, "OptionName": option} for namespace, option in keys]


def _split_list(text):
    return sorted(item.strip() for item in text.split(",") if item.strip())


def option_values_equal(namespace, desired, live):
    """Whether a desired value (as the user wrote it) equals a live value (text)."""
    if live is None:
        return False
    want = option_value_to_text(desired)
    if namespace == ENV_PROPERTIES_NAMESPACE:
        return want == live  # environment properties are exact text
    want, have = want.strip(), live.strip()
    if want == have:
        return True
    if isinstance(desired, bool) or want.lower() in ("true", "false"):
        return want.lower() == have.lower()
    if isinstance(desired, (int, float)) and not isinstance(desired, bool):
        try:
            return float(want) == float(have)
        except ValueError:
            return False
    if "," in want or "," in have or isinstance(desired, (list, tuple)):
        return _split_list(want) == _split_list(have)
    return False


def diff_option_settings(desired, live, to_remove=None, defaults=None):
    """Compare the options a user set (and the ones to remove) with the live ones.

    ``desired`` and ``live`` are nested dicts; ``to_remove`` a list of
    ``(namespace, option)``; ``defaults`` maps ``(namespace, option)`` to the
    platform default (from DescribeConfigurationOptions), used to tell whether
    removing an option changes anything. Options the user did not mention are
    never compared.

    Returns a dict: ``set`` (nested: options to send, as text), ``remove``
    (list of ``(namespace, option)`` that are set live), ``before`` and
    ``after`` (nested, only the changed keys; ``None`` means absent).
    """
    desired = desired or {}
    live = live or {}
    defaults = defaults or {}
    result = {"set": {}, "remove": [], "before": {}, "after": {}}
    conflicts = [(ns, opt) for ns, opt in (to_remove or []) if opt in desired.get(ns, {})]
    if conflicts:
        raise ValueError("options both set and removed: {0}".format(", ".join("{0}/{1}".format(ns, opt) for ns, opt in conflicts)))
    for namespace in sorted(desired):
        for option in sorted(desired[namespace]):
            value = desired[namespace][option]
            current = live.get(namespace, {}).get(option)
            if option_values_equal(namespace, value, current):
                continue
            result["set"].setdefault(namespace, {})[option] = option_value_to_text(value)
            result["before"].setdefault(namespace, {})[option] = current
            result["after"].setdefault(namespace, {})[option] = option_value_to_text(value)
    for namespace, option in sorted(set(to_remove or [])):
        current = live.get(namespace, {}).get(option)
        if current is None:
            continue
        default = defaults.get((namespace, option))
        if namespace != ENV_PROPERTIES_NAMESPACE:
            if default is not None and option_values_equal(namespace, default, current):
                continue
            if default is None and current == "":
                continue
        result["remove"].append((namespace, option))
        result["before"].setdefault(namespace, {})[option] = current
        result["after"].setdefault(namespace, {})[option] = None if namespace == ENV_PROPERTIES_NAMESPACE else default
    return result


def nested_items(nested):
    """``{ns: {opt: v}}`` -> sorted list of ``(ns, opt, v)``."""
    return [(ns, opt, nested[ns][opt]) for ns in sorted(nested) for opt in sorted(nested[ns])]


def option_in_message(message):
    """``(namespace, option)`` named in an AWS validation message, or None."""
    match = _OPTION_IN_MESSAGE.search(message or "")
    if not match:
        return None
    return match.group("namespace"), match.group("option")


def validation_errors(messages):
    """Error-severity ValidateConfigurationSettings messages, as readable lines."""
    lines = []
    for message in messages or []:
        if message.get("Severity") != "error":
            continue
        where = ""
        if message.get("Namespace") or message.get("OptionName"):
            where = " [{0}/{1}]".format(message.get("Namespace", "?"), message.get("OptionName", "?"))
        lines.append("{0}{1}".format(message.get("Message", ""), where))
    return lines


# -- health ------------------------------------------------------------------------------


def is_red(environment):
    """Whether an environment description is Red (colour or enhanced status)."""
    if not environment:
        return False
    return environment.get("Health") == "Red" or environment.get("HealthStatus") in RED_HEALTH_STATUSES


def health_accepted(environment, acceptable):
    """Whether the environment's health is one of ``acceptable`` (colours and/or statuses)."""
    acceptable = set(acceptable or ())
    if not acceptable:
        return True
    return environment.get("Health") in acceptable or environment.get("HealthStatus") in acceptable


def _platform_parts(value):
    """``(branch, version tuple)`` of a solution stack name or platform ARN, or None."""
    for pattern in (_STACK, _PLATFORM_ARN):
        match = pattern.match(value or "")
        if match:
            branch = (match.group("os"), match.group("platform"), match.groupdict().get("account") or "")
            return branch, tuple(int(part) for part in match.group("version").split("."))
    return None


def platform_satisfied(desired, live):
    """Whether the live platform is the desired one or a newer version of the same branch.

    Managed platform updates move an environment to newer versions of its
    platform branch (``... v4.6.0 running Python 3.11`` -> ``v4.6.2``); asking
    for the version it was created with must not downgrade it. Another branch
    (another OS or language version) or an older version is a change.
    """
    if not desired or desired == live:
        return True
    want, have = _platform_parts(desired), _platform_parts(live)
    if want is None or have is None:
        return False
    return want[0] == have[0] and have[1] >= want[1]


def describe_state(environment):
    """``"Updating / Grey (Pending)"``: what timeouts and progress lines show."""
    if not environment:
        return "not found"
    text = "{0} / {1}".format(environment.get("Status", "?"), environment.get("Health", "?"))
    if environment.get("HealthStatus"):
        text += " ({0})".format(environment["HealthStatus"])
    return text


# -- describe helpers ------------------------------------------------------------------


def _call(client, method, **params):
    """Call a client method, retrying throttling when the client supports it."""
    function = getattr(client, method)
    if isinstance(client, RetryingBotoClientWrapper):
        return function(aws_retry=True, **params)
    return function(**params)


def describe_environments(client, application_name=None, names=None, ids=None, include_deleted=False):
    """Every matching environment (all pages); Terminated ones only when asked."""
    params = {"IncludeDeleted": bool(include_deleted)}
    if application_name:
        params["ApplicationName"] = application_name
    if names:
        params["EnvironmentNames"] = list(names)
    if ids:
        params["EnvironmentIds"] = list(ids)
    out = []
    while True:
        page = _call(client, "describe_environments", **params)
        out.extend(page.get("Environments", []))
        token = page.get("NextToken")
        if not token:
            break
        params["NextToken"] = token
    if not include_deleted:
        out = [env for env in out if env.get("Status") != "Terminated"]
    return out


def find_environment(client, application_name=None, name=None, environment_id=None):
    """The live (not Terminated) environment with that name or id, or None."""
    if environment_id:
        found = describe_environments(client, application_name, ids=[environment_id], include_deleted=True)
        return found[0] if found else None
    found = describe_environments(client, application_name, names=[name])
    found = [env for env in found if env.get("EnvironmentName") == name]
    return found[0] if found else None


def describe_application_version(client, application_name, version_label):
    """The application version description, or None."""
    found = _call(client, "describe_application_versions", ApplicationName=application_name, VersionLabels=[version_label])
    for version in found.get("ApplicationVersions", []):
        if version.get("VersionLabel") == version_label:
            return version
    return None


def describe_application(client, application_name):
    found = _call(client, "describe_applications", ApplicationNames=[application_name])
    for application in found.get("Applications", []):
        if application.get("ApplicationName") == application_name:
            return application
    return None


def get_option_settings(client, application_name, environment_name):
    """The environment's deployed option settings, nested.

    During an update AWS returns a draft (``pending``) next to the
    ``deployed`` configuration; the deployed one is what runs.
    """
    found = _call(client, "describe_configuration_settings", ApplicationName=application_name, EnvironmentName=environment_name)
    descriptions = found.get("ConfigurationSettings", [])
    deployed = [d for d in descriptions if d.get("DeploymentStatus") == "deployed"]
    chosen = (deployed or descriptions or [{}])[0]
    return option_settings_from_list(chosen.get("OptionSettings", []))


def get_option_defaults(client, application_name, environment_name, keys):
    """``{(namespace, option): default}`` for the given keys (DescribeConfigurationOptions)."""
    if not keys:
        return {}
    found = _call(
        client,
        "describe_configuration_options",
        ApplicationName=application_name,
        EnvironmentName=environment_name,
        Options=[{"Namespace": ns, "OptionName": opt} for ns, opt in keys],
    )
    return {(o["Namespace"], o["Name"]): o.get("DefaultValue") for o in found.get("Options", []) if "DefaultValue" in o}


def get_tags(client, arn):
    """The user's tags on a resource (AWS-managed ``aws:``/``elasticbeanstalk:`` keys dropped)."""
    found = _call(client, "list_tags_for_resource", ResourceArn=arn)
    tags = boto3_tag_list_to_ansible_dict(found.get("ResourceTags", []))
    return dict((k, v) for k, v in tags.items() if not k.startswith(RESERVED_TAG_PREFIXES))


def plan_tags(current, desired, purge_tags, keep=None):
    """``(to_set, to_remove)`` for ``tags``/``purge_tags`` (``desired`` None = leave alone).

    ``keep`` lists keys never purged (e.g. the ``Name`` tag AWS puts on
    environments).
    """
    if desired is None:
        return {}, []
    desired = dict((k, v) for k, v in desired.items() if not k.startswith(RESERVED_TAG_PREFIXES))
    to_set, to_remove = compare_aws_tags(current, desired, purge_tags=purge_tags)
    to_remove = [key for key in to_remove if key not in (keep or ())]
    return to_set, sorted(to_remove)


def update_tags(client, arn, to_set, to_remove):
    params = {"ResourceArn": arn}
    if to_set:
        params["TagsToAdd"] = ansible_dict_to_boto3_tag_list(dict((k, str(v)) for k, v in to_set.items()))
    if to_remove:
        params["TagsToRemove"] = list(to_remove)
    if len(params) > 1:
        _call(client, "update_tags_for_resource", **params)


def describe_environment_health(client, environment_name):
    found = _call(client, "describe_environment_health", EnvironmentName=environment_name, AttributeNames=["All"])
    found.pop("ResponseMetadata", None)
    return found


def environment_to_result(environment):
    """snake_case environment for a module result (tag keys kept as they are)."""
    if not environment:
        return {}
    return camel_dict_to_snake_dict(environment, ignore_list=["Tags"])


def event_to_result(event):
    out = {
        "event_date": event["EventDate"].isoformat() if hasattr(event.get("EventDate"), "isoformat") else event.get("EventDate"),
        "severity": event.get("Severity"),
        "message": event.get("Message"),
    }
    for key, name in (("EnvironmentName", "environment_name"), ("VersionLabel", "version_label"), ("RequestId", "request_id")):
        if event.get(key):
            out[name] = event[key]
    return out


def is_busy_error(error):
    """Whether a ClientError is AWS refusing an operation because the environment is not Ready."""
    response = getattr(error, "response", None) or {}
    info = response.get("Error", {})
    if info.get("Code") in ("OperationInProgressFailure", "OperationInProgressException"):
        return True
    return info.get("Code") == "InvalidParameterValue" and bool(_INVALID_STATE.search(info.get("Message", "")))


def check_dns_availability(client, cname_prefix):
    found = _call(client, "check_dns_availability", CNAMEPrefix=cname_prefix)
    return bool(found.get("Available")), found.get("FullyQualifiedCNAME")


# -- CNAMEs and swaps -------------------------------------------------------------------


def normalize_cname(value):
    """A CNAME (or a CNAME prefix) compared the way DNS does: lower case, no final dot."""
    return (value or "").strip().lower().rstrip(".")


def cname_matches(cname, live_cname):
    """Whether an environment's CNAME is the live one.

    ``live_cname`` is the full name (``fastier-production.us-east-1.elasticbeanstalk.com``)
    or only its prefix (``fastier-production``), which matches
    ``<prefix>.<anything>``.
    """
    have, want = normalize_cname(cname), normalize_cname(live_cname)
    if not have or not want:
        return False
    if "." in want:
        return have == want
    return have.startswith(want + ".")


def find_cname_holder(environments, live_cname):
    """The environment (AWS shape) that holds the live CNAME, or None.

    CNAMEs are unique in a region, so at most one live environment holds it;
    Terminated environments (which released theirs) are ignored.
    """
    for environment in environments or []:
        if environment.get("Status") != "Terminated" and cname_matches(environment.get("CNAME"), live_cname):
            return environment
    return None


def swap_environment_cnames(client, source_environment_id, destination_environment_id):
    """SwapEnvironmentCNAMEs by ids (both environments must be Ready)."""
    found = _call(
        client,
        "swap_environment_cnames",
        SourceEnvironmentId=source_environment_id,
        DestinationEnvironmentId=destination_environment_id,
    )
    return (found or {}).get("ResponseMetadata", {}).get("RequestId")


def recent_events(client, environment_id, limit=10):
    """The environment's last ``limit`` events, oldest first (results, snake_case).

    For evidence in error messages: what happened before this run started
    (a health transition, a failed deploy) is not in an ``EventStream``
    primed at the start.
    """
    found = _call(client, "describe_events", EnvironmentId=environment_id, MaxRecords=max(1, int(limit)))
    return [event_to_result(event) for event in reversed(found.get("Events", []))]


def health_causes(client, environment_name):
    """Enhanced health causes of an environment (empty when enhanced health is off)."""
    try:
        found = _call(client, "describe_environment_health", EnvironmentName=environment_name, AttributeNames=["Causes", "HealthStatus", "Color"])
    except ClientError as error:
        if client_error_code(error) in ("InvalidRequestException", "InvalidRequest"):
            return []
        raise
    return list(found.get("Causes") or [])


# -- events ------------------------------------------------------------------------------


class EventStream:
    """New DescribeEvents entries of one environment (or version), oldest first.

    ``prime()`` marks what exists before an operation starts, so only the
    events of the operation are streamed; the server's clock is never
    compared with ours (StartTime is the newest event date the server gave).
    ``on_event`` is called for every new event (the module turns them into
    progress lines).
    """

    PAGE_LIMIT = 10  # pages of DescribeEvents read per poll at most

    def __init__(self, client, on_event=None, **filters):
        self.client = client
        self.filters = dict((k, v) for k, v in filters.items() if v)
        self.on_event = on_event
        self.events = []  # every new event, as results (snake_case), oldest first
        self._seen = set()
        self._since = None

    @staticmethod
    def _key(event):
        return (event.get("EventDate"), event.get("Severity"), event.get("Message"), event.get("RequestId"))

    def _fetch(self, max_records=None):
        params = dict(self.filters)
        if self._since is not None:
            params["StartTime"] = self._since
        if max_records:
            params["MaxRecords"] = max_records
        out = []
        for _page in range(self.PAGE_LIMIT):
            page = _call(self.client, "describe_events", **params)
            out.extend(page.get("Events", []))
            token = page.get("NextToken")
            if not token or max_records:
                break
            params["NextToken"] = token
        return out

    def prime(self):
        """Mark the events that exist now as seen (call before the operation)."""
        existing = self._fetch(max_records=100)
        for event in existing:
            self._seen.add(self._key(event))
        dates = [e["EventDate"] for e in existing if e.get("EventDate") is not None]
        if dates:
            self._since = max(dates)
        return self

    def retarget(self, **filters):
        """Follow another resource (e.g. the id of an environment just created)."""
        self.filters.update(dict((k, v) for k, v in filters.items() if v))

    def poll(self):
        """The events not seen before, oldest first (also appended to ``events``)."""
        # AWS lists newest first: reversed, then a stable sort, keeps the
        # server's order among events of the same timestamp.
        fresh = [e for e in reversed(self._fetch()) if self._key(e) not in self._seen]
        fresh.sort(key=lambda e: (e.get("EventDate") is None, e.get("EventDate")))
        new = []
        for event in fresh:
            key = self._key(event)
            if key in self._seen:
                continue
            self._seen.add(key)
            result = event_to_result(event)
            new.append(result)
            self.events.append(result)
            if self.on_event:
                self.on_event(result)
        dates = [e["EventDate"] for e in fresh if e.get("EventDate") is not None]
        if dates and (self._since is None or max(dates) > self._since):
            self._since = max(dates)
        return new

    def errors(self, events=None):
        return [e for e in (self.events if events is None else events) if e.get("severity") in ERROR_SEVERITIES]


def format_events(events, limit=5):
    """The last events as one line each, for an error message."""
    lines = ["{0} {1}: {2}".format(e.get("event_date"), e.get("severity"), e.get("message")) for e in events[-limit:]]
    return "; ".join(lines)


# -- waits --------------------------------------------------------------------------------


class Poller:
    """Growing poll intervals bounded by a Deadline (injectable sleep for tests)."""

    def __init__(self, deadline, first=POLL_FIRST, maximum=POLL_MAX, factor=POLL_FACTOR, sleep=time.sleep):
        self.deadline = deadline
        self.interval = first
        self.maximum = maximum
        self.factor = factor
        self._sleep = sleep

    def wait(self, last_seen=None):
        """Raise WaitTimeout when the deadline passed, else sleep one interval."""
        self.deadline.check(last_seen=last_seen)
        self._sleep(self.deadline.sleep_for(self.interval))
        self.interval = min(self.maximum, self.interval * self.factor)


def wait_for_environment(
    client,
    environment_id,
    deadline,
    *,
    target_status="Ready",
    acceptable_health=("Green",),
    events=None,
    initial=None,
    on_poll=None,
    poller=None,
    after_change=False,
):
    """Wait until the environment has ``target_status`` and an acceptable health.

    Fails fast (``EnvironmentFailed``) when a new ERROR/FATAL event appears,
    when the health *turns* Red during the wait (an environment that was
    already Red when the operation started may recover, so it is given until
    the deadline), or when the environment is terminated while we wait for
    it to be Ready. Raises ``WaitTimeout`` (from ``deadline``) with the last
    state seen. Returns the last description (None once a terminated
    environment is gone).

    ``after_change``: the wait follows a call that changes the environment
    (``initial`` = its description before): the target status counts only
    once the environment has left it or its DateUpdated moved, or after
    ``STABLE_POLLS`` polls in a row (an operation that never shows a
    transition, such as a tag update), so that a describe that still shows
    the old state cannot end the wait early.
    """
    poller = poller or Poller(deadline)
    acceptable = tuple(acceptable_health or ())
    was_red = is_red(initial)
    environment = None
    changed = not (after_change and initial)
    stable = 0
    while True:
        environment = find_environment(client, environment_id=environment_id)
        new_events = events.poll() if events is not None else []
        if on_poll:
            on_poll(environment)
        seen = events.events if events is not None else []
        errors = [e for e in new_events if e.get("severity") in ERROR_SEVERITIES]
        name = (environment or {}).get("EnvironmentName", environment_id)
        if errors:
            raise EnvironmentFailed(
                "environment {0} reported an error ({1}): {2}".format(name, describe_state(environment), format_events(errors)),
                environment,
                seen,
            )
        if environment is None:
            if target_status == "Terminated":
                return None
            raise EnvironmentFailed("environment {0} disappeared while waiting for it to be {1}".format(environment_id, target_status), None, seen)
        status = environment.get("Status")
        if not changed:
            stable += 1
            moved = environment.get("DateUpdated") != initial.get("DateUpdated")
            changed = status != target_status or moved or stable >= STABLE_POLLS
        if target_status == "Terminated":
            if status == "Terminated":
                return environment
        else:
            if status == "Terminated":
                raise EnvironmentFailed("environment {0} was terminated while waiting for it to be {1}".format(name, target_status), environment, seen)
            red_now = is_red(environment) and not health_accepted(environment, acceptable)
            if red_now and not was_red:
                raise EnvironmentFailed(
                    "environment {0} turned {1}{2}".format(name, describe_state(environment), "; events: " + format_events(seen) if seen else ""),
                    environment,
                    seen,
                )
            was_red = red_now
            if changed and status == target_status and health_accepted(environment, acceptable):
                return environment
        poller.wait(last_seen="{0} is {1}".format(name, describe_state(environment)))


def wait_until_not_busy(client, environment_id, deadline, *, events=None, poller=None, on_poll=None):
    """Wait while the environment is Launching/Updating/... (bounded); return its description.

    Used BEFORE an operation, so that a busy environment is waited for
    instead of failing with AWS's "invalid state for this operation". Health
    is not judged here. Returns None when the environment is gone.
    """
    poller = poller or Poller(deadline)
    while True:
        environment = find_environment(client, environment_id=environment_id)
        if events is not None:
            events.poll()
        if on_poll:
            on_poll(environment)
        if environment is None or environment.get("Status") not in BUSY_STATUSES:
            return environment
        poller.wait(last_seen="{0} is {1}".format(environment.get("EnvironmentName"), describe_state(environment)))


def call_when_ready(call, client, environment_id, deadline, *, events=None, poller=None, on_busy=None):
    """``call()``, retried after waiting when AWS says the environment is busy.

    AWS answers "Environment named X is in an invalid state for this
    operation. Must be Ready." (or OperationInProgress) when another
    operation runs; that is waited out (bounded by ``deadline``), any other
    error is raised.
    """
    poller = poller or Poller(deadline)
    refused_while_ready = 0
    while True:
        try:
            return call()
        except ClientError as error:  # pylint: disable=duplicate-except
            if not is_busy_error(error):
                raise
            if on_busy:
                on_busy(error)
            environment = wait_until_not_busy(client, environment_id, deadline, events=events, poller=poller)
            if environment is None:
                raise
            refused_while_ready += 1
            if refused_while_ready > 1:
                # DescribeEnvironments says Ready but the operation is still
                # refused: AWS's views converge within seconds; pause (bounded).
                poller.wait(last_seen="{0} is {1} but refuses the operation".format(environment.get("EnvironmentName"), describe_state(environment)))


# -- application versions ----------------------------------------------------------------

# botocore ships no waiter for application versions: this model follows the
# shape of its own waiters-2.json (Processed = success, Failed = failure).
WAITER_MODEL = {
    "version": 2,
    "waiters": {
        "ApplicationVersionProcessed": {
            "operation": "DescribeApplicationVersions",
            "delay": 2,
            "maxAttempts": 150,
            "acceptors": [
                {"state": "success", "matcher": "pathAll", "argument": "ApplicationVersions[].Status", "expected": "Processed"},
                {"state": "failure", "matcher": "pathAny", "argument": "ApplicationVersions[].Status", "expected": "Failed"},
                {"state": "retry", "matcher": "pathAny", "argument": "ApplicationVersions[].Status", "expected": "Unprocessed"},
                {"state": "retry", "matcher": "pathAny", "argument": "ApplicationVersions[].Status", "expected": "Processing"},
                {"state": "retry", "matcher": "pathAny", "argument": "ApplicationVersions[].Status", "expected": "Building"},
                {"state": "retry", "matcher": "error", "expected": "Throttling"},
            ],
        },
        "ApplicationVersionDeleted": {
            "operation": "DescribeApplicationVersions",
            "delay": 2,
            "maxAttempts": 150,
            "acceptors": [
                {"state": "success", "matcher": "path", "argument": "length(ApplicationVersions) == `0`", "expected": True},
                {"state": "retry", "matcher": "path", "argument": "length(ApplicationVersions) > `0`", "expected": True},
            ],
        },
    },
}


def get_waiter(client, name):
    """A botocore waiter of ``WAITER_MODEL`` bound to ``client`` (wrapped or not)."""
    if isinstance(client, RetryingBotoClientWrapper):
        client = client.client
    model = core_waiter.WaiterModel(WAITER_MODEL)
    return core_waiter.create_waiter_with_client(name, model, client)


def waiter_config(deadline, delay=None):
    """``WaiterConfig`` that fits in what is left of ``deadline``."""
    delay = delay or WAITER_MODEL["waiters"]["ApplicationVersionProcessed"]["delay"]
    attempts = max(1, int(deadline.remaining // delay) + 1)
    return {"Delay": delay, "MaxAttempts": attempts}


def wait_for_version(client, application_name, version_label, deadline, delay=None):
    """Wait (bounded) until a version is Processed; return its description.

    Raises ``WaitTimeout`` when time runs out and ``EnvironmentFailed``-like
    ``VersionFailed`` when processing failed (with the version's events).
    """
    waiter = get_waiter(client, "ApplicationVersionProcessed")
    try:
        waiter.wait(ApplicationName=application_name, VersionLabels=[version_label], WaiterConfig=waiter_config(deadline, delay))
    except core_waiter.WaiterError as error:
        version = describe_application_version(client, application_name, version_label)
        status = (version or {}).get("Status", "missing")
        if status in VERSION_PENDING_STATUSES:
            raise WaitTimeout("timed out after {0:.0f}s waiting for {1}; last seen: {2}".format(deadline.seconds, deadline.what, status)) from error
        stream = EventStream(client, ApplicationName=application_name, VersionLabel=version_label)
        try:
            events = stream.poll()
        except ClientError:
            events = []
        raise VersionFailed(
            "application version {0} of {1} is {2}{3}".format(version_label, application_name, status, ": " + format_events(events) if events else ""),
            version,
            events,
        ) from error
    return describe_application_version(client, application_name, version_label)


class VersionFailed(Exception):
    """An application version ended Failed (or cannot be processed)."""

    def __init__(self, message, version=None, events=None):
        super(VersionFailed, self).__init__(message)
        self.version = version
        self.events = list(events or [])


def client_error_code(error):
    return ((getattr(error, "response", None) or {}).get("Error") or {}).get("Code")


def client_error_message(error):
    return ((getattr(error, "response", None) or {}).get("Error") or {}).get("Message", str(error))


__all__ = [
    "BUSY_STATUSES",
    "ENV_PROPERTIES_NAMESPACE",
    "EnvironmentFailed",
    "EventStream",
    "HEALTH_COLORS",
    "HEALTH_STATUSES",
    "Poller",
    "VersionFailed",
    "WAITER_MODEL",
    "call_when_ready",
    "check_dns_availability",
    "cname_matches",
    "describe_application",
    "describe_application_version",
    "describe_environment_health",
    "describe_environments",
    "diff_option_settings",
    "environment_to_result",
    "find_cname_holder",
    "find_environment",
    "get_option_defaults",
    "get_option_settings",
    "get_tags",
    "get_waiter",
    "health_causes",
    "is_busy_error",
    "normalize_cname",
    "option_in_message",
    "option_settings_from_list",
    "option_settings_to_list",
    "options_to_remove_list",
    "plan_tags",
    "platform_satisfied",
    "recent_events",
    "swap_environment_cnames",
    "update_tags",
    "validation_errors",
    "wait_for_environment",
    "wait_for_version",
    "wait_until_not_busy",
]
