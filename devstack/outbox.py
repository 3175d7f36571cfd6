"""The local outbox: the mail SES (moto) has accepted, read back through moto's model API."""

from __future__ import annotations

import email
import email.policy
import html
import re
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

_HTML_HINTS = ("<html", "<body", "<p", "<div", "<br", "<table", "<a ", "<h1", "<h2", "<span", "<strong")


def sent_messages(
    model_data: dict[str, Any], sent_at: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every sent message as {id, sent_at, from, to, cc, bcc, subject, html, text, headers}, newest first
    across every kind (`sent_at`: when SES accepted it, by the stack's clock, as the stack saw it pass;
    `headers`: a raw MIME message's own headers, e.g. List-Unsubscribe; empty for the other kinds)."""
    ses = model_data.get("ses", {})
    messages = [_simple(m) for m in ses.get("Message", [])]
    messages += [_raw(m) for m in ses.get("RawMessage", [])]
    messages += [_templated(m) for m in ses.get("TemplateMessage", [])]
    stamps = sent_at or {}
    for position, message in enumerate(messages):
        message["sent_at"] = stamps.get(str(message.get("id")))
        message["_position"] = position
    # Newest first by time; mail the stack did not see pass (none in practice) last, newest of it first.
    messages.sort(key=lambda m: (m["sent_at"] is not None, m["sent_at"] or "", m["_position"]), reverse=True)
    for message in messages:
        del message["_position"]
    return messages


_MESSAGE_ID = re.compile(rb"<MessageId>([^<]+)</MessageId>|\"MessageId\"\s*:\s*\"([^\"]+)\"")


def message_ids(payload: bytes) -> list[str]:
    """The message ids in an SES answer (v2 JSON or v1 XML): what was just sent."""
    return [(a or b).decode() for a, b in _MESSAGE_ID.findall(payload)]


def _looks_like_html(body: str) -> bool:
    lowered = body.lower()
    return any(hint in lowered for hint in _HTML_HINTS)


def _simple(message: dict[str, Any]) -> dict[str, Any]:
    body = message.get("body") or ""
    destinations = message.get("destinations") or {}
    # moto's SESv2 keeps the HTML part when there is one, else the text part.
    is_html = _looks_like_html(body)
    return {
        "id": message.get("id"),
        "from": message.get("source"),
        "to": destinations.get("ToAddresses", []),
        "cc": destinations.get("CcAddresses", []),
        "bcc": destinations.get("BccAddresses", []),
        "subject": message.get("subject"),
        "html": body if is_html else None,
        "text": None if is_html else body,
        "headers": {},
    }


def _templated(message: dict[str, Any]) -> dict[str, Any]:
    destinations = message.get("destinations") or {}
    return {
        "id": message.get("id"),
        "from": message.get("source"),
        "to": destinations.get("ToAddresses", []) if isinstance(destinations, dict) else [],
        "cc": [],
        "bcc": [],
        "subject": f"(template {message.get('template')})",
        "html": None,
        "text": message.get("template_data"),
        "headers": {},
    }


def _raw(message: dict[str, Any]) -> dict[str, Any]:
    parsed = email.message_from_string(message.get("raw_data") or "", policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    html_part = parsed.get_body(("html",))
    text_part = parsed.get_body(("plain",))
    # moto adds the message's To/Cc to the request's destinations: each address is listed once here.
    recipients = message.get("destinations") or str(parsed.get("To", "")).split(",")
    return {
        "id": message.get("id"),
        "from": message.get("source") or parsed.get("From"),
        "to": list(dict.fromkeys(a.strip() for a in recipients if a.strip())),
        "cc": [a.strip() for a in str(parsed.get("Cc", "")).split(",") if a.strip()],
        "bcc": [],
        "subject": parsed.get("Subject"),
        "html": html_part.get_content() if html_part is not None else None,
        "text": text_part.get_content() if text_part is not None else None,
        "headers": {name: str(value) for name, value in parsed.items()},
    }


def render_html(messages: list[dict[str, Any]]) -> str:
    rows = []
    for m in messages:
        body = (
            f'<iframe sandbox srcdoc="{html.escape(m["html"], quote=True)}"></iframe>'
            if m.get("html")
            else f"<pre>{html.escape(m.get('text') or '')}</pre>"
        )
        rows.append(
            "<article>"
            f"<h2>{html.escape(str(m.get('subject') or '(no subject)'))}</h2>"
            f"<p><b>Sent</b> {html.escape(str(m.get('sent_at') or 'unknown'))} &nbsp; "
            f"<b>From</b> {html.escape(str(m.get('from')))} &nbsp; <b>To</b> "
            f"{html.escape(', '.join(m.get('to') or []))}"
            + (f" &nbsp; <b>Cc</b> {html.escape(', '.join(m['cc']))}" if m.get("cc") else "")
            + f"</p>{body}</article>"
        )
    content = "\n".join(rows) or "<p>No mail sent yet.</p>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>Local outbox ({len(messages)})</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
article {{ border: 1px solid #ddd; border-radius: 6px; padding: 0 1rem 1rem; margin-bottom: 1rem; }}
iframe {{ width: 100%; height: 18rem; border: 1px solid #eee; }}
pre {{ white-space: pre-wrap; background: #f8f8f8; padding: .75rem; }}
</style></head>
<body><h1>Local outbox</h1><p>Mail sent through SES in the local stack, newest first
(<a href="/_local/outbox.json">JSON</a>). Refreshes every 5 s.</p>
{content}
</body></html>"""
