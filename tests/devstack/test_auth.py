"""The local issuer's tokens and API Gateway's JWT authorizer rules."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.auth import (
    LOCAL_ISSUER,
    Forbidden,
    Unauthorized,
    authorize,
    claim_string,
    identity,
    issue_token,
    jwks,
    key_id,
    load_or_create_key,
)
from devstack.seed import load_seed
from devstack.template import JwtAuthorizer

CLIENT_ID = "leadflow-local-UserPoolClient"


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    return load_or_create_key(tmp_path_factory.mktemp("auth") / "key.pem")


@pytest.fixture(scope="module")
def manager():
    return load_seed().user(role="manager")


def check(token, key, now=None, scopes=()):
    return authorize(
        token,
        key=key,
        issuer=LOCAL_ISSUER,
        audience=(CLIENT_ID,),
        now=now or time.time(),
        required_scopes=scopes,
    )


def test_a_demo_token_passes_and_claims_reach_the_function_as_strings(key, manager):
    result = check(issue_token(key, manager, CLIENT_ID, time.time()), key)
    assert result.claims["email"] == "manager@demo.leadflow.local"
    assert result.claims["cognito:groups"] == "[manager]"
    assert result.claims["token_use"] == "id"
    assert result.claims["email_verified"] == "true"
    assert all(isinstance(v, str) for v in result.claims.values())
    assert result.scopes is None


def test_tokens_look_like_cognito_id_tokens(key, manager):
    claims = jwt.decode(issue_token(key, manager, CLIENT_ID, 1_000), options={"verify_signature": False})
    assert claims["iss"] == LOCAL_ISSUER and claims["aud"] == CLIENT_ID and claims["sub"] == manager.sub
    assert claims["exp"] - claims["iat"] == 12 * 3600
    assert claims["cognito:groups"] == ["manager"] and claims["custom:team"] == "sales"


def test_missing_forged_expired_or_foreign_tokens_are_refused(key, manager):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = time.time()
    with pytest.raises(Unauthorized):
        check(None, key)
    with pytest.raises(Unauthorized):
        check("not.a.token", key)
    with pytest.raises(Unauthorized):
        check(issue_token(other_key, manager, CLIENT_ID, now), key)
    with pytest.raises(Unauthorized):
        check(issue_token(key, manager, CLIENT_ID, now - 13 * 3600), key, now)
    with pytest.raises(Unauthorized):
        check(issue_token(key, manager, "someone-else", now), key)
    foreign = jwt.encode(
        {"iss": "https://elsewhere", "aud": CLIENT_ID, "exp": now + 60}, key, algorithm="RS256"
    )
    with pytest.raises(Unauthorized):
        check(foreign, key)


def test_the_clock_offset_expires_tokens(key, manager):
    token = issue_token(key, manager, CLIENT_ID, time.time())
    with pytest.raises(Unauthorized):
        check(token, key, now=time.time() + 86_400)


def test_route_scopes_need_a_matching_scope_claim(key):
    now = time.time()
    access = jwt.encode(
        {"iss": LOCAL_ISSUER, "client_id": CLIENT_ID, "exp": now + 60, "scope": "leads/read"},
        key,
        algorithm="RS256",
    )
    assert check(access, key, scopes=("leads/read",)).scopes == ["leads/read"]
    with pytest.raises(Forbidden):
        check(access, key, scopes=("leads/write",))


def test_the_key_is_kept_and_published(tmp_path):
    first = load_or_create_key(tmp_path / "k.pem")
    again = load_or_create_key(tmp_path / "k.pem")
    assert key_id(first) == key_id(again)
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600
    published = jwks(first)["keys"][0]
    assert published["kid"] == key_id(first) and published["kty"] == "RSA" and published["alg"] == "RS256"


def test_identity_source_reads_bearer_tokens():
    authorizer = JwtAuthorizer("A", "$request.header.Authorization", LOCAL_ISSUER, (CLIENT_ID,))
    assert identity(authorizer, {"authorization": "Bearer abc"}, {}) == "abc"
    assert identity(authorizer, {"authorization": "abc"}, {}) == "abc"
    assert identity(authorizer, {}, {}) is None


def test_claim_strings():
    assert claim_string(["a", "b"]) == "[a b]"
    assert claim_string(12) == "12"
    assert claim_string(False) == "false"
