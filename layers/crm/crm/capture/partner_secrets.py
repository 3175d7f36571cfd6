"""Partner webhook secrets, from SSM Parameter Store (SecureString), cached by Powertools parameters."""

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from crm.platform.errors import RetryableError

SECRET_CACHE_SECONDS = 300


def parameter_name(secrets_path: str, partner: str) -> str:
    return f"{secrets_path.rstrip('/')}/{partner}/webhook-secret"


def partner_secrets(secrets_path: str, partner: str) -> list[str] | None:
    """The partner's current secrets (a rotation keeps two, one per line), or None if unknown."""
    try:
        value = parameters.get_parameter(
            parameter_name(secrets_path, partner), decrypt=True, max_age=SECRET_CACHE_SECONDS
        )
    except GetParameterError as exc:
        # Powertools wraps the SDK error without `from`, so the original is the implicit context.
        cause = exc.__cause__ or exc.__context__
        if (
            isinstance(cause, ClientError)
            and cause.response.get("Error", {}).get("Code") == "ParameterNotFound"
        ):
            return None
        raise RetryableError("Partner secrets are unavailable right now; try again") from exc
    return [line.strip() for line in str(value).splitlines() if line.strip()]
