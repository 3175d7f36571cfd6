"""Server-side captcha check for the public capture routes (Cloudflare Turnstile or Google reCAPTCHA).

The widget on the page puts a token in the form (`cf-turnstile-response`, `g-recaptcha-response`, or
`captcha_token` from a script); the route asks the provider's siteverify endpoint whether it is genuine,
with the secret only the server knows. Off while no secret is configured (CaptchaSecret). The local stack
answers siteverify itself (devstack/captcha.py), so the check is exercised without the internet.
"""

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import MutableMapping
from typing import Any

from crm.platform.errors import InvalidInput, RetryableError
from crm.platform.observability import logger

TOKEN_FIELD = "captcha_token"
# Where the widgets put their token in a plain HTML form, besides our own field name.
TOKEN_FIELDS = (TOKEN_FIELD, "cf-turnstile-response", "g-recaptcha-response")
MAX_TOKEN_LENGTH = 2048  # Turnstile's limit
VERIFY_TIMEOUT_SECONDS = 3.0


def pop_token(data: MutableMapping[str, Any]) -> Any:
    """Take the captcha token out of the submitted fields (it is never kept with the lead)."""
    found = None
    for name in TOKEN_FIELDS:
        value = data.pop(name, None)
        if found is None:
            found = value
    return found


class CaptchaVerifier:
    def __init__(self, secret: str, verify_url: str) -> None:
        if secret and urllib.parse.urlsplit(verify_url).scheme not in ("http", "https"):
            raise ValueError("CAPTCHA_VERIFY_URL must be an http(s) URL")
        self.secret = secret
        self.verify_url = verify_url

    @property
    def enabled(self) -> bool:
        return bool(self.secret)

    def verify(self, token: Any, remote_ip: str | None) -> None:
        """Return if the captcha was solved (or the check is off); else InvalidInput naming the token field,
        or RetryableError (503) if the provider cannot be asked right now."""
        if not self.enabled:
            return
        if not isinstance(token, str) or not token.strip() or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidInput.single(TOKEN_FIELD, "is required: complete the captcha and submit again")
        answer = self._ask(token.strip(), remote_ip)
        if answer.get("success") is not True:
            logger.info("Captcha not accepted", extra={"error_codes": answer.get("error-codes")})
            raise InvalidInput.single(TOKEN_FIELD, "was not accepted: complete the captcha and submit again")

    def _ask(self, token: str, remote_ip: str | None) -> dict[str, Any]:
        fields = {"secret": self.secret, "response": token}
        if remote_ip:
            fields["remoteip"] = remote_ip
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self.verify_url,
            data=urllib.parse.urlencode(fields).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=VERIFY_TIMEOUT_SECONDS) as response:  # noqa: S310
                answer = json.loads(response.read(64 * 1024))
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            logger.warning("Captcha provider unreachable", extra={"error": type(exc).__name__})
            raise RetryableError("The captcha could not be checked right now; try again") from exc
        return answer if isinstance(answer, dict) else {}
