"""Fault injection for the local stack: the functions' SQS and SES calls go through this small proxy in front
of moto, which answers them with the throttling error each service sends while a fault is switched on
(`POST /_local/faults {"throttle": ["sqs", "ses"], "seconds": 5}`). Nothing else changes: the functions see
exactly the errors AWS would send them (SQS `RequestThrottled`, SES `Throttling`, SES v2 `429
TooManyRequestsException`), botocore retries them as it would on AWS, and what still fails is retried by the
event sources.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVICES = ("sqs", "ses")  # what can be throttled: the SigV4 signing names of SQS and SES (v1 and v2)
MAX_SECONDS = 600
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


class FaultSwitch:
    """Which services are throttled, until when (monotonic clock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}
        self.rejected: dict[str, int] = dict.fromkeys(SERVICES, 0)

    def throttle(self, services: list[str], seconds: float) -> None:
        unknown = [s for s in services if s not in SERVICES]
        if not services or unknown:
            raise ValueError(f"throttle: a list of services among {', '.join(SERVICES)} (got {services!r})")
        if not 0 <= seconds <= MAX_SECONDS:
            raise ValueError(f"seconds: between 0 and {MAX_SECONDS}")
        with self._lock:
            for service in services:
                self._until[service] = time.monotonic() + seconds

    def throttled(self, service: str) -> bool:
        with self._lock:
            if self._until.get(service, 0.0) > time.monotonic():
                self.rejected[service] += 1
                return True
            return False

    def as_dict(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            return {
                "throttled": {s: round(u - now, 1) for s, u in self._until.items() if u > now},
                "rejected_calls": dict(self.rejected),
            }


def parse_request(body: bytes) -> tuple[list[str], float]:
    """`{"throttle": ["sqs", "ses"], "seconds": 5}` → (services, seconds); ValueError names the field."""
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise ValueError("body: a JSON object") from exc
    if not isinstance(data, dict):
        raise ValueError("body: a JSON object")
    services = data.get("throttle")
    if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
        raise ValueError(f"throttle: a list of services among {', '.join(SERVICES)}")
    seconds = data.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValueError("seconds: a number")
    return services, float(seconds)


def _throttling_response(service: str, content_type: str) -> tuple[int, dict[str, str], bytes]:
    if "x-amz-json" in content_type:  # SQS's JSON protocol
        body = {"__type": "com.amazonaws.sqs#RequestThrottled", "message": "Rate exceeded (local fault)"}
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "x-amzn-query-error": "RequestThrottled;Sender",
        }
        return 400, headers, json.dumps(body).encode()
    if "x-www-form-urlencoded" in content_type:  # query protocol: SES v1 (and SQS's older clients)
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
            "<Message>Maximum sending rate exceeded (local fault).</Message></Error>"
            "<RequestId>local-fault</RequestId></ErrorResponse>"
        )
        return 400, {"Content-Type": "text/xml"}, xml.encode()
    # REST-JSON: SES v2
    body = {"message": "Too many requests (local fault)"}
    return (
        429,
        {"Content-Type": "application/json", "x-amzn-ErrorType": "TooManyRequestsException"},
        (json.dumps(body).encode()),
    )


class FaultProxy:
    """An HTTP proxy to moto that throttles what the switch says."""

    def __init__(
        self,
        target_url: str,
        switch: FaultSwitch,
        observe: Callable[[str, int, bytes], None] | None = None,
    ) -> None:
        """`observe(service, status, payload)` sees every answer moto gave (the outbox stamps sent mail)."""
        target = urllib.parse.urlsplit(target_url)
        self.target_host = target.hostname or "127.0.0.1"
        self.target_port = target.port or 80
        self.switch = switch
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                match = _SCOPE.search(self.headers.get("Authorization", ""))
                service = match.group(1) if match else ""
                if service in SERVICES and proxy.switch.throttled(service):
                    status, headers, payload = _throttling_response(
                        service, self.headers.get("Content-Type", "")
                    )
                else:
                    status, headers, payload = proxy.forward(self.command, self.path, self.headers, body)
                    if observe is not None:
                        observe(service, status, payload)
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._local = threading.local()
        self.thread = threading.Thread(target=self.server.serve_forever, name="fault proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FaultProxy:
        self.thread.start()
        return self

    def forward(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        for attempt in (1, 2):  # a kept-alive connection moto closed meanwhile is opened again once
            connection = getattr(self._local, "connection", None)
            if connection is None:
                connection = http.client.HTTPConnection(self.target_host, self.target_port, timeout=60)
                self._local.connection = connection
            try:
                forwarded = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
                connection.request(method, path, body=body, headers=forwarded)
                response = connection.getresponse()
                payload = response.read()
                return response.status, dict(response.getheaders()), payload
            except (OSError, http.client.HTTPException):
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.server.shutdown()
            self.server.server_close()
