"""Solution stacks and platform ARNs.

The known solution stacks are moto's list (what ``ListAvailableSolutionStacks``
returns). A stack name such as ``64bit Amazon Linux 2023 v4.6.0 running Python
3.11`` maps to the platform ARN
``arn:aws:elasticbeanstalk:<region>::platform/Python 3.11 running on 64bit Amazon Linux 2023/4.6.0``,
as on AWS, and back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from moto.elasticbeanstalk.responses import SOLUTION_STACK_DETAILS

from .errors import InvalidParameterCombination, InvalidParameterValue

_STACK = re.compile(r"^64bit (?P<os>.+?) v(?P<version>[\d.]+) running (?P<platform>.+)$")
_ARN = re.compile(
    r"^arn:aws:elasticbeanstalk:(?P<region>[a-z0-9-]+):(?P<account>\d*):platform/(?P<platform>.+) running on 64bit (?P<os>.+)/(?P<version>[\d.]+)$"
)

STACKS: tuple[str, ...] = tuple(detail["SolutionStackName"] for detail in SOLUTION_STACK_DETAILS)  # type: ignore[misc]


@dataclass(frozen=True)
class Platform:
    solution_stack: str
    platform_arn: str


def platform_arn(solution_stack: str, region: str) -> str:
    match = _STACK.match(solution_stack)
    if not match:
        return f"arn:aws:elasticbeanstalk:{region}::platform/{solution_stack}"
    return f"arn:aws:elasticbeanstalk:{region}::platform/{match['platform']} running on 64bit {match['os']}/{match['version']}"


def stack_from_arn(arn: str) -> str | None:
    match = _ARN.match(arn)
    if not match or match["account"]:  # custom platforms (with an account) are not modelled
        return None
    name = f"64bit {match['os']} v{match['version']} running {match['platform']}"
    return name if name in STACKS else None


def resolve(solution_stack: str | None, arn: str | None, region: str, template: str | None = None) -> Platform:
    """The platform of a CreateEnvironment/UpdateEnvironment request."""
    if solution_stack and arn:
        raise InvalidParameterCombination("You cannot specify both SolutionStackName and PlatformArn.")
    if arn:
        stack = stack_from_arn(arn)
        if stack is None:
            raise InvalidParameterValue(f"No Platform named '{arn}' found.")
        return Platform(stack, platform_arn(stack, region))
    if solution_stack:
        if solution_stack not in STACKS:
            raise InvalidParameterValue(f"No Solution Stack named '{solution_stack}' found.")
        return Platform(solution_stack, platform_arn(solution_stack, region))
    if template:
        raise InvalidParameterValue(f"No Configuration Template named '{template}' found.")
    raise InvalidParameterValue("Either a platform (SolutionStackName or PlatformArn) or a configuration template (TemplateName) must be specified.")
