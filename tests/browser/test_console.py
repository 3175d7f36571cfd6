"""What reps and managers do in the web console, in a real browser (Debian's chromium), against the local
stack: sign in through the local login page, work a lead from assignment to conversion, tune a scoring rule,
and never see a lead that is not theirs."""

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Route, expect

from devstack.stack import LocalStack
from tests.e2e.conftest import Client

from .conftest import PHONE, bearer, capture_assigned_lead, eventually, page_check, sign_in

pytestmark = pytest.mark.browser


def test_a_rep_signs_in_and_finds_the_lead_assignment_gave_them(
    api: Client, console_stack: LocalStack, new_page: Callable[..., Page]
) -> None:
    # Given a lead captured through the form, scored and assigned to a rep
    lead = capture_assigned_lead(api, console_stack)
    page = new_page(PHONE)

    # When the rep opens the console on a phone and signs in through the local login page
    page.goto(console_stack.url + "/app/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page_check(page, "sign-in-375px") == []
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sign in to LeadFlow")).to_be_visible()
    assert page_check(page, "local-login-page-375px") == []
    page.go_back()
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
    assert page_check(page, "my-leads-375px") == []


def test_a_rep_works_a_lead_from_its_score_to_conversion_and_follows_the_links(
    api: Client, console_stack: LocalStack, new_page: Callable[..., Page]
) -> None:
    # Given a lead assigned to a rep, signed in
    lead = capture_assigned_lead(api, console_stack)
    task = api.request(
        "POST",
        f"/leads/{lead['id']}/tasks",
        json_body={"title": "Send the security questionnaire", "due_at": "2030-01-15T09:00:00Z"},
        headers=bearer(console_stack, "manager"),
    )
    assert task.status == 201, task.body
    page = new_page()
    page.goto(f"{console_stack.url}/app/#/leads/{lead['id']}")
    sign_in(page, lead["username"])

    # When they open the lead, they read why it scored what it did: the rules, with their points
    expect(page.get_by_role("heading", name=f"Grace {lead['last_name']}")).to_be_visible()
    ledger = page.get_by_role("region", name="Score ledger")
    expect(page.get_by_text("Score 70, grade B, from 5 rules.")).to_be_visible()
    expect(ledger.get_by_role("row").filter(has_text="Target industry")).to_contain_text("+10")
    expect(page.get_by_text("null")).to_have_count(0)
    # and the lead's own tasks
    expect(page.get_by_role("list", name="Tasks of this lead")).to_contain_text(
        "Send the security questionnaire (open)"
    )
    assert page_check(page, "lead") == []

    # They record a call: it joins the timeline
    page.get_by_label("Activity type").select_option("call_logged")
    page.get_by_label("What happened").fill("Discussed the rollout plan")
    page.get_by_role("button", name="Record activity").click()
    expect(page.get_by_role("region", name="Score ledger")).to_be_visible()
    expect(page.get_by_text("Discussed the rollout plan")).to_be_visible()

    # and mark the person do-not-email, as they asked on the call
    page.get_by_role("button", name="Mark do-not-email").click()
    expect(page.get_by_role("button", name="Allow email again")).to_be_visible()
    expect(
        page.locator("dt", has_text="Do not email").locator("xpath=following-sibling::dd[1]")
    ).to_have_text("yes")
    assert (
        api.request("GET", f"/leads/{lead['id']}", headers=bearer(console_stack, "admin")).json()[
            "do_not_email"
        ]
        is True
    )
    assert page_check(page, "lead-actions") == []

    # and they qualify it with the four BANT answers
    for answer in ("Has budget", "Has authority", "Has need", "Has timeline"):
        page.get_by_label(answer).check()
    page.get_by_label("Notes").fill("Budget approved for Q3")
    page.get_by_role("button", name="Save qualification").click()
    expect(page.get_by_text("qualified", exact=True)).to_be_visible()

    # and convert it: a bad amount is said next to its field, then a good one converts
    page.get_by_label("Amount").fill("-5")
    page.get_by_role("button", name="Convert to contact and deal").click()
    amount_error = page.locator("#error-f-amount")
    expect(amount_error).to_be_visible()
    expect(page.get_by_label("Amount")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Amount").fill("25000")
    page.get_by_role("button", name="Convert to contact and deal").click()
    expect(page.get_by_role("heading", name="Converted")).to_be_visible()
    expect(page.get_by_role("region", name="Score ledger")).to_be_visible()
    assert page_check(page, "lead-converted") == []

    # Then the links lead to the contact and the deal conversion made
    page.get_by_role("link", name="Open the contact").click()
    expect(page.get_by_role("heading", name=f"Contact: Grace {lead['last_name']}")).to_be_visible()
    expect(page.get_by_text(lead["email"])).to_be_visible()
    assert page_check(page, "contact") == []
    page.go_back()
    page.get_by_role("link", name="Open the deal").click()
    expect(page.get_by_role("heading", name="Deal: Navy Research - Opportunity")).to_be_visible()
    expect(page.get_by_text("25000")).to_be_visible()
    assert page_check(page, "deal") == []


def test_a_rep_opening_another_reps_lead_by_its_address_is_told_they_have_no_access(
    api: Client, console_stack: LocalStack, new_page: Callable[..., Page]
) -> None:
    # Given a lead assigned to one rep
    lead = capture_assigned_lead(api, console_stack, first_name="Private")
    other = next(
        u.username for u in console_stack.seed.users if "rep" in u.groups and u.username != lead["username"]
    )
    page = new_page()

    # When another rep opens its address
    page.goto(f"{console_stack.url}/app/#/leads/{lead['id']}")
    sign_in(page, other)

    # Then they read that they have no access, and nothing of the lead
    expect(page.get_by_role("heading", name="You don't have access to this lead")).to_be_visible()
    expect(page.get_by_text(lead["email"])).to_have_count(0)
    expect(page.get_by_text(lead["last_name"])).to_have_count(0)
    assert page_check(page, "no-access") == []


def test_the_link_in_the_assignment_email_opens_the_leads_page_after_sign_in(
    api: Client, console_stack: LocalStack, new_page: Callable[..., Page]
) -> None:
    # Given the assignment email the rep received (the local outbox)
    lead = capture_assigned_lead(api, console_stack)
    rep = console_stack.seed.user(username=lead["username"])
    email = eventually(
        lambda: next(
            (
                m
                for m in console_stack.outbox()
                if rep.email in m["to"] and lead["id"] in (m.get("html") or "")
            ),
            None,
        )
    )
    link = re.search(r'href="([^"]+)">Open the lead<', email["html"])
    assert link is not None
    assert link.group(1) == f"{console_stack.url}/app/#/leads/{lead['id']}"

    # When the rep follows it in a browser with no session yet, and signs in
    page = new_page()
    page.goto(link.group(1))
    sign_in(page, rep.username)

    # Then the lead's own page opens
    expect(page.get_by_role("heading", name=f"Grace {lead['last_name']}")).to_be_visible()
    expect(page).to_have_url(link.group(1))

    # When someone else changes the lead's phone while the page is open, and the rep then saves a new title
    mine = bearer(console_stack, user=rep.username)
    current = api.request("GET", f"/leads/{lead['id']}", headers=mine).json()
    changed = api.request(
        "PATCH",
        f"/leads/{lead['id']}",
        json_body={"phone": "+44 20 7946 0001", "version": current["version"]},
        headers=mine,
    )
    assert changed.status == 200, changed.body
    page.get_by_label("Job title").fill("VP Engineering")
    page.get_by_role("button", name="Save details").click()

    # Then the page says their edit was not saved, who changed what, and offers to reload
    stale = page.get_by_role("alert")
    expect(stale).to_contain_text("Someone changed this lead after you opened it")
    expect(stale).to_contain_text("+44 20 7946 0001")
    expect(stale).to_contain_text(rep.name)
    stale.get_by_role("button", name="Reload the lead").click()
    expect(page.get_by_label("Phone")).to_have_value("+44 20 7946 0001")
    page.get_by_label("Job title").fill("VP Engineering")
    page.get_by_role("button", name="Save details").click()
    expect(page.locator("dd").filter(has_text="VP Engineering")).to_be_visible()


def test_a_manager_tunes_a_rule_watches_the_rescore_reassigns_and_reads_the_funnel(
    api: Client, console_stack: LocalStack, new_page: Callable[..., Page]
) -> None:
    # Given a lead scored 70 (its industry, Technology, gives 10 by the rule "Target industry")
    lead = capture_assigned_lead(api, console_stack, first_name="Tuned")
    manager = bearer(console_stack, "manager")
    page = new_page()
    page.goto(console_stack.url + "/app/#/rules")
    sign_in(page, "manager")
    try:
        # When the manager gives that rule 25 points on the scoring rules page
        expect(page.get_by_role("heading", name="Scoring rules")).to_be_visible()
        page.get_by_label("Points for Target industry").fill("25")
        page.get_by_role("button", name="Save Target industry").click()

        # Then the rescore job's progress shows until it completes, and the lead now scores 85
        expect(page.locator("#rescore-progress")).to_contain_text("(completed)", timeout=60_000)
        assert page_check(page, "scoring-rules") == []

        # They add a rule (points out of range are said next to Points first), then delete it
        page.on("dialog", lambda dialog: dialog.accept())
        page.get_by_label("Name", exact=True).fill("Console rule")
        page.get_by_label("Category").select_option("firmographic")
        page.get_by_label("Field", exact=True).fill("company")
        page.get_by_label("Operator").select_option("equals")
        page.get_by_label("Value", exact=True).fill("Nobody Ltd")
        page.get_by_label("Points", exact=True).fill("5000")
        page.get_by_role("button", name="Add rule").click()
        expect(page.locator("#error-new-rule-points")).to_be_visible()
        page.get_by_label("Points", exact=True).fill("5")
        page.get_by_role("button", name="Add rule").click()
        expect(page.get_by_role("row").filter(has_text="Console rule")).to_be_visible()
        page.get_by_role("button", name="Delete Console rule").click()
        expect(page.get_by_role("row").filter(has_text="Console rule")).to_have_count(0)
        names = [r["name"] for r in api.request("GET", "/scoring-rules", headers=manager).json()["rules"]]
        assert "Console rule" not in names

        # They add an assignment rule (a bad condition is said next to Conditions), change and delete it
        page.get_by_role("link", name="Assignment rules").click()
        new_rule = page.get_by_role("form", name="New assignment rule")
        new_rule.get_by_label("Name").fill("Console routing")
        new_rule.get_by_label("Priority").fill("900")
        new_rule.get_by_label("Target team").fill("sales")
        new_rule.get_by_label("Conditions").fill("no_such_field equals x")
        new_rule.get_by_role("button", name="Add assignment rule").click()
        expect(new_rule.get_by_label("Conditions")).to_have_attribute("aria-invalid", "true")
        new_rule.get_by_label("Conditions").fill("company equals Nobody Ltd")
        new_rule.get_by_role("button", name="Add assignment rule").click()
        saved = page.get_by_role("form", name="Assignment rule Console routing")
        saved.get_by_label("Priority").fill("901")
        saved.get_by_role("button", name="Save Console routing").click()
        expect(
            page.get_by_role("form", name="Assignment rule Console routing").get_by_label("Priority")
        ).to_have_value("901")
        assert page_check(page, "assignment-rules") == []
        page.get_by_role("button", name="Delete Console routing").click()
        expect(page.get_by_role("form", name="Assignment rule Console routing")).to_have_count(0)
        rules = api.request("GET", "/assignment-rules", headers=manager).json()["items"]
        assert "Console routing" not in [r["name"] for r in rules]

        # They read the users' settings and edit the nurture sequence (a bad step is said next to Steps)
        page.get_by_role("link", name="Users").click()
        expect(page.get_by_role("heading", name=re.compile("^Riley Rep"))).to_be_visible()
        assert page_check(page, "users-manager") == []
        page.get_by_role("link", name="Nurture").click()
        sequence = page.get_by_role("form", name=re.compile("^Nurture sequence"))
        expect(sequence).to_have_count(1)
        steps = sequence.get_by_label("Steps")
        original_steps = steps.input_value()
        steps.fill("soon " + original_steps.split("\n")[0].split(" ", 1)[1])
        sequence.get_by_role("button", name=re.compile("^Save")).click()
        expect(steps).to_have_attribute("aria-invalid", "true")
        steps.fill(original_steps)
        sequence.get_by_role("button", name=re.compile("^Save")).click()
        expect(
            page.get_by_role("form", name=re.compile("^Nurture sequence")).get_by_label("Steps")
        ).to_have_value(original_steps)
        assert page_check(page, "nurture") == []
        page.get_by_role("link", name="Scoring rules").click()
        page.goto(f"{console_stack.url}/app/#/leads/{lead['id']}")
        expect(page.get_by_text("Score 85, grade A, from 5 rules.")).to_be_visible(timeout=30_000)
        expect(
            page.get_by_role("region", name="Score ledger")
            .get_by_role("row")
            .filter(has_text="Target industry")
        ).to_contain_text("+25")

        # When they reassign the lead to another rep
        other = next(
            u for u in console_stack.seed.users if "rep" in u.groups and u.sub != lead["assigned_to"]
        )
        page.get_by_label("Assign to").select_option(other.sub)
        page.get_by_label("Reason").fill("Covering for a holiday")
        page.get_by_role("button", name="Reassign").click()

        # Then the lead's owner is the other rep
        expect(page.locator("dd").filter(has_text=other.name)).to_be_visible()
        assert api.request("GET", f"/leads/{lead['id']}", headers=manager).json()["assigned_to"] == other.sub
        expect(page.get_by_role("region", name="Score ledger")).to_be_visible()
        assert page_check(page, "lead-manager") == []

        # and the funnel chart counts the leads captured today by status
        page.get_by_role("link", name="Analytics").click()
        funnel = page.get_by_role("list", name="Funnel")
        expect(funnel.get_by_role("listitem")).to_have_count(5)
        # (the lead reached 85, over the auto-qualification threshold: it counts as qualified)
        qualified = funnel.get_by_role("listitem").filter(has_text="qualified").first
        expect(qualified).to_have_text(re.compile(r"^qualified[1-9][0-9]*$"))
        expect(page.get_by_role("heading", name="Leads by source")).to_be_visible()
        assert page_check(page, "analytics") == []
    finally:
        rules = api.request("GET", "/scoring-rules", headers=manager).json()["rules"]
        rule = next(r for r in rules if r["name"] == "Target industry")
        if rule["points"] != 10:
            api.request(
                "PATCH",
                f"/scoring-rules/{rule['id']}",
                json_body={"points": 10, "version": rule["version"]},
                headers=manager,
            )


def test_a_failed_request_says_so_in_words_and_try_again_loads_the_page(
    console_stack: LocalStack, new_page: Callable[..., Page]
) -> None:
    # Given the API answers the first list request with a 503 (as API Gateway does when a function times out)
    page = new_page(PHONE)
    failures = []

    def first_fails(route: Route) -> None:
        if not failures:
            failures.append(route.request.url)
            route.fulfill(status=503, json={"message": "Service Unavailable"})
        else:
            route.continue_()

    page.route(re.compile(r"/leads\?"), first_fails)

    # When a rep signs in
    page.goto(console_stack.url + "/app/")
    sign_in(page, "rep1")

    # Then the page says what happened, with a button to try again, and no endless spinner
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The server had a problem answering.")
    expect(page.get_by_text("Loading…")).to_have_count(0)
    alert.get_by_role("button", name="Try again").click()
    expect(page.get_by_text(re.compile(r"^\d+ leads? on this page$"))).to_be_visible()
    assert len(failures) == 1


def test_an_admin_sets_capacity_working_hours_and_out_of_office_on_the_users_page(
    api: Client, console_stack: LocalStack, new_page: Callable[..., Page]
) -> None:
    # Given the admin on the users page (they change their own settings: no rep's assignment moves)
    admin = bearer(console_stack, "admin")
    page = new_page(PHONE)
    page.goto(console_stack.url + "/app/#/users")
    sign_in(page, "admin")
    me = page.get_by_role("form", name="User Alex Admin")

    # When they give a time zone that does not exist, it is said next to Time zone
    me.get_by_label("Capacity (open leads)").fill("12")
    me.get_by_label("Working days").fill("mon tue wed")
    me.get_by_label("Starts").fill("09:00")
    me.get_by_label("Ends").fill("17:30")
    me.get_by_label("Time zone").fill("Mars/Olympus")
    me.get_by_label("Away from").fill("2031-03-01T09:00")
    me.get_by_label("Away until").fill("2031-03-08T09:00")
    me.get_by_role("button", name="Save Alex Admin").click()
    expect(me.get_by_label("Time zone")).to_have_attribute("aria-invalid", "true")

    # Then a real one saves all three settings (Enter in a field submits: usable from the keyboard)
    me.get_by_label("Time zone").fill("Europe/Paris")
    me.get_by_label("Time zone").press("Enter")
    # (the save is done once it is announced: the field keeps its value before that too)
    expect(page.locator("#announcer")).to_have_text("Alex Admin saved")
    expect(page.get_by_role("form", name="User Alex Admin").get_by_label("Time zone")).to_have_value(
        "Europe/Paris"
    )
    saved = api.request("GET", "/users/5f0b7c1e-0a11-4d2b-9a01-000000000001", headers=admin).json()
    assert saved["capacity"] == 12
    assert saved["working_hours"]["days"] == ["mon", "tue", "wed"]
    assert saved["working_hours"]["time_zone"] == "Europe/Paris"
    assert saved["out_of_office"]["start"].startswith("2031-03-0")
    assert page_check(page, "users") == []

    # and the manager pages fit a 375 px wide phone: nothing scrolls sideways
    for hash_, heading in (
        ("users", "Users"),
        ("assignment-rules", "Assignment rules"),
        ("nurture", "Nurture sequences"),
        ("rules", "Scoring rules"),
    ):
        page.goto(f"{console_stack.url}/app/#/{hash_}")
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        expect(page.get_by_role("button", name=re.compile("^(Save|Add)")).first).to_be_visible()
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 375, hash_
