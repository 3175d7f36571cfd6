"""Partner webhook secrets, from SSM Parameter Store (SecureString), cached by Powertools parameters.

Powertools caches what it finds, not what it does not: unknown partners are remembered here for a minute,
so a flood of `/webhooks/<random>` costs no SSM call each.
"""

import time

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from crm.platform.errors import RetryableError

SECRET_CACHE_SECONDS = 300
UNKNOWN_CACHE_SECONDS = 60
MAX_UNKNOWN_REMEMBERED = 1024
_unknown_until: dict[str, float] = {}  # parameter name -> monotonic time until which it is known missing


def parameter_name(secrets_path: str, partner: str) -> str:
    return f"{secrets_path.rstrip('/')}/{partner}/webhook-secret"


def partner_secrets(secrets_path: str, partner: str) -> list[str] | None:
    """The partner's current secrets (a rotation keeps two, one per line), or None if unknown."""
    name = parameter_name(secrets_path, partner)
    if _unknown_until.get(name, 0.0) > time.monotonic():
        return None
    try:
        value = parameters.get_parameter(name, decrypt=True, max_age=SECRET_CACHE_SECONDS)
    except GetParameterError as exc:
        # Powertools wraps the SDK error without `from`, so the original is the implicit context.
        cause = exc.__cause__ or exc.__context__
        if (
            isinstance(cause, ClientError)
            and cause.response.get("Error", {}).get("Code") == "ParameterNotFound"
        ):
            _remember_unknown(name)
            return None
        raise RetryableError("Partner secrets are unavailable right now; try again") from exc
    return [line.strip() for line in str(value).splitlines() if line.strip()]


def _remember_unknown(name: str) -> None:
    if len(_unknown_until) >= MAX_UNKNOWN_REMEMBERED:
        _unknown_until.clear()  # a flood of random names: start over rather than grow without bound
    _unknown_until[name] = time.monotonic() + UNKNOWN_CACHE_SECONDS
