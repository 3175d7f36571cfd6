"""The local issuer's sign-in pages (Cognito managed login's authorization-code flow with PKCE): the code
works once, only with its verifier and redirect URI, only for the template's client; refresh gives new ID
tokens the API's authorizer accepts."""

import base64
import hashlib
import json
import re
import urllib.parse

import pytest

from devstack.apigw_events import HttpRequest
from devstack.auth import LOCAL_ISSUER, authorize, load_or_create_key
from devstack.oauth import LocalAuthorizationServer
from devstack.seed import load_seed

CLIENT_ID = "leadflow-local-UserPoolClient"
BASE = "http://127.0.0.1:3999"
CONSOLE = BASE + "/app/"
VERIFIER = "a-verifier-long-enough-to-be-a-real-pkce-verifier-0123456789"
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).decode().rstrip("=")
NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    return load_or_create_key(tmp_path_factory.mktemp("oauth") / "key.pem")


@pytest.fixture
def server(key):
    return LocalAuthorizationServer(
        key=key, seed=load_seed(), client_id=CLIENT_ID, base_url=BASE, now=lambda: NOW
    )


def get(server, path, **query):
    return server.handle(HttpRequest("GET", path, urllib.parse.urlencode(query), [], b"", "127.0.0.1"))


def post(server, path, **form):
    body = urllib.parse.urlencode(form).encode()
    headers = [("content-type", "application/x-www-form-urlencoded")]
    return server.handle(HttpRequest("POST", path, "", headers, body, "127.0.0.1"))


def authorize_params(**overrides):
    return {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": CONSOLE,
        "state": "s1",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        **overrides,
    }


def code_for(server, username="rep1"):
    response = post(server, "/oauth2/authorize", username=username, **authorize_params())
    assert response.status == 302
    location = dict(response.headers)["location"]
    assert location.startswith(CONSOLE + "?")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def exchange(server, code, **overrides):
    form = {
        "grant_type": "authorization_code",
        "client_id": CLIENT_ID,
        "code": code,
        "redirect_uri": CONSOLE,
        "code_verifier": VERIFIER,
        **overrides,
    }
    return post(server, "/oauth2/token", **form)


def test_the_login_page_lists_every_demo_user_as_a_button(server):
    response = get(server, "/oauth2/authorize", **authorize_params())

    assert response.status == 200
    page = response.body.decode()
    for user in load_seed().users:
        assert f'name="username" value="{user.username}"' in page
    assert f'value="{CHALLENGE}"' in page and 'action="/oauth2/authorize"' in page


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ({"client_id": "someone-else"}, "client_id"),
        ({"redirect_uri": "https://evil.example/app/"}, "redirect_uri"),
        ({"code_challenge": ""}, "PKCE"),
        ({"code_challenge_method": "plain"}, "PKCE"),
        ({"response_type": "token"}, "response_type"),
    ],
)
def test_a_request_it_cannot_serve_is_a_page_saying_why_never_a_redirect(server, override, says):
    response = get(server, "/oauth2/authorize", **authorize_params(**override))

    assert response.status == 400
    assert says in response.body.decode() and "location" not in dict(response.headers)


def test_a_code_with_its_verifier_gives_an_id_token_the_api_accepts(server, key):
    response = exchange(server, code_for(server, "rep1"))

    assert response.status == 200
    tokens = json.loads(response.body)
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600 and tokens["refresh_token"]
    claims = authorize(
        tokens["id_token"], key=key, issuer=LOCAL_ISSUER, audience=(CLIENT_ID,), now=NOW
    ).claims
    assert claims["cognito:username"] == "rep1" and claims["cognito:groups"] == "[rep]"
    access = authorize(tokens["access_token"], key=key, issuer=LOCAL_ISSUER, audience=(CLIENT_ID,), now=NOW)
    assert access.scopes == ["openid", "email", "profile"]


@pytest.mark.parametrize(
    "override",
    [
        {"code_verifier": "not-the-verifier"},
        {"code_verifier": ""},
        {"redirect_uri": BASE + "/elsewhere"},
        {"code": "made-up"},
    ],
)
def test_a_wrong_verifier_redirect_or_code_is_invalid_grant(server, override):
    override = dict(override)
    issued = code_for(server)

    response = exchange(server, override.pop("code", issued), **override)

    assert response.status == 400 and json.loads(response.body) == {"error": "invalid_grant"}


def test_a_code_works_once(server):
    code = code_for(server)
    assert exchange(server, code).status == 200

    again = exchange(server, code)

    assert again.status == 400 and json.loads(again.body) == {"error": "invalid_grant"}


def test_another_client_id_at_the_token_endpoint_is_invalid_client(server):
    response = exchange(server, code_for(server), client_id="someone-else")

    assert response.status == 401 and json.loads(response.body) == {"error": "invalid_client"}


def test_a_refresh_token_gives_a_new_id_token_for_the_same_user(server, key):
    tokens = json.loads(exchange(server, code_for(server, "manager")).body)

    response = post(
        server,
        "/oauth2/token",
        grant_type="refresh_token",
        client_id=CLIENT_ID,
        refresh_token=tokens["refresh_token"],
    )

    assert response.status == 200
    refreshed = json.loads(response.body)
    claims = authorize(
        refreshed["id_token"], key=key, issuer=LOCAL_ISSUER, audience=(CLIENT_ID,), now=NOW
    ).claims
    assert claims["cognito:username"] == "manager" and "refresh_token" not in refreshed
    bad = post(server, "/oauth2/token", grant_type="refresh_token", client_id=CLIENT_ID, refresh_token="nope")
    assert bad.status == 400


def test_logout_returns_only_to_the_stack_itself(server):
    back = get(server, "/logout", client_id=CLIENT_ID, logout_uri=CONSOLE)
    elsewhere = get(server, "/logout", client_id=CLIENT_ID, logout_uri="https://evil.example/")

    assert back.status == 302 and dict(back.headers)["location"] == CONSOLE
    assert elsewhere.status == 400 and re.search("logout_uri", elsewhere.body.decode())
