"""The web console's files under /app/: what the browser gets (the page, its script, its sign-in settings)
and the headers that keep it from running anything else."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from crm.api import console
from crm.platform.settings import Settings

STATIC = Path(__file__).resolve().parents[2] / "functions" / "console" / "static"


@pytest.fixture(scope="module")
def app() -> APIGatewayHttpResolver:
    settings = Settings(
        table_name="t",
        public_console_url="https://api.example.com/prod/app/",
        console_client_id="client-123",
        console_auth_base_url="https://leadflow-prod.auth.eu-west-1.amazoncognito.com/",
    )
    resolver = APIGatewayHttpResolver()
    resolver.include_router(console.build_router(STATIC, console.ConsoleConfig.from_settings(settings)))
    return resolver


def get(app: APIGatewayHttpResolver, path: str) -> dict[str, Any]:
    event = {
        "version": "2.0",
        "routeKey": "GET /app/{proxy+}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {},
        "requestContext": {"http": {"method": "GET", "path": path}, "stage": "$default"},
        "isBase64Encoded": False,
    }
    return app.resolve(event, None)  # type: ignore[arg-type]


def test_the_settings_name_the_managed_login_the_client_and_the_callback(app: APIGatewayHttpResolver) -> None:
    response = get(app, "/app/config.json")

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {
        "client_id": "client-123",
        "authorize_url": "https://leadflow-prod.auth.eu-west-1.amazoncognito.com/oauth2/authorize",
        "token_url": "https://leadflow-prod.auth.eu-west-1.amazoncognito.com/oauth2/token",
        "logout_url": "https://leadflow-prod.auth.eu-west-1.amazoncognito.com/logout",
        "console_url": "https://api.example.com/prod/app/",
    }


def test_the_page_and_its_script_come_with_a_policy_allowing_only_this_site_and_the_login(
    app: APIGatewayHttpResolver,
) -> None:
    page = get(app, "/app/")
    script = get(app, "/app/app.js")

    assert page["statusCode"] == 200 and '<script src="app.js" defer></script>' in page["body"]
    assert page["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert script["headers"]["Content-Type"] == "text/javascript; charset=utf-8"
    policy = page["headers"]["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "connect-src 'self' https://leadflow-prod.auth.eu-west-1.amazoncognito.com;" in policy
    assert "frame-ancestors 'none'" in policy
    assert page["headers"]["Referrer-Policy"] == "no-referrer"


def test_the_files_load_nothing_from_elsewhere() -> None:
    for path in STATIC.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text, path.name
        assert "innerHTML" not in text, path.name  # everything from the API is text, never markup


def test_app_without_its_slash_redirects_relatively_and_unknown_files_are_404(
    app: APIGatewayHttpResolver,
) -> None:
    bare = get(app, "/app")
    unknown = get(app, "/app/secrets.txt")

    assert bare["statusCode"] == 308 and bare["headers"]["Location"] == "app/"  # keeps a /prod stage prefix
    assert unknown["statusCode"] == 404


def test_every_page_in_the_navigation_has_a_route_in_the_script() -> None:
    links = re.findall(r'href="(#/[a-z-]+)"', (STATIC / "index.html").read_text())
    script = (STATIC / "app.js").read_text()
    routes = {pattern.replace("\\/", "/") for pattern in re.findall(r"\[/\^(#[^$]+)\$/", script)}
    assert {"#/assignment-rules", "#/users", "#/nurture", "#/rules"} <= set(links)
    assert set(links) <= routes, set(links) - routes
