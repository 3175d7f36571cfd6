"""HMAC signing keys (page cursors, unsubscribe links): the only module that reads them from AWS.

In AWS each key is a Secrets Manager secret that the stack generates (template.yaml: `CursorSigningKey`,
`UnsubscribeSigningKey`; the functions get its ARN), read through Powertools parameters and cached for five
minutes. Tests and benchmarks may give a key directly instead (`CURSOR_SIGNING_KEY`,
`UNSUBSCRIBE_SIGNING_KEY`).

A value holds one key per line, newest first: the first line signs, every line verifies. A rotation puts a
new value with the new key on the first line and the old one on the second; warm functions pick it up
within the cache time, and nothing signed with the old key stops verifying until its line is removed.
"""

from crm.platform.errors import RetryableError

KEY_CACHE_SECONDS = 300


def key_lines(value: str) -> list[bytes]:
    """The keys of a value, newest first (blank lines and surrounding spaces ignored)."""
    return [line.strip().encode() for line in value.splitlines() if line.strip()]


def signing_keys(direct_key: str, secret_id: str, purpose: str) -> list[bytes]:
    """The signing keys, newest first: the directly configured key, else the secret's lines. `purpose` names
    the key in errors. Anything that keeps the keys from being read (no configuration, a missing, unreadable
    or empty secret) is a RetryableError: an API answers 503, a queued job is tried again later."""
    if direct_key.strip():
        return key_lines(direct_key)
    if not secret_id:
        raise RetryableError(f"Not configured: no {purpose}")
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        # SecretString as text; a secret stored as SecretBinary comes back as bytes.
        value: str | bytes = parameters.get_secret(secret_id, max_age=KEY_CACHE_SECONDS)
    except GetParameterError as exc:
        raise RetryableError(f"The {purpose} is unavailable right now; try again") from exc
    try:
        text = value.decode("utf-8") if isinstance(value, bytes) else value
    except UnicodeDecodeError as exc:
        raise RetryableError(f"The {purpose} is not text: store it as a SecretString") from exc
    keys = key_lines(text)
    if not keys:
        raise RetryableError(f"The {purpose} is empty")
    return keys
