"""Prefix search over leads' first name, last name, email and company (plain Python, no AWS).

Text is compared case- and accent-insensitively: case-folded, NFKD-decomposed, combining marks dropped,
whitespace collapsed ("Zoë Ångström" is found by "zoe", "ANG" or "zoe ang"). A lead is found by a prefix of
any of its tokens: each field whole, each word of a name or company, the full name ("ada lovelace"), and an
email whole, its local part and its domain.

`SearchIndex` is the seam: this project ships a DynamoDB adapter (`crm.queries.search_repository`: token
items kept
by the table's stream, answered by Queries); a deployment that outgrows it (see the README) swaps in an
OpenSearch adapter behind the same two methods.
"""

import re
import unicodedata
from dataclasses import dataclass
from typing import Protocol

from crm.leads.index import NO_TEAM, team_key
from crm.leads.model import Lead
from crm.platform.auth import Principal, Role
from crm.queries.lists import list_role

MIN_PREFIX = 2
ALL_SCOPE = "ALL"  # admins: every lead
MAX_TOKEN_LENGTH = 100
MAX_TOKENS = 16
_WORDS = re.compile(r"[\W_]+")


def normalize(text: str) -> str:
    """Case-folded, accents removed, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(stripped.split())


def _add(tokens: list[str], value: str) -> None:
    token = value[:MAX_TOKEN_LENGTH].strip()
    if len(token) >= MIN_PREFIX and token not in tokens:
        tokens.append(token)


def tokens_for(lead: Lead) -> list[str]:
    """The lead's search tokens, most useful first, at most MAX_TOKENS."""
    tokens: list[str] = []
    first, last = normalize(lead.first_name), normalize(lead.last_name)
    email = normalize(lead.email)
    company = normalize(lead.company or "")
    for whole in (first, last, email, company, f"{first} {last}".strip()):
        _add(tokens, whole)
    local, _, domain = email.partition("@")
    _add(tokens, local)
    _add(tokens, domain)
    for text in (first, last, company):
        for word in _WORDS.split(text):
            _add(tokens, word)
    return tokens[:MAX_TOKENS]


def matches_prefix(tokens: list[str], prefix: str) -> bool:
    return any(token.startswith(prefix) for token in tokens)


def first_matching_token(tokens: list[str], prefix: str) -> str | None:
    """The smallest token with this prefix: a lead is listed once, at that token."""
    candidates = [token for token in tokens if token.startswith(prefix)]
    return min(candidates) if candidates else None


# ---------------------------------------------------------------- scopes


def lead_scopes(lead: Lead) -> list[str]:
    """Who may find this lead: everyone (admins), its team's managers, its holder (rep or team queue)."""
    team = team_key(lead.team)
    holder = f"OWNER#{lead.assigned_to}" if lead.assigned_to else f"QUEUE#{team}"
    return [ALL_SCOPE, f"TEAM#{team}", holder]


def caller_scopes(principal: Principal) -> list[str]:
    """The scopes a caller searches, by the same rules as crm.leads.permissions."""
    role = list_role(principal)
    teams = [*sorted(principal.teams), NO_TEAM]
    if role is Role.ADMIN:
        return [ALL_SCOPE]
    if role is Role.MANAGER:
        return [f"TEAM#{team}" for team in teams]
    return [f"OWNER#{principal.subject}", *(f"QUEUE#{team}" for team in teams)]


# ---------------------------------------------------------------- the port


@dataclass(frozen=True)
class SearchHit:
    sort_key: str  # "<token>#<lead id>": the page order, and where the next page resumes
    lead_id: str


class SearchIndex(Protocol):
    def search(self, scopes: list[str], prefix: str, limit: int, after: str | None) -> list[SearchHit]:
        """Up to `limit + 1` leads in these scopes with a token starting with `prefix`, each once,
        ordered by that token, strictly after the hit `after`."""

    def sync(self, lead_id: str, lead: Lead | None, version: int) -> bool:
        """Make the index hold `lead` (None: nothing) as of `version`; False if it already holds a newer
        version (a stale or repeated change is a no-op)."""
