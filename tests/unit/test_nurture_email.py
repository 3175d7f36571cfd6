"""Nurture emails without AWS: unsubscribe tokens, template rendering and checks, the MIME message."""

from urllib.parse import parse_qs, urlsplit

import pytest
from crm.leads.model import new_activity
from crm.notifications.templates import EmailTemplate, render, template_problems, template_values
from crm.nurture.unsubscribe import (
    DoNotEmailReason,
    list_unsubscribe_headers,
    suppression_reason,
    unsubscribe_url,
)
from crm.platform.email import OutgoingEmail, raw_message
from crm.platform.errors import BadQuery

from devstack.template import Template
from tests.assignment_support import lead_model
from tests.nurture_support import NOW, parse_raw, simple_template, tokens

LEAD_ID = "6f1c1b8e-2a52-4a53-9d8e-3f6f4a1c2b10"


# ---------------------------------------------------------------- tokens


def test_a_token_names_its_lead_and_verifies() -> None:
    token = tokens().token_for(LEAD_ID)

    assert token.startswith(LEAD_ID + ".")
    assert tokens().lead_id_from(token) == LEAD_ID


def test_a_tampered_or_forged_token_is_refused_naming_token() -> None:
    token = tokens().token_for(LEAD_ID)
    lead, _, signature = token.rpartition(".")
    other_lead = "0b5e8f2a-3c4d-4e6f-8a9b-1c2d3e4f5a6b"
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")

    for bad in (
        f"{other_lead}.{signature}",  # another lead with this lead's signature
        f"{lead}.{flipped}",
        tokens("someone-elses-key").token_for(LEAD_ID),
        f"{lead}.",
        LEAD_ID,
        "not-a-lead.abc",
        "x" * 500,
    ):
        with pytest.raises(BadQuery) as raised:
            tokens().lead_id_from(bad)
        assert [p.field for p in raised.value.problems] == ["token"], bad


def test_a_missing_token_is_refused_naming_token() -> None:
    for missing in (None, "", "   "):
        with pytest.raises(BadQuery) as raised:
            tokens().lead_id_from(missing)
        assert raised.value.problems[0].field == "token"
        assert "required" in raised.value.problems[0].message


def test_tokens_signed_with_the_previous_key_verify_during_a_rotation() -> None:
    old_token = tokens("old-key").token_for(LEAD_ID)
    rotated = tokens("new-key", "old-key")

    assert rotated.lead_id_from(old_token) == LEAD_ID
    assert rotated.token_for(LEAD_ID) == tokens("new-key").token_for(LEAD_ID)
    with pytest.raises(BadQuery):
        tokens("new-key").lead_id_from(old_token)


def test_the_link_and_one_click_headers() -> None:
    token = tokens().token_for(LEAD_ID)
    url = unsubscribe_url("https://api.example.com/", token)

    assert urlsplit(url).path == "/unsubscribe" and url.startswith("https://api.example.com/unsubscribe?")
    assert parse_qs(urlsplit(url).query) == {"token": [token]}
    assert list_unsubscribe_headers(url) == {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_only_permanent_bounces_and_complaints_about_lead_emails_suppress() -> None:
    def activity(type_: str, **data: str) -> object:
        return new_activity(LEAD_ID, type_, "SES event", "system:ses", NOW, **data)

    assert suppression_reason(activity("email_bounced", bounce_type="Permanent")) is DoNotEmailReason.BOUNCED  # type: ignore[arg-type]
    assert suppression_reason(activity("email_complained")) is DoNotEmailReason.COMPLAINED  # type: ignore[arg-type]
    assert suppression_reason(activity("email_bounced", bounce_type="Transient")) is None  # type: ignore[arg-type]
    assert suppression_reason(activity("notification_bounced", bounce_type="Permanent")) is None  # type: ignore[arg-type]
    assert suppression_reason(activity("email_opened")) is None  # type: ignore[arg-type]


# ---------------------------------------------------------------- rendering


def test_values_are_escaped_in_the_html_part_only() -> None:
    lead = lead_model(first_name='<script>alert("x")</script>', company="Smith & Sons")
    content = render(simple_template(), template_values(lead, "https://api.example.com/unsubscribe?token=t"))

    assert (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in content.html and "<script>" not in content.html
    )
    assert "from Smith &amp; Sons" in content.html
    assert content.text.startswith('Hello <script>alert("x")</script> from Smith & Sons')
    assert 'href="https://api.example.com/unsubscribe?token=t"' in content.html
    assert content.subject == 'Hello <script>alert("x")</script>'


def test_sections_show_only_with_a_value_and_missing_values_render_empty() -> None:
    template = EmailTemplate(
        "t",
        "Hi {{first_name}}{{nickname}}",
        "{{^company}}No company{{/company}}",
        "{{#company}}At {{company}}{{/company}}",
    )

    content = render(template, template_values(lead_model(company=None), "u"))

    assert content.subject == "Hi Ada" and content.html == "No company" and content.text == ""


def test_the_subject_never_spans_lines() -> None:
    template = EmailTemplate("t", "Hello {{first_name}}", "<p>x</p>", "x")

    content = render(template, {"first_name": "Ada\r\nBcc: victim@example.com"})

    assert "\n" not in content.subject and "\r" not in content.subject
    assert content.subject == "Hello Ada Bcc: victim@example.com"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Hi {{first_name}}", None),
        ("", "has no subject"),
        ("Hi {{#if company}}x{{/if}}", "Handlebars"),
        ("Hi {{#each items}}x{{/each}}", "Handlebars"),
        ("Hi {{#company}}x", "never closes {{#company}}"),
        ("Hi {{/company}}", "closes {{/company}} without opening it"),
        ("Hi {{#a}}{{#b}}x{{/a}}{{/b}}", "closes {{/a}} without opening it"),
        ("Hi {{> footer}}", "partial"),
    ],
)
def test_template_checks_say_what_would_not_render(subject: str, expected: str | None) -> None:
    found = template_problems(EmailTemplate("t", subject, "<p>{{first_name}}</p>", "{{first_name}}"))

    if expected is None:
        assert found == []
    else:
        assert any(expected in problem for problem in found), found


def test_the_default_templates_render_for_a_lead_with_its_unsubscribe_link(template: Template) -> None:
    assert len(template.email_templates) >= 3
    url = "https://api.example.com/unsubscribe?token=abc"
    for spec in template.email_templates:
        ses_template = EmailTemplate(spec.name, spec.subject, spec.html, spec.text)
        assert template_problems(ses_template) == [], spec.name

        content = render(
            ses_template, template_values(lead_model(first_name="Zoë", company="Acme & Co"), url)
        )

        assert "Zoë" in content.subject
        assert f'href="{url}"' in content.html and url in content.text
        assert "Acme &amp; Co" in content.html and "Acme & Co" in content.text


# ---------------------------------------------------------------- the MIME message


def test_an_email_with_headers_becomes_a_mime_message_with_both_parts_and_the_headers() -> None:
    url = "https://api.example.com/unsubscribe?token=abc.def"
    outgoing = OutgoingEmail(
        to="ada@example.com",
        subject="Hello\r\nBcc: victim@example.com",
        html="<p>Hello Ada</p>",
        text="Hello Ada",
        tags={"lead_id": LEAD_ID},
        headers={**list_unsubscribe_headers(url), "X-Evil": "a\r\nBcc: victim@example.com"},
    )

    parsed = parse_raw(raw_message("leads@leadflow.local", outgoing))

    assert parsed["From"] == "leads@leadflow.local" and parsed["To"] == "ada@example.com"
    assert parsed["List-Unsubscribe"] == f"<{url}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Bcc"] is None and parsed["Subject"] == "Hello Bcc: victim@example.com"
    assert parsed.get_content_type() == "multipart/alternative"
    html_part, text_part = parsed.get_body(("html",)), parsed.get_body(("plain",))
    assert html_part is not None and html_part.get_content().strip() == "<p>Hello Ada</p>"
    assert text_part is not None and text_part.get_content().strip() == "Hello Ada"
