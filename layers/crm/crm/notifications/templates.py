"""SES email templates: read from SES (behind a small port, cached briefly) and rendered here.

Why render here rather than let SES do it (a templated send): every nurture email needs headers of its own
(`List-Unsubscribe` with a link signed for its lead), which a templated send cannot carry; so the template
is read with `GetTemplate` (cached for five minutes per execution environment), rendered with a mustache
engine (pystache; the `{{name}}`, `{{{raw}}}`, `{{#section}}…{{/section}}` and `{{^inverted}}` subset that
SES's Handlebars renders the same way), and sent as a raw MIME message.

In the HTML part every value is HTML-escaped (a lead called `<script>` stays text); the text part is not
escaped, and the subject loses line breaks. Values missing from a lead render as nothing.
"""

import html
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pystache
from botocore.exceptions import BotoCoreError, ClientError
from pystache.parser import ParsingError

from crm.leads.model import Lead
from crm.notifications.messages import EmailContent
from crm.platform import aws
from crm.platform.errors import RetryableError

CACHE_SECONDS = 300
_LINE_BREAKS = re.compile(r"[\r\n\t\x00-\x1f\x7f]+")
# Every mustache tag: its sigil (# ^ / & > ! or none) and its name.
_TAG = re.compile(r"\{\{(\{)?\s*([#^/&>!]?)\s*(.*?)\s*\}?\}\}", re.DOTALL)
_HANDLEBARS_HELPERS = frozenset({"if", "unless", "each", "with", "else"})


@dataclass(frozen=True)
class EmailTemplate:
    name: str
    subject: str
    html: str
    text: str


class TemplateStore(Protocol):
    def get(self, name: str) -> EmailTemplate | None:
        """The template, or None if SES has none of that name. RetryableError when SES cannot answer now."""
        ...


class SesTemplateStore:
    """SES `GetTemplate` (v1: the same templates as SES v2 and CloudFormation's AWS::SES::Template).

    Found templates are cached for CACHE_SECONDS; a missing one is asked again each time, so a template
    created a moment ago is seen at once."""

    def __init__(self, cache_seconds: float = CACHE_SECONDS, monotonic: Callable[[], float] = time.monotonic):
        self.cache_seconds = cache_seconds
        self.monotonic = monotonic
        self._cache: dict[str, tuple[float, EmailTemplate]] = {}

    def get(self, name: str) -> EmailTemplate | None:
        cached = self._cache.get(name)
        if cached is not None and cached[0] > self.monotonic():
            return cached[1]
        try:
            found = aws.client("ses").get_template(TemplateName=name)["Template"]
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "TemplateDoesNotExist":
                self._cache.pop(name, None)
                return None
            raise RetryableError(f"SES could not read the email template right now ({code})") from exc
        except BotoCoreError as exc:
            raise RetryableError(f"SES could not be reached ({type(exc).__name__})") from exc
        template = EmailTemplate(
            name=name,
            subject=str(found.get("SubjectPart") or ""),
            html=str(found.get("HtmlPart") or ""),
            text=str(found.get("TextPart") or ""),
        )
        self._cache[name] = (self.monotonic() + self.cache_seconds, template)
        return template


def template_problems(template: EmailTemplate) -> list[str]:
    """What keeps a template from rendering as written (empty means it is fine)."""
    problems: list[str] = []
    if not template.subject.strip():
        problems.append("has no subject")
    if not template.html.strip() and not template.text.strip():
        problems.append("has neither an HTML nor a text part")
    for part, source in (
        ("subject", template.subject),
        ("HTML part", template.html),
        ("text part", template.text),
    ):
        problems += [f"{part}: {problem}" for problem in _part_problems(source)]
    return problems


def _part_problems(source: str) -> list[str]:
    open_sections: list[str] = []
    for _, sigil, name in _TAG.findall(source):
        helper = " " in name or name.split(" ", 1)[0] in _HANDLEBARS_HELPERS
        if (sigil in ("#", "^", "/") and helper) or (sigil == "" and name == "else"):
            return [
                f"uses the Handlebars helper {{{{{sigil}{name}}}}}: use mustache sections instead, e.g. "
                "{{#company}}…{{/company}} (shown when there is a value) or {{^company}}…{{/company}}"
            ]
        if sigil == ">":
            return [f"uses the partial {{{{>{name}}}}}, which nurture emails do not support"]
        if sigil in ("#", "^"):
            open_sections.append(name)
        elif sigil == "/" and (not open_sections or open_sections.pop() != name):
            return [f"closes {{{{/{name}}}}} without opening it"]
    if open_sections:
        return [f"never closes {{{{#{open_sections[-1]}}}}}"]
    try:
        pystache.parse(source)
    except ParsingError as exc:
        return [str(exc)]
    return []


def template_values(lead: Lead, unsubscribe_url: str) -> dict[str, str]:
    """What a nurture template may use: `{{first_name}}`, `{{company}}`, `{{unsubscribe_url}}` …"""
    return {
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "full_name": f"{lead.first_name} {lead.last_name}".strip(),
        "email": lead.email,
        "company": lead.company or "",
        "title": lead.title or "",
        "industry": lead.industry or "",
        "unsubscribe_url": unsubscribe_url,
    }


def _escape_html(value: str) -> str:
    return html.escape(value, quote=True)


def _plain(value: str) -> str:
    return value


_HTML = pystache.Renderer(escape=_escape_html, missing_tags="ignore", partials={})
_TEXT = pystache.Renderer(escape=_plain, missing_tags="ignore", partials={})


def render(template: EmailTemplate, values: dict[str, Any]) -> EmailContent:
    subject = _LINE_BREAKS.sub(" ", _TEXT.render(template.subject, values)).strip()
    return EmailContent(
        subject=subject[:200],
        html=_HTML.render(template.html, values),
        text=_TEXT.render(template.text, values),
    )
