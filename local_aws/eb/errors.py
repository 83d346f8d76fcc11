"""Elastic Beanstalk errors, with the codes and messages AWS returns.

moto serializes any :class:`ServiceException` raised by a response method
into the query protocol's ``<ErrorResponse>``; the code decides the error
class botocore raises on the client side (``ClientError`` with that code).
Codes that are not error shapes of the service model (``InvalidParameterValue``,
``ConfigurationValidationException``...) are common AWS query errors: moto
sends them with HTTP 400.
"""

from __future__ import annotations

from moto.core.exceptions import ServiceException


class InvalidAction(ServiceException):
    """An action this local endpoint does not implement (AWS: an unknown action)."""

    code = "InvalidAction"


class InvalidParameterValue(ServiceException):
    code = "InvalidParameterValue"


class InvalidParameterCombination(ServiceException):
    code = "InvalidParameterCombination"


class MissingRequiredParameter(ServiceException):
    code = "MissingRequiredParameter"


class ValidationError(ServiceException):
    """A request that breaks a constraint of the API model (length, range)."""

    code = "ValidationError"


class ConfigurationValidationException(ServiceException):
    code = "ConfigurationValidationException"

    def __init__(self, detail: str):
        super().__init__(f"Configuration validation exception: {detail}")
        self.detail = detail


class InvalidRequestException(ServiceException):
    code = "InvalidRequestException"


class OperationInProgress(ServiceException):
    code = "OperationInProgressFailure"


class ResourceNotFound(ServiceException):
    code = "ResourceNotFoundException"


class ResourceTypeNotSupported(ServiceException):
    code = "ResourceTypeNotSupportedException"


class TooManyTags(ServiceException):
    code = "TooManyTagsException"


class S3LocationNotInServiceRegion(ServiceException):
    code = "S3LocationNotInServiceRegionException"


class SourceBundleDeletion(ServiceException):
    code = "SourceBundleDeletionFailure"


# Messages AWS returns verbatim (seen in real responses); kept in one place so
# tests and docs can refer to them.
def no_application(name: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"No Application named '{name}' found.")


def no_application_version(label: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"No Application Version named '{label}' found.")


def no_environment(name: str | None = None, env_id: str | None = None) -> InvalidParameterValue:
    if name:
        return InvalidParameterValue(f"No Environment found for EnvironmentName = '{name}'.")
    return InvalidParameterValue(f"No Environment found for EnvironmentId = '{env_id}'.")


def must_be_ready(name: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"Environment named {name} is in an invalid state for this operation. Must be Ready.")


def length_violation(value: str, field: str, minimum: int, maximum: int) -> ValidationError:
    bound = f"greater than or equal to {minimum}" if len(value) < minimum else f"less than or equal to {maximum}"
    return ValidationError(f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must have length {bound}")
