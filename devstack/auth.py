"""The local stack as its own token issuer, and API Gateway's JWT authorizer checks.

Tokens look like Cognito ID tokens. The key is created once and kept in the data folder, so `devstack token`
works whether or not the stack runs, and tokens stay valid across restarts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .seed import DemoUser
from .template import JwtAuthorizer

# Stands in for the Cognito user pool's issuer URL; `.localhost` is reserved, so it can never be a real host.
LOCAL_ISSUER = "http://cognito.localhost/leadflow-local"
TOKEN_TTL_SECONDS = 12 * 3600


class Unauthorized(Exception):
    """401 from the authorizer."""


class Forbidden(Exception):
    """403: a valid token without the route's scopes."""


def load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    tmp.replace(path)
    return key


def key_id(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:12]).decode().rstrip("=")


def jwks(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**jwk, "kid": key_id(key), "alg": "RS256", "use": "sig"}]}


def issue_token(
    key: rsa.RSAPrivateKey, user: DemoUser, client_id: str, now: float, ttl: int = TOKEN_TTL_SECONDS
) -> str:
    issued = int(now)
    claims = {
        "sub": user.sub,
        "iss": LOCAL_ISSUER,
        "aud": client_id,
        "token_use": "id",
        "auth_time": issued,
        "iat": issued,
        "exp": issued + ttl,
        "email": user.email,
        "email_verified": True,
        "name": user.name,
        "cognito:username": user.username,
        "cognito:groups": list(user.groups),
        "custom:team": user.team,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": key_id(key)})


@dataclass(frozen=True)
class Authorization:
    claims: dict[str, str]
    scopes: list[str] | None


def identity(authorizer: JwtAuthorizer, headers: dict[str, str], query: dict[str, str]) -> str | None:
    """The token named by the authorizer's identity source ($request.header.X / $request.querystring.x)."""
    source = authorizer.identity_source.split(",")[0].strip()
    if source.lower().startswith("$request.header."):
        value = headers.get(source[len("$request.header.") :].lower())
    elif source.startswith("$request.querystring."):
        value = query.get(source[len("$request.querystring.") :])
    else:
        value = None
    if not value:
        return None
    return value[7:].strip() if value[:7].lower() == "bearer " else value.strip()


def authorize(
    token: str | None,
    *,
    key: rsa.RSAPrivateKey,
    issuer: str,
    audience: tuple[str, ...],
    now: float,
    required_scopes: tuple[str, ...] = (),
) -> Authorization:
    """API Gateway's JWT authorizer rules: RS256 signature by a key of the issuer's JWKS, `iss` equal to the
    issuer, `aud` (or `client_id` for access tokens) one of the audiences, `exp` in the future, `nbf`/`iat`
    not in the future, and, if the route has scopes, one of them in `scope`."""
    if not token:
        raise Unauthorized("no token")
    try:
        header = jwt.get_unverified_header(token)
        if header.get("kid") not in (None, key_id(key)):
            raise Unauthorized("unknown key id")
        claims: dict[str, Any] = jwt.decode(
            token,
            key.public_key(),
            algorithms=["RS256"],
            # Time and audience are checked below against the stack's (shiftable) clock and API GW's rules.
            options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(str(exc)) from exc
    if claims.get("iss") != issuer:
        raise Unauthorized("wrong issuer")
    token_audience = claims.get("aud", claims.get("client_id"))
    audiences = token_audience if isinstance(token_audience, list) else [token_audience]
    if not any(a in audience for a in audiences):
        raise Unauthorized("wrong audience")
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] <= now:
        raise Unauthorized("expired")
    for claim in ("nbf", "iat"):
        if isinstance(claims.get(claim), int | float) and claims[claim] > now + 1:
            raise Unauthorized(f"{claim} in the future")
    scopes = str(claims["scope"]).split() if "scope" in claims else None
    if required_scopes and not set(required_scopes) & set(scopes or []):
        raise Forbidden("missing scope")
    return Authorization(claims={k: claim_string(v) for k, v in claims.items()}, scopes=scopes)


def claim_string(value: Any) -> str:
    """How API Gateway hands claims to the function: every value a string, arrays as "[a b]"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(claim_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
