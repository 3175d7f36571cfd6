"""The web console in a real browser: Debian's chromium driven by Playwright, against a local stack of this
package's own (started the way tests/e2e starts it). Screenshots of the pages: test-artefacts/browser/."""

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from devstack.stack import LocalStack
from tests.e2e.conftest import Client

ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = ROOT / "test-artefacts" / "browser"
AXE_SCRIPT = ROOT / "devstack" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}
DEADLINE_SECONDS = 60.0
# What a person would wait for at most, on a busy machine (assertions retry until then).
expect.set_options(timeout=20_000)


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Debian's chromium is not installed: run `make install` (apt-get install chromium)")
    return path


# Package scope: stopped once this worker has run the browser tests (see tests/e2e/conftest.py).
@pytest.fixture(scope="package")
def console_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(
        port=0,
        data_dir=tmp_path_factory.mktemp("devstack-browser"),
        log=lambda _line: None,
        tables_in_memory=True,
    )
    with stack:
        # The console's function answers once its worker is warm (the stack prewarms it in the background).
        eventually(lambda: Client(stack.url).request("GET", "/app/config.json").status == 200, timeout=90)
        yield stack


@pytest.fixture(scope="package")
def api(console_stack: LocalStack) -> Client:
    return Client(console_stack.url)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """Pages in fresh browser contexts (a context each: its own session storage, as another person's tab)."""
    contexts = []

    def make(viewport: dict[str, int] = DESKTOP) -> Page:
        context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        # Generous: the machine running the tests may be busy; a page that never comes still fails.
        context.set_default_timeout(20_000)
        context.set_default_navigation_timeout(45_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def sign_in(page: Page, username: str) -> None:
    """Through the console's Sign in button and the local issuer's page of demo users."""
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sign in to LeadFlow")).to_be_visible()
    page.get_by_role("button", name=username, exact=True).click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def screenshot(page: Page, name: str) -> Path:
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def page_check(page: Page, name: str) -> list[dict[str, Any]]:
    """A screenshot of the page as the person sees it, and what axe-core finds serious or critical on it."""
    screenshot(page, name)
    return axe_violations(page)


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it is now (axe-core from devstack/package.json,
    evaluated in the page: the console's Content-Security-Policy refuses injected script tags)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT.read_text())
    results = page.evaluate("async () => (await window.axe.run(document)).violations")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in results
        if v["impact"] in ("serious", "critical")
    ]


def eventually(check: Callable[[], Any], timeout: float = DEADLINE_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s")
        time.sleep(0.25)


def bearer(stack: LocalStack, role: str | None = None, user: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token(role, user=user)}"}


def capture_assigned_lead(api: Client, stack: LocalStack, **fields: Any) -> dict[str, Any]:
    """A lead through the website form that the seed rules score 70 (B), so that assignment gives it to a rep
    of the sales team; returns it once assigned, with `username`: its rep's demo user name."""
    body = {
        "first_name": "Grace",
        "last_name": f"Hopper{uuid.uuid4().hex[:4]}",
        "email": f"grace-{uuid.uuid4().hex[:8]}@navy-research.com",
        "title": "CTO",
        "company": "Navy Research",
        "employee_count": 5000,
        "industry": "Technology",
        "annual_revenue": 50_000_000,
        **fields,
    }
    captured = api.request("POST", "/capture/form", json_body=body)
    assert captured.status == 201, captured.body
    lead_id = captured.json()["id"]
    admin = bearer(stack, "admin")
    lead: dict[str, Any] = eventually(
        lambda: (r := api.request("GET", f"/leads/{lead_id}", headers=admin).json())["assigned_to"] and r
    )
    rep = next(u for u in stack.seed.users if u.sub == lead["assigned_to"])
    return {**lead, "username": rep.username}
