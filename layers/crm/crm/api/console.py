"""The web console's files under /app/ and its sign-in settings (/app/config.json).

The console is static: an HTML page, one script and one style sheet (functions/console/static), served by
the API itself so that `sam deploy` publishes it with the code it talks to. It signs in with the
authorization-code flow with PKCE against `console_auth_base_url` (Cognito's managed login domain in AWS,
the local stack's own issuer locally) as the public app client `console_client_id`, and comes back to
`public_console_url`. Pages are addressed by the URL's fragment (`/app/#/leads/<id>`), so the files have
fixed names whatever the stage prefix in front of them.
"""

from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import BaseModel, ConfigDict

from crm.platform.settings import Settings

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}


class ConsoleConfig(BaseModel):
    """What the console's script reads at start (GET /app/config.json)."""

    model_config = ConfigDict(frozen=True)

    client_id: str
    authorize_url: str
    token_url: str
    logout_url: str
    console_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "ConsoleConfig":
        base = settings.console_auth_base_url.rstrip("/")
        return cls(
            client_id=settings.console_client_id,
            authorize_url=f"{base}/oauth2/authorize",
            token_url=f"{base}/oauth2/token",
            logout_url=f"{base}/logout",
            console_url=settings.public_console_url,
        )


def _security_headers(config: ConsoleConfig) -> dict[str, str]:
    auth = urlsplit(config.token_url)
    auth_origin = f"{auth.scheme}://{auth.netloc}" if auth.netloc else ""
    policy = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {auth_origin}; form-action 'self' {auth_origin}; "
        "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )
    return {
        "Content-Security-Policy": " ".join(policy.split()),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",  # the sign-in code in the URL goes nowhere else
        "X-Frame-Options": "DENY",
    }


def build_router(static_dir: Path, config: ConsoleConfig) -> Router:
    router = Router()
    files = {
        path.name: path.read_bytes()
        for path in static_dir.iterdir()
        if path.is_file() and path.suffix in _CONTENT_TYPES
    }
    config_body = config.model_dump_json()
    headers = _security_headers(config)

    def _file(name: str) -> Response[str]:
        body = config_body if name == "config.json" else files.get(name, b"").decode()
        if name != "config.json" and name not in files:
            return Response(
                status_code=HTTPStatus.NOT_FOUND,
                content_type="text/plain; charset=utf-8",
                body="Not found",
                headers=headers,
            )
        suffix = Path(name).suffix
        # The page and its settings are read again each time; a new deploy's scripts then load at once.
        return Response(
            status_code=HTTPStatus.OK,
            content_type=_CONTENT_TYPES[suffix],
            body=body,
            headers={**headers, "Cache-Control": "no-cache"},
        )

    @router.get("/app", include_in_schema=False)
    def _root() -> Response[str]:
        path = router.current_event.path
        if path.endswith("/"):  # an API that hands /app/ to this route
            return _file("index.html")
        # Relative, so that a stage prefix in front (/dev/app) is kept.
        return Response(
            status_code=HTTPStatus.PERMANENT_REDIRECT,
            content_type="text/plain; charset=utf-8",
            body="",
            headers={**headers, "Location": "app/"},
        )

    @router.get("/app/", include_in_schema=False)
    def _index() -> Response[str]:
        return _file("index.html")

    @router.get("/app/<name>", include_in_schema=False)
    def _named(name: str) -> Response[str]:
        return _file(name or "index.html")

    return router
