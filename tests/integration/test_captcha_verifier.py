"""The captcha check's decisions, against a provider answering on a local port (so not a unit test)."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import pytest
from crm.platform.captcha import CaptchaVerifier, pop_token
from crm.platform.errors import InvalidInput, RetryableError


class Provider(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_POST(self) -> None:
        fields = {
            k: v[0]
            for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()
        }
        Provider.seen.append(fields)
        body = json.dumps({"success": fields.get("response") == "good"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def provider_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Provider.seen.clear()
    yield f"http://127.0.0.1:{server.server_port}/siteverify"
    server.shutdown()


def test_off_without_a_secret_asks_nobody(provider_url: str) -> None:
    CaptchaVerifier("", provider_url).verify(None, None)
    assert Provider.seen == []


def test_a_good_token_passes_and_the_provider_gets_secret_token_and_ip(provider_url: str) -> None:
    CaptchaVerifier("s3cret", provider_url).verify(" good ", "203.0.113.9")
    assert Provider.seen == [{"secret": "s3cret", "response": "good", "remoteip": "203.0.113.9"}]


@pytest.mark.parametrize("token", [None, "", "   ", 42, "bad", "x" * 3000])
def test_a_missing_or_refused_token_is_invalid_input_naming_the_field(
    provider_url: str, token: object
) -> None:
    with pytest.raises(InvalidInput) as refused:
        CaptchaVerifier("s3cret", provider_url).verify(token, None)
    assert [problem.field for problem in refused.value.problems] == ["captcha_token"]


def test_an_unreachable_provider_is_retryable_not_a_crash() -> None:
    with pytest.raises(RetryableError):
        CaptchaVerifier("s3cret", "http://127.0.0.1:9/siteverify").verify("good", None)


def test_a_verify_url_that_is_not_http_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="http"):
        CaptchaVerifier("s3cret", "file:///etc/passwd")


def test_every_widget_field_is_taken_out_of_the_submission() -> None:
    data = {"email": "a@example.com", "cf-turnstile-response": "t1", "g-recaptcha-response": "t2"}
    assert pop_token(data) == "t1"
    assert data == {"email": "a@example.com"}
