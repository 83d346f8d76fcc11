"""Configuration options: the catalogue, defaults and validation.

The catalogue follows "General options for all environments" of the Elastic
Beanstalk developer guide (defaults and valid values from its tables) for the
namespaces the project's roles use, plus the Python platform's namespace.
``DescribeConfigurationOptions`` serves it; ``CreateEnvironment``,
``UpdateEnvironment`` and ``ValidateConfigurationSettings`` check settings
against it with the messages AWS uses:

* ``Invalid option specification (Namespace: 'N', OptionName: 'O'): Unknown configuration setting.``
* ``Invalid option value: 'V' (Namespace: 'N', OptionName: 'O'): <reason>``

Namespaces AWS knows but this catalogue does not model (classic ELB, RDS,
scheduled actions, other platforms' container options...) are accepted
without validation; any other namespace is unknown, as on AWS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

# Change severities (ConfigurationOptionDescription.ChangeSeverity).
NO_INTERRUPTION = "NoInterruption"
RESTART_ENV = "RestartEnvironment"
RESTART_APP = "RestartApplicationServer"

ENV_PROPERTIES = "aws:elasticbeanstalk:application:environment"
ASG = "aws:autoscaling:asg"

OptionKey = tuple[str, str]  # (namespace, option name)


@dataclass(frozen=True)
class OptionSpec:
    """One option as DescribeConfigurationOptions describes it."""

    name: str
    namespace: str = ""
    default: str | None = None
    value_type: str = "Scalar"  # Scalar | List | Boolean (AWS also returns Boolean)
    value_options: tuple[str, ...] = ()
    number: str | None = None  # "int" or "float": the value must be a number
    min_value: int | None = None
    max_value: int | None = None
    max_length: int | None = None
    regex: tuple[str, str] | None = None  # (pattern, label)
    severity: str = NO_INTERRUPTION

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {
            "Namespace": self.namespace,
            "Name": self.name,
            "ChangeSeverity": self.severity,
            "UserDefined": False,
            "ValueType": self.value_type,
        }
        optional = {
            "DefaultValue": self.default,
            "ValueOptions": list(self.value_options) or None,
            "MinValue": self.min_value,
            "MaxValue": self.max_value,
            "MaxLength": self.max_length,
            "Regex": {"Pattern": self.regex[0], "Label": self.regex[1]} if self.regex else None,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    def problem(self, value: str) -> str | None:
        """Why ``value`` is not valid for this option (None when it is)."""
        checks = (self._check_boolean, self._check_choice, self._check_number, self._check_length, self._check_regex)
        for check in checks:
            reason = check(value)
            if reason:
                return reason
        return None

    def _check_boolean(self, value: str) -> str | None:
        if self.value_type == "Boolean" and value.lower() not in ("true", "false"):
            return "Value is not a boolean (true or false)."
        return None

    def _check_choice(self, value: str) -> str | None:
        if not self.value_options or self.value_type == "Boolean":
            return None
        items = [v.strip() for v in value.split(",")] if self.value_type == "List" else [value]
        allowed = ", ".join(self.value_options)
        for item in items:
            if item not in self.value_options:
                return f"Value is not one of the allowed values: [{allowed}]"
        return None

    def _check_number(self, value: str) -> str | None:
        if not self.number:
            return None
        try:
            number = int(value) if self.number == "int" else float(value)
        except ValueError:
            return "Value is not an integer." if self.number == "int" else "Value is not a number."
        if self.min_value is not None and number < self.min_value:
            return f"Value is less than minimum allowed value: {self.min_value}"
        if self.max_value is not None and number > self.max_value:
            return f"Value is greater than maximum allowed value: {self.max_value}"
        return None

    def _check_length(self, value: str) -> str | None:
        if self.max_length is not None and len(value) > self.max_length:
            return f"Value is longer than maximum allowed length: {self.max_length}"
        return None

    def _check_regex(self, value: str) -> str | None:
        if self.regex and not re.fullmatch(self.regex[0], value):
            pattern, label = self.regex
            return f"Value does not satisfy regex: '{pattern}' [{label}]"
        return None


# -- small constructors, so the catalogue reads like the documentation tables --


def integer(name: str, default: int | None, low: int | None = None, high: int | None = None, severity: str = NO_INTERRUPTION) -> OptionSpec:
    return OptionSpec(name, default=None if default is None else str(default), number="int", min_value=low, max_value=high, severity=severity)


def decimal(name: str, default: int, low: int, high: int) -> OptionSpec:
    return OptionSpec(name, default=str(default), number="float", min_value=low, max_value=high)


def boolean(name: str, default: bool | None = False, severity: str = NO_INTERRUPTION) -> OptionSpec:
    text = None if default is None else str(default).lower()
    return OptionSpec(name, default=text, value_type="Boolean", value_options=("true", "false"), severity=severity)


def choice(name: str, default: str | None, options: Iterable[str], severity: str = NO_INTERRUPTION) -> OptionSpec:
    return OptionSpec(name, default=default, value_options=tuple(options), severity=severity)


def text(name: str, default: str | None = None, severity: str = NO_INTERRUPTION, regex: tuple[str, str] | None = None) -> OptionSpec:
    return OptionSpec(name, default=default, regex=regex, severity=severity)


def listing(name: str, default: str | None = None, options: Iterable[str] = (), severity: str = NO_INTERRUPTION) -> OptionSpec:
    return OptionSpec(name, default=default, value_type="List", value_options=tuple(options), severity=severity)


ISO_DURATION = (r"^PT(\d+H)?(\d+M)?(\d+S)?$", "ISO8601 duration, for example PT30M")
MATCHER_HTTP_CODE = (
    r"^((\d{3}(-\d{3})?)|(\d{3}(,\d{3})*))$",
    "The configured value for 'MatcherHTTPCode' is invalid. A valid value must be a single code of 3 digits, "
    "a comma separated list of codes (e.g 200,210), or a range of codes (e.g 200-210).",
)
WEEKLY_TIME = (r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun):([01]\d|2[0-3]):[0-5]\d$", "Day and time in day:hour:minute format, for example Tue:09:00")
INSTANCE_TYPE = (r"^[a-z][a-z0-9-]*\.[a-z0-9]+$", "An EC2 instance type, for example t3.micro")
RETENTION_DAYS = ("1", "3", "5", "7", "14", "30", "60", "90", "120", "150", "180", "365", "400", "545", "731", "1827", "3653")


def _process_options() -> list[OptionSpec]:
    return [
        integer("DeregistrationDelay", 20, 0, 3600),
        integer("HealthCheckInterval", 15, 5, 300),
        text("HealthCheckPath", "/"),
        integer("HealthCheckTimeout", 5, 1, 60),
        integer("HealthyThresholdCount", 3, 2, 10),
        text("MatcherHTTPCode", "200", regex=MATCHER_HTTP_CODE),
        integer("Port", 80, 1, 65535),
        choice("Protocol", "HTTP", ("TCP", "HTTP", "HTTPS")),
        boolean("StickinessEnabled", False),
        integer("StickinessLBCookieDuration", 86400, 1, 604800),
        choice("StickinessType", "lb_cookie", ("lb_cookie",)),
        integer("UnhealthyThresholdCount", 5, 2, 10),
    ]


def _listener_options() -> list[OptionSpec]:
    return [
        text("DefaultProcess", "default"),
        boolean("ListenerEnabled", True),
        choice("Protocol", "HTTP", ("HTTP", "HTTPS", "TCP")),
        listing("Rules"),
        text("SSLCertificateArns"),
        text("SSLPolicy"),
    ]


def _log_options(first: OptionSpec) -> list[OptionSpec]:
    return [first, boolean("DeleteOnTerminate", False), choice("RetentionInDays", "7", RETENTION_DAYS)]


# Namespace -> its options. Keys with <...> are patterns (listener ports,
# process and rule names); they are matched by _TEMPLATES below.
_CATALOGUE: dict[str, list[OptionSpec]] = {
    "aws:autoscaling:asg": [
        choice("Availability Zones", "Any", ("Any", "Any 1", "Any 2", "Any 3")),
        integer("Cooldown", 360, 0, 10000),
        listing("Custom Availability Zones"),
        boolean("EnableCapacityRebalancing", False),
        integer("MinSize", 1, 1, 10000),
        integer("MaxSize", 4, 1, 10000),
    ],
    "aws:autoscaling:launchconfiguration": [
        text("BlockDeviceMappings", severity=RESTART_ENV),
        boolean("DisableIMDSv1", False, RESTART_ENV),
        text("EC2KeyName", severity=RESTART_ENV),
        text("IamInstanceProfile", severity=RESTART_ENV),
        text("ImageId", severity=RESTART_ENV),
        text("InstanceType", "t3.micro", RESTART_ENV, regex=INSTANCE_TYPE),
        choice("MonitoringInterval", "5 minute", ("1 minute", "5 minute"), RESTART_ENV),
        integer("RootVolumeIOPS", None, 100, 64000, RESTART_ENV),
        integer("RootVolumeSize", None, 8, 16384, RESTART_ENV),
        choice("RootVolumeType", None, ("standard", "gp2", "gp3", "io1"), RESTART_ENV),
        listing("SecurityGroups", "elasticbeanstalk-default", severity=RESTART_ENV),
        text("SSHSourceRestriction", severity=RESTART_ENV),
    ],
    "aws:autoscaling:trigger": [
        integer("BreachDuration", 5, 1, 600),
        integer("EvaluationPeriods", 1, 1, 600),
        integer("LowerBreachScaleIncrement", -1),
        decimal("LowerThreshold", 2000000, 0, 20000000),
        choice(
            "MeasureName",
            "NetworkOut",
            (
                "CPUUtilization",
                "NetworkIn",
                "NetworkOut",
                "DiskWriteOps",
                "DiskReadBytes",
                "DiskReadOps",
                "DiskWriteBytes",
                "Latency",
                "RequestCount",
                "HealthyHostCount",
                "UnhealthyHostCount",
                "TargetResponseTime",
            ),
        ),  # fmt: skip
        integer("Period", 5, 1, 600),
        choice("Statistic", "Average", ("Minimum", "Maximum", "Sum", "Average")),
        choice("Unit", "Bytes", ("Seconds", "Percent", "Bytes", "Bits", "Count", "Bytes/Second", "Bits/Second", "Count/Second", "None")),
        integer("UpperBreachScaleIncrement", 1),
        decimal("UpperThreshold", 6000000, 0, 20000000),
    ],
    "aws:autoscaling:updatepolicy:rollingupdate": [
        integer("MaxBatchSize", None, 1, 10000),
        integer("MinInstancesInService", None, 0, 9999),
        text("PauseTime", regex=ISO_DURATION),
        boolean("RollingUpdateEnabled", False),
        choice("RollingUpdateType", "Time", ("Time", "Health", "Immutable")),
        text("Timeout", "PT30M", regex=ISO_DURATION),
    ],
    "aws:ec2:instances": [
        boolean("EnableSpot", False),
        listing("InstanceTypes", "t3.micro,t3.small", severity=RESTART_ENV),
        integer("SpotFleetOnDemandBase", 0, 0, 10000),
        integer("SpotFleetOnDemandAboveBasePercentage", 70, 0, 100),
        text("SpotMaxPrice"),
        listing("SupportedArchitectures", "x86_64", ("x86_64", "arm64"), RESTART_ENV),
    ],
    "aws:ec2:vpc": [
        boolean("AssociatePublicIpAddress", None, RESTART_ENV),
        listing("DBSubnets", severity=RESTART_ENV),
        choice("ELBScheme", "public", ("public", "internal"), RESTART_ENV),
        listing("ELBSubnets", severity=RESTART_ENV),
        listing("Subnets", severity=RESTART_ENV),
        text("VPCId", severity=RESTART_ENV),
    ],
    "aws:elasticbeanstalk:application": [text("Application Healthcheck URL", "")],
    ENV_PROPERTIES: [],
    "aws:elasticbeanstalk:cloudwatch:logs": _log_options(boolean("StreamLogs", False)),
    "aws:elasticbeanstalk:cloudwatch:logs:health": _log_options(boolean("HealthStreamingEnabled", False)),
    "aws:elasticbeanstalk:command": [
        integer("BatchSize", 100, 1, 10000),
        choice("BatchSizeType", "Percentage", ("Percentage", "Fixed")),
        choice("DeploymentPolicy", "AllAtOnce", ("AllAtOnce", "Rolling", "RollingWithAdditionalBatch", "Immutable", "TrafficSplitting")),
        boolean("IgnoreHealthCheck", False),
        integer("Timeout", 600, 1, 3600),
    ],
    "aws:elasticbeanstalk:container:python": [
        integer("NumProcesses", 1, 1, 10000, RESTART_APP),
        integer("NumThreads", 15, 1, 10000, RESTART_APP),
        text("WSGIPath", "application", RESTART_APP),
    ],
    "aws:elasticbeanstalk:environment": [
        choice("EnvironmentType", "LoadBalanced", ("SingleInstance", "LoadBalanced"), RESTART_ENV),
        boolean("LoadBalancerIsShared", False, RESTART_ENV),
        choice("LoadBalancerType", "classic", ("classic", "application", "network"), RESTART_ENV),
        text("ServiceRole"),
    ],
    "aws:elasticbeanstalk:environment:process:<process_name>": _process_options(),
    "aws:elasticbeanstalk:environment:proxy": [choice("ProxyServer", "nginx", ("nginx", "apache", "none"), RESTART_APP)],
    "aws:elasticbeanstalk:healthreporting:system": [
        text("ConfigDocument"),
        boolean("EnhancedHealthAuthEnabled", True),
        choice("HealthCheckSuccessThreshold", "Ok", ("Ok", "Warning", "Degraded", "Severe")),
        choice("SystemType", "basic", ("basic", "enhanced")),
    ],
    "aws:elasticbeanstalk:hostmanager": [boolean("LogPublicationControl", False)],
    "aws:elasticbeanstalk:managedactions": [
        boolean("ManagedActionsEnabled", True),
        text("PreferredStartTime", regex=WEEKLY_TIME),
        text("ServiceRoleForManagedUpdates"),
    ],
    "aws:elasticbeanstalk:managedactions:platformupdate": [
        boolean("InstanceRefreshEnabled", False),
        choice("UpdateLevel", None, ("patch", "minor")),
    ],
    "aws:elasticbeanstalk:sns:topics": [
        text("Notification Endpoint"),
        choice("Notification Protocol", "email", ("http", "https", "email", "email-json", "sqs")),
        text("Notification Topic ARN"),
        text("Notification Topic Name"),
    ],
    "aws:elasticbeanstalk:trafficsplitting": [integer("EvaluationTime", 5, 3, 600), integer("NewVersionPercent", 10, 1, 100)],
    "aws:elasticbeanstalk:xray": [boolean("XRayEnabled", False)],
    "aws:elbv2:listener:<listener_port>": _listener_options(),
    "aws:elbv2:listenerrule:<rule_name>": [
        listing("HostHeaders"),
        listing("PathPatterns"),
        integer("Priority", 1, 1, 1000),
        text("Process", "default"),
    ],
    "aws:elbv2:loadbalancer": [
        text("AccessLogsS3Bucket"),
        boolean("AccessLogsS3Enabled", False),
        text("AccessLogsS3Prefix"),
        integer("IdleTimeout", None, 1, 3600),
        text("ManagedSecurityGroup"),
        listing("SecurityGroups"),
    ],
}

# Namespaces with free-form option names (every name is valid, no defaults).
FREE_FORM = (ENV_PROPERTIES, "aws:elasticbeanstalk:environment:proxy:staticfiles")

# Namespaces AWS accepts that this catalogue does not model: not validated.
UNMODELLED = re.compile(
    r"^(aws:elb:.*|aws:rds:dbinstance|aws:autoscaling:scheduledaction|aws:elasticbeanstalk:sqsd|aws:elasticbeanstalk:monitoring"
    r"|aws:elasticbeanstalk:customoption|aws:cloudformation:template:parameter|aws:elasticbeanstalk:container:.*)$"
)

_TEMPLATES = {
    "aws:elasticbeanstalk:environment:process:<process_name>": re.compile(r"^aws:elasticbeanstalk:environment:process:[A-Za-z0-9_-]+$"),
    "aws:elbv2:listener:<listener_port>": re.compile(r"^aws:elbv2:listener:(default|\d{1,5})$"),
    "aws:elbv2:listenerrule:<rule_name>": re.compile(r"^aws:elbv2:listenerrule:[A-Za-z0-9_-]+$"),
}

# The concrete namespaces an environment starts with (templates instantiated).
DEFAULT_NAMESPACES = {
    "aws:elasticbeanstalk:environment:process:<process_name>": ("aws:elasticbeanstalk:environment:process:default",),
    "aws:elbv2:listener:<listener_port>": ("aws:elbv2:listener:default",),
    "aws:elbv2:listenerrule:<rule_name>": (),
}


def _catalogue_key(namespace: str) -> str | None:
    if namespace in _CATALOGUE:
        return namespace
    for key, pattern in _TEMPLATES.items():
        if pattern.match(namespace):
            return key
    return None


def specs_for(namespace: str) -> dict[str, OptionSpec] | None:
    """The options of a namespace (None when the catalogue does not model it)."""
    key = _catalogue_key(namespace)
    if key is None:
        return None
    return {spec.name: replace(spec, namespace=namespace) for spec in _CATALOGUE[key]}


# Namespaces that exist only on some platforms: namespace -> word in the stack name.
PLATFORM_NAMESPACES = {"aws:elasticbeanstalk:container:python": "Python"}


def _applies(key: str, solution_stack: str | None) -> bool:
    word = PLATFORM_NAMESPACES.get(key)
    return word is None or (solution_stack is not None and word in solution_stack)


def all_specs(solution_stack: str | None = None) -> list[OptionSpec]:
    """Every option for a platform, templates instantiated with their default names."""
    out: list[OptionSpec] = []
    for key in sorted(_CATALOGUE):
        if not _applies(key, solution_stack):
            continue
        for namespace in DEFAULT_NAMESPACES.get(key, (key,)):
            out.extend((specs_for(namespace) or {}).values())
    return out


def defaults(solution_stack: str | None = None) -> dict[OptionKey, str]:
    """The default value of every option of the platform that has one."""
    return {(spec.namespace, spec.name): spec.default for spec in all_specs(solution_stack) if spec.default is not None}


# -- validation ---------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    namespace: str
    option: str
    message: str  # without the "Configuration validation exception: " prefix


def unknown(namespace: str, option: str) -> Problem:
    return Problem(namespace, option, f"Invalid option specification (Namespace: '{namespace}', OptionName: '{option}'): Unknown configuration setting.")


def invalid(namespace: str, option: str, value: str, reason: str) -> Problem:
    return Problem(namespace, option, f"Invalid option value: '{value}' (Namespace: '{namespace}', OptionName: '{option}'): {reason}")


def check_known(namespace: str, option: str) -> Problem | None:
    """Unknown-option problem for a setting or an option to remove."""
    specs = specs_for(namespace)
    if specs is not None:
        return None if option in specs or namespace in FREE_FORM else unknown(namespace, option)
    if namespace in FREE_FORM or UNMODELLED.match(namespace):
        return None
    return unknown(namespace, option)


def check_setting(namespace: str, option: str, value: str) -> Problem | None:
    problem = check_known(namespace, option)
    if problem:
        return problem
    if namespace == ENV_PROPERTIES:
        return _check_env_property(option, value)
    specs = specs_for(namespace)
    spec = specs.get(option) if specs else None
    reason = spec.problem(value) if spec else None
    return invalid(namespace, option, value, reason) if reason else None


def _check_env_property(option: str, value: str) -> Problem | None:
    if not option or len(option) > 128:
        return invalid(ENV_PROPERTIES, option, value, "Environment property names must be 1 to 128 characters long.")
    if len(value) > 4096:
        return invalid(ENV_PROPERTIES, option, value, "Environment property values must be at most 4096 characters long.")
    return None


def check_consistency(effective: Mapping[OptionKey, str]) -> list[Problem]:
    """Rules that involve several options (after the new settings are merged)."""
    problems: list[Problem] = []
    low, high = effective.get((ASG, "MinSize")), effective.get((ASG, "MaxSize"))
    if low and high and low.lstrip("-").isdigit() and high.lstrip("-").isdigit() and int(low) > int(high):
        problems.append(invalid(ASG, "MinSize", low, f"MinSize must be less than or equal to MaxSize ({high})."))
    command = "aws:elasticbeanstalk:command"
    size, size_type = effective.get((command, "BatchSize")), effective.get((command, "BatchSizeType"))
    if size_type == "Percentage" and size and size.isdigit() and int(size) > 100:
        problems.append(invalid(command, "BatchSize", size, "Value is greater than maximum allowed value: 100"))
    return problems
