"""The HTTP API on 127.0.0.1: routing, CORS, the JWT authorizer and API Gateway's own error answers, in
front of the function workers; plus the local-only `/_local/...` pages."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from . import cors, oauth, s3
from .apigw_events import (
    HttpRequest,
    HttpResponse,
    MalformedResponse,
    build_event,
    convert_response,
    json_response,
)
from .auth import Authorization, Forbidden, Unauthorized, identity
from .routes import match_route
from .template import HttpApi, HttpRoute, JwtAuthorizer, Template
from .workers import Invocation

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
# Uploads to S3 through the stack (`/_s3/...`, a presigned PUT): a CSV of 100,000 leads and more.
MAX_S3_BODY_BYTES = 512 * 1024 * 1024
# Connections the kernel queues until the server thread accepts them. socketserver's default is 5: a burst
# of a few dozen clients (a load test, a page's parallel fetches) then got resets or stalled SYN retries.
LISTEN_BACKLOG = 128


class Backend(Protocol):
    def invoke(self, function_logical_id: str, event: Any, timeout_s: float | None = None) -> Invocation: ...

    def authorize(
        self, authorizer: JwtAuthorizer, token: str | None, scopes: tuple[str, ...]
    ) -> Authorization: ...

    def handle_local(self, request: HttpRequest) -> HttpResponse: ...

    def handle_oauth(self, request: HttpRequest) -> HttpResponse: ...

    def handle_s3(self, request: HttpRequest) -> HttpResponse: ...


def _message(status: int, message: str) -> HttpResponse:
    return json_response(status, {"message": message})


@dataclass
class ApiGateway:
    template: Template
    backend: Backend
    log: Callable[[str], None]

    def handle(self, request: HttpRequest) -> HttpResponse:
        if request.raw_path.startswith("/_local/") or request.raw_path == "/_local":
            return self.backend.handle_local(request)
        if s3.handles(request.raw_path):
            return self.backend.handle_s3(request)  # S3 (moto) on this port, for presigned URLs
        if oauth.handles(request.raw_path):
            # Cognito managed login's pages (its own domain in AWS), served by the local issuer.
            return self.backend.handle_oauth(request)
        api = self.template.http_apis[0] if self.template.http_apis else None
        if api is None:
            return _message(404, "Not Found")
        request_id = _request_id()
        headers = request.header_map()
        if api.cors is not None and cors.is_preflight(request.method, headers):
            return HttpResponse(
                204, [*cors.preflight_headers(api.cors, headers).items(), _id_header(request_id)]
            )
        response = self._route(api, request, headers, request_id)
        response.headers.append(_id_header(request_id))
        if api.cors is not None:
            response.headers = cors.strip_cors_headers(response.headers)
            response.headers.extend(cors.response_headers(api.cors, headers).items())
        return response

    def _route(
        self, api: HttpApi, request: HttpRequest, headers: dict[str, str], request_id: str
    ) -> HttpResponse:
        match = match_route(list(api.routes), request.method, request.raw_path.split("?")[0])
        if match is None:
            return _message(404, "Not Found")
        route = match.route
        if route.payload_format_version != "2.0":
            self.log(
                f"[api] {route.route_key}: payload format {route.payload_format_version} is not emulated"
            )
            return _message(500, "Internal Server Error")
        authorization = None
        if route.authorizer is not None:
            authorizer = api.authorizers[route.authorizer]
            token = identity(authorizer, headers, request.query_map())
            try:
                authorization = self.backend.authorize(authorizer, token, route.scopes)
            except Unauthorized as exc:
                self.log(f"[api] {request.method} {request.raw_path} 401 ({exc})")
                return _message(401, "Unauthorized")
            except Forbidden:
                return _message(403, "Forbidden")
        if len(request.body) > MAX_BODY_BYTES:
            return _message(413, "Request Entity Too Large")
        event = build_event(
            request,
            route_key=route.route_key,
            path_parameters=match.path_parameters,
            api_id=api.logical_id.lower(),
            request_id=request_id,
            authorization=authorization,
        )
        return self._invoke(route, event)

    def _invoke(self, route: HttpRoute, event: dict[str, Any]) -> HttpResponse:
        invocation = self.backend.invoke(route.function_logical_id, event, route.timeout_ms / 1000)
        if invocation.timed_out:
            return _message(503, "Service Unavailable")
        if invocation.error is not None:
            return _message(500, "Internal Server Error")
        try:
            return convert_response(invocation.payload)
        except MalformedResponse as exc:
            self.log(f"[api] {route.route_key}: malformed Lambda response ({exc})")
            return _message(500, "Internal Server Error")


def _request_id() -> str:
    # API Gateway's request ids look like "JKJaXmPLvHcESHA="; a short random base64 string does the job.
    return uuid.uuid4().hex[:14] + "="


def _id_header(request_id: str) -> tuple[str, str]:
    return ("apigw-requestid", request_id)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "devstack"
    sys_version = ""
    gateway: ApiGateway  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are logged below, once, with their status and duration

    def _dispatch(self) -> None:
        started = time.perf_counter()
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("content-length") or 0)
        limit = MAX_S3_BODY_BYTES if s3.handles(path) else MAX_BODY_BYTES
        if length > limit:
            # Read and drop the body first: answering mid-upload would leave the client with a broken pipe.
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 20))
                if not chunk:
                    break
                length -= len(chunk)
            self._send(_message(413, "Request Entity Too Large"), close=True)
            return
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked(limit)
            if body is None:
                self._send(_message(413, "Request Entity Too Large"), close=True)
                return
        else:
            body = self.rfile.read(length) if length else b""
        request = HttpRequest(
            method=self.command,
            raw_path=path,
            raw_query=query,
            headers=[(k, v) for k, v in self.headers.items() if k.lower() not in ("transfer-encoding",)],
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        try:
            response = self.gateway.handle(request)
        except Exception as exc:  # the stack's own bug must not kill the connection silently
            self.gateway.log(f"[api] {self.command} {path}: devstack error {exc!r}")
            response = _message(500, "Internal Server Error")
        self._send(response)
        if not path.startswith(("/_local/", s3.PREFIX)):
            elapsed = (time.perf_counter() - started) * 1000
            self.gateway.log(f"[api] {self.command} {self.path} {response.status} {elapsed:.0f}ms")

    def _read_chunked(self, limit: int = MAX_BODY_BYTES) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks) if total <= limit else None
            total += size
            data = self.rfile.read(size)
            if total <= limit:
                chunks.append(data)
            self.rfile.readline()
            if total > limit and not data:
                return None

    def _send(self, response: HttpResponse, close: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("content-length", str(len(response.body)))
        if close:
            self.send_header("connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _dispatch

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, PROPFIND, ...) reaches the routes too and, matching none, gets API
        # Gateway's JSON 404; http.server itself would answer 501 with an HTML page.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)


class _Server(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG  # passed to listen() when the server binds
    daemon_threads = True


class GatewayServer:
    """The HTTP server in a background thread; port 0 picks a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler: type[_Handler] = type("Handler", (_Handler,), {})
        self.server = _Server((host, port), self.handler)
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self, gateway: ApiGateway) -> None:
        self.handler.gateway = gateway
        self.thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.thread is not None:
            self.server.shutdown()
        self.server.server_close()


def json_body(request: HttpRequest) -> Any:
    return json.loads(request.body or b"{}")
