"""What reps and managers do in the web console, in a real browser (Debian's chromium), against the local
stack: sign in through the local login page, work a lead from assignment to conversion, tune a scoring rule,
and never see a lead that is not theirs."""

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from devstack.stack import LocalStack
from tests.e2e.conftest import Client

from .conftest import PHONE, capture_assigned_lead, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_a_rep_signs_in_and_finds_the_lead_assignment_gave_them(
    api: Client, console_stack: LocalStack, new_page: Callable[..., Page]
) -> None:
    # Given a lead captured through the form, scored and assigned to a rep
    lead = capture_assigned_lead(api, console_stack)
    page = new_page(PHONE)

    # When the rep opens the console on a phone and signs in through the local login page
    page.goto(console_stack.url + "/app/")
    sign_in(page, lead["username"])

    # Then their queue lists the lead, with its grade and score
    expect(page.get_by_role("heading", name="My leads")).to_be_visible()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=f"Grace {lead['last_name']}"))
    expect(row).to_contain_text("B")
    expect(row).to_contain_text("70")
    # and a search by the last name's first letters finds it too
    page.get_by_label("Search").fill(lead["last_name"][:8])
    page.get_by_role("button", name="Show leads").click()
    expect(page.get_by_role("link", name=f"Grace {lead['last_name']}")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^1 lead on this page$"))).to_be_visible()
    screenshot(page, "my-leads-375px")
