"""The local issuer's sign-in pages: Cognito managed login's authorization-code flow with PKCE, on the stack's
own port, so the web console runs the same code locally and in AWS.

- `GET /oauth2/authorize?response_type=code&client_id&redirect_uri&state&code_challenge`
  (`code_challenge_method=S256`) answers a page listing the demo users; choosing one
  (`POST /oauth2/authorize`) redirects to `redirect_uri?code=…&state=…`.
- `POST /oauth2/token` (form): `grant_type=authorization_code` (`code`, `redirect_uri`, `client_id`,
  `code_verifier`) or `grant_type=refresh_token` (`refresh_token`, `client_id`) → `{id_token, access_token,
  refresh_token, expires_in, token_type}`; errors as RFC 6749 `{"error": …}` with 400.
- `GET /logout?client_id&logout_uri` → a redirect to `logout_uri` (and the refresh tokens of nobody in
  particular stay: the console forgets its own).

Only the template's app client id is accepted, and only redirect URIs on this stack's own address. No
password: the local stack is for development.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from .apigw_events import HttpRequest, HttpResponse
from .auth import LOCAL_ISSUER, issue_token, key_id
from .seed import DemoUser, Seed

PATHS = ("/oauth2/authorize", "/oauth2/token", "/logout")
ID_TOKEN_TTL_SECONDS = 3600  # Cognito's default: the console refreshes before it runs out
CODE_TTL_SECONDS = 300
SCOPES = "openid email profile"


@dataclass(frozen=True)
class _Grant:
    username: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    expires: float


def handles(path: str) -> bool:
    return path.rstrip("/") in PATHS


class LocalAuthorizationServer:
    def __init__(
        self,
        *,
        key: rsa.RSAPrivateKey,
        seed: Seed,
        client_id: str,
        base_url: str,
        now: Callable[[], float],
    ) -> None:
        self.key = key
        self.seed = seed
        self.client_id = client_id
        self.base_url = base_url.rstrip("/")
        self.now = now
        self._codes: dict[str, _Grant] = {}
        self._refresh: dict[str, tuple[str, str]] = {}  # refresh token → (username, client id)
        self._lock = threading.Lock()

    def handle(self, request: HttpRequest) -> HttpResponse:
        path = request.raw_path.rstrip("/")
        method = request.method.upper()
        if path == "/oauth2/authorize" and method == "GET":
            return self._authorize_page(request.query_map())
        if path == "/oauth2/authorize" and method == "POST":
            return self._authorize_choice(_form(request))
        if path == "/oauth2/token" and method == "POST":
            return self._token(_form(request))
        if path == "/logout" and method == "GET":
            return self._logout(request.query_map())
        return _page(405, "Method not allowed", "<p>This address does not take that method.</p>")

    # ------------------------------------------------------------------ authorize
    def _check_request(self, params: dict[str, str]) -> str | None:
        """Why the request cannot go on (shown on the page; never redirected), or None."""
        if params.get("client_id") != self.client_id:
            return "Unknown client_id: the console's app client is the only one here."
        if not self._own_address(params.get("redirect_uri", "")):
            return f"redirect_uri must be an address of this stack ({self.base_url}/…)."
        if params.get("response_type") != "code":
            return "response_type must be code."
        if not params.get("code_challenge") or params.get("code_challenge_method") != "S256":
            return "PKCE is required: code_challenge with code_challenge_method=S256."
        return None

    def _own_address(self, uri: str) -> bool:
        return uri.startswith(self.base_url + "/")

    def _authorize_page(self, params: dict[str, str]) -> HttpResponse:
        problem = self._check_request(params)
        if problem:
            return _page(400, "Sign-in request not valid", f"<p>{html.escape(problem)}</p>")
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(params.get(name, ""))}">'
            for name in ("client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method")
        )
        hidden += '<input type="hidden" name="response_type" value="code">'
        buttons = "".join(
            f'<li><button type="submit" name="username" value="{html.escape(u.username)}">'
            f"{html.escape(u.username)}</button> {html.escape(u.name)} · {html.escape('/'.join(u.groups))}"
            f" · team {html.escape(u.team)}</li>"
            for u in self.seed.users
        )
        body = (
            "<p>Local stack: choose a demo user to sign in as (no password).</p>"
            f'<form method="post" action="/oauth2/authorize">{hidden}<ul>{buttons}</ul></form>'
        )
        return _page(200, "Sign in to LeadFlow", body)

    def _authorize_choice(self, params: dict[str, str]) -> HttpResponse:
        problem = self._check_request(params)
        if problem:
            return _page(400, "Sign-in request not valid", f"<p>{html.escape(problem)}</p>")
        user = self._user(params.get("username", ""))
        if user is None:
            return _page(400, "Unknown user", "<p>Choose one of the demo users.</p>")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(
                user.username,
                params["client_id"],
                params["redirect_uri"],
                params["code_challenge"],
                self.now() + CODE_TTL_SECONDS,
            )
        query = {"code": code, **({"state": params["state"]} if params.get("state") else {})}
        target = _with_query(params["redirect_uri"], query)
        return HttpResponse(302, [("location", target), ("cache-control", "no-store")], b"")

    # ------------------------------------------------------------------ token
    def _token(self, params: dict[str, str]) -> HttpResponse:
        grant_type = params.get("grant_type")
        if params.get("client_id") != self.client_id:
            return _oauth_error("invalid_client", 401)
        if grant_type == "authorization_code":
            with self._lock:
                grant = self._codes.pop(params.get("code", ""), None)  # a code works once
            if grant is None or grant.expires < self.now() or grant.client_id != params["client_id"]:
                return _oauth_error("invalid_grant")
            if params.get("redirect_uri") != grant.redirect_uri:
                return _oauth_error("invalid_grant")
            verifier = params.get("code_verifier", "")
            if not verifier or _s256(verifier) != grant.code_challenge:
                return _oauth_error("invalid_grant")
            return self._tokens(grant.username, grant.client_id, new_refresh=True)
        if grant_type == "refresh_token":
            with self._lock:
                holder = self._refresh.get(params.get("refresh_token", ""))
            if holder is None or holder[1] != params["client_id"]:
                return _oauth_error("invalid_grant")
            return self._tokens(holder[0], holder[1], new_refresh=False)
        return _oauth_error("unsupported_grant_type")

    def _tokens(self, username: str, client_id: str, *, new_refresh: bool) -> HttpResponse:
        user = self._user(username)
        if user is None:
            return _oauth_error("invalid_grant")
        now = self.now()
        body: dict[str, Any] = {
            "id_token": issue_token(self.key, user, client_id, now, ID_TOKEN_TTL_SECONDS),
            "access_token": self._access_token(user, client_id, now),
            "expires_in": ID_TOKEN_TTL_SECONDS,
            "token_type": "Bearer",
        }
        if new_refresh:
            refresh = secrets.token_urlsafe(32)
            with self._lock:
                self._refresh[refresh] = (user.username, client_id)
            body["refresh_token"] = refresh
        headers = [("content-type", "application/json"), ("cache-control", "no-store")]
        return HttpResponse(200, headers, json.dumps(body).encode())

    def _access_token(self, user: DemoUser, client_id: str, now: float) -> str:
        issued = int(now)
        claims = {
            "sub": user.sub,
            "iss": LOCAL_ISSUER,
            "client_id": client_id,
            "token_use": "access",
            "scope": SCOPES,
            "auth_time": issued,
            "iat": issued,
            "exp": issued + ID_TOKEN_TTL_SECONDS,
            "username": user.username,
            "cognito:groups": list(user.groups),
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": key_id(self.key)})

    # ------------------------------------------------------------------ logout
    def _logout(self, params: dict[str, str]) -> HttpResponse:
        if params.get("client_id") != self.client_id:
            return _page(400, "Sign-out request not valid", "<p>Unknown client_id.</p>")
        target = params.get("logout_uri", "")
        if not self._own_address(target):
            return _page(400, "Sign-out request not valid", "<p>logout_uri must be on this stack.</p>")
        return HttpResponse(302, [("location", target), ("cache-control", "no-store")], b"")

    def _user(self, username: str) -> DemoUser | None:
        return next((u for u in self.seed.users if u.username == username), None)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _form(request: HttpRequest) -> dict[str, str]:
    pairs = urllib.parse.parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    return dict(pairs)


def _with_query(uri: str, query: dict[str, str]) -> str:
    separator = "&" if "?" in uri else "?"
    return uri + separator + urllib.parse.urlencode(query)


def _oauth_error(error: str, status: int = 400) -> HttpResponse:
    headers = [("content-type", "application/json"), ("cache-control", "no-store")]
    return HttpResponse(status, headers, json.dumps({"error": error}).encode())


def _page(status: int, title: str, body: str) -> HttpResponse:
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font:16px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:34rem;padding:0 1rem;"
        "color:#1a1a1a}"
        "ul{list-style:none;padding:0}li{margin:.5rem 0}"
        "button{font:inherit;padding:.4rem 1rem;min-width:6rem;border:1px solid #1d4ed8;background:#1d4ed8;"
        "color:#fff;border-radius:4px;cursor:pointer}button:focus-visible{outline:3px solid #f59e0b}"
        f"</style></head><body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    headers = [("content-type", "text/html; charset=utf-8"), ("cache-control", "no-store")]
    return HttpResponse(status, headers, page.encode())
