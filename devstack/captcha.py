"""The local stack's captcha provider: a siteverify endpoint speaking Turnstile's and reCAPTCHA's protocol
(form fields `secret`, `response`, `remoteip`; answer `{"success": …, "error-codes": […]}`), so the capture
routes' captcha check runs without the internet. Started with `CaptchaSecret` set, the stack points
`CaptchaVerifyUrl` here: the one token that passes is Cloudflare's documented test token."""

from typing import Any
from urllib.parse import parse_qs

PASSING_TOKEN = "XXXX.DUMMY.TOKEN.XXXX"
PATH = "/_local/captcha/siteverify"


def siteverify(body: bytes) -> dict[str, Any]:
    fields = {name: values[0] for name, values in parse_qs(body.decode("utf-8", "replace")).items()}
    if not fields.get("secret"):
        return {"success": False, "error-codes": ["missing-input-secret"]}
    if not fields.get("response"):
        return {"success": False, "error-codes": ["missing-input-response"]}
    if fields["response"] != PASSING_TOKEN:
        return {"success": False, "error-codes": ["invalid-input-response"]}
    return {"success": True, "error-codes": [], "hostname": "127.0.0.1"}
