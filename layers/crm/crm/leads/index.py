"""The list indexes of leads: which GSI holds which keys, derived from the lead (plain Python, no AWS).

Every lead list (`GET /leads`) is a Query on one of these indexes, scoped by the caller's role in the
key itself (see `crm.queries.lists` for the planner and docs/data-model.md for the table):

- *scopes*: `STAGE#…` (everything, for admins), `TEAM#<team>#…` (a manager's teams), and the *holder* of a
  lead — `OWNER#<user>` when assigned, `QUEUE#<team>#<shard>` when waiting in a team's unassigned queue
  (what a rep sees);
- *stage*: the lead's status with its qualified/converted flags (see `stage_of`), so the status,
  qualified and converted filters are key conditions, never filters on pages;
- *sort keys*: `CREATEDSK` = `<created_at>#<id>` and `SCORESK` = `<score, 5 digits><#|!><created_at>#<id>`
  (`#` once graded, `!` before the first scoring), so a score range or a grade band is a key range.

Low-cardinality keys carry a write shard (`crc32(id) % shards`); a list reads every shard and merges by the
sort key. A team of None is written `~` (team names never contain it). Keys of one index have the same
sort-key format across all its partitions, so partitions of a plan merge into one ordered stream.
"""

import zlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from crm.leads.model import Lead, LeadStatus
from crm.platform import clock

NO_TEAM = "~"
MAX_KEY_SCORE = 99_999


class Sort(StrEnum):
    CREATED_AT = "created_at"
    SCORE = "score"


class Stage(StrEnum):
    """Where a lead is in its lifecycle: its status, and for converted leads whether it was qualified.

    The domain keeps `qualified` in step with the status (`crm.lifecycle.service.with_status`) and sets
    `converted` only with the status `converted`, so these six stages are every state a lead can be in.
    A lead whose flags ever disagree with its status is indexed under its own anomaly key (`stage_of`
    never folds it into a normal stage), which lists never read: it is missing, never listed wrongly.
    """

    NEW = "new"
    CONTACTED = "contacted"
    QUALIFIED = "qualified"
    UNQUALIFIED = "unqualified"
    CONVERTED = "converted"
    CONVERTED_UNQUALIFIED = "converted-unqualified"


# stage -> (status, qualified, converted)
STAGE_STATE: dict[Stage, tuple[LeadStatus, bool, bool]] = {
    Stage.NEW: (LeadStatus.NEW, False, False),
    Stage.CONTACTED: (LeadStatus.CONTACTED, False, False),
    Stage.QUALIFIED: (LeadStatus.QUALIFIED, True, False),
    Stage.UNQUALIFIED: (LeadStatus.UNQUALIFIED, False, False),
    Stage.CONVERTED: (LeadStatus.CONVERTED, True, True),
    Stage.CONVERTED_UNQUALIFIED: (LeadStatus.CONVERTED, False, True),
}
_STAGE_BY_STATE = {state: stage for stage, state in STAGE_STATE.items()}


def stage_of(lead: Lead) -> str:
    """The lead's stage; an impossible flag combination gets a distinct anomaly key (`contacted~q1c0`)."""
    state = (lead.lead_status, lead.qualified, lead.converted)
    stage = _STAGE_BY_STATE.get(state)
    if stage is not None:
        return stage.value
    return f"{lead.lead_status.value}~q{int(lead.qualified)}c{int(lead.converted)}"


def is_anomalous_stage(stage: str) -> bool:
    return "~" in stage


def stages_matching(status: LeadStatus | None, qualified: bool | None, converted: bool | None) -> list[Stage]:
    """The stages whose leads satisfy these filters (an empty list: nothing can match)."""
    return [
        stage
        for stage, (s, q, c) in STAGE_STATE.items()
        if (status is None or s == status)
        and (qualified is None or q == qualified)
        and (converted is None or c == converted)
    ]


def shard_of(lead_id: str, shards: int) -> int:
    return zlib.crc32(lead_id.encode()) % shards


def team_key(team: str | None) -> str:
    return team if team else NO_TEAM


# ---------------------------------------------------------------- sort keys


def created_sort_key(created_at: str, lead_id: str) -> str:
    return f"{created_at}#{lead_id}"


def score_prefix(score: int) -> str:
    return f"{max(0, min(MAX_KEY_SCORE, score)):05d}"


def score_sort_key(score: int, graded: bool, created_at: str, lead_id: str) -> str:
    return f"{score_prefix(score)}{'#' if graded else '!'}{created_at}#{lead_id}"


# ---------------------------------------------------------------- partition keys


def all_stage_pk(stage: str, shard: int) -> str:
    return f"STAGE#{stage}#{shard}"


def team_stage_pk(team: str | None, stage: str, shard: int) -> str:
    return f"TEAM#{team_key(team)}#STAGE#{stage}#{shard}"


def owner_holder_pk(user: str) -> str:
    return f"OWNER#{user}"


def queue_holder_pk(team: str | None, shard: int) -> str:
    return f"QUEUE#{team_key(team)}#{shard}"


def owner_stage_pk(user: str, stage: str) -> str:
    return f"OWNER#{user}#STAGE#{stage}"


def queue_stage_pk(team: str | None, stage: str, shard: int) -> str:
    return f"QUEUE#{team_key(team)}#STAGE#{stage}#{shard}"


def team_owner_pk(team: str | None, user: str) -> str:
    return f"TEAM#{team_key(team)}#OWNER#{user}"


def source_pk(source: str, shard: int) -> str:
    """SourceByCreated's key: sources compare lower-cased."""
    return f"SOURCE#{source.lower()}#{shard}"


def status_pk(status: str, shard: int) -> str:
    """StatusByCreated's key: the lead's status alone (rescoring, previews, retention, reconciliation)."""
    return f"STATUS#{status}#{shard}"


def unassigned_owner_pk(shard: int) -> str:
    """UnassignedByCreated's key (sparse: only leads nobody owns yet)."""
    return f"UNASSIGNED#{shard}"


# ---------------------------------------------------------------- the indexes


@dataclass(frozen=True)
class ListIndex:
    name: str
    pk: str
    sk: str
    sort: Sort
    # KEYS_ONLY indexes answer with keys; the page's leads are then read with one BatchGetItem.
    keys_only: bool


ALL_STAGE_BY_CREATED = ListIndex("AllStageByCreated", "ALLSTAGEPK", "CREATEDSK", Sort.CREATED_AT, True)
ALL_STAGE_BY_SCORE = ListIndex("AllStageByScore", "ALLSTAGEPK", "SCORESK", Sort.SCORE, True)
TEAM_STAGE_BY_CREATED = ListIndex("TeamStageByCreated", "TEAMSTAGEPK", "CREATEDSK", Sort.CREATED_AT, True)
TEAM_STAGE_BY_SCORE = ListIndex("TeamStageByScore", "TEAMSTAGEPK", "SCORESK", Sort.SCORE, True)
HOLDER_BY_CREATED = ListIndex("HolderByCreated", "HOLDERPK", "CREATEDSK", Sort.CREATED_AT, True)
HOLDER_BY_SCORE = ListIndex("HolderByScore", "HOLDERPK", "SCORESK", Sort.SCORE, True)
HOLDER_STAGE_BY_CREATED = ListIndex(
    "HolderStageByCreated", "HOLDERSTAGEPK", "CREATEDSK", Sort.CREATED_AT, True
)
TEAM_OWNER_BY_CREATED = ListIndex("TeamOwnerByCreated", "TEAMOWNERPK", "CREATEDSK", Sort.CREATED_AT, True)
# Leads by status, source and the unassigned ones: keys (and a few attributes that rarely change, see
# template.yaml) only, like the list indexes, so that updating a lead does not rewrite it in them.
# Leads used to be in GSI1-3 (projection ALL) under these keys: docs/deploying-and-operating.md.
UNASSIGNED_BY_CREATED = ListIndex("UnassignedByCreated", "UNASSIGNEDPK", "CREATEDSK", Sort.CREATED_AT, True)
STATUS_BY_CREATED = ListIndex("StatusByCreated", "STATUSPK", "CREATEDSK", Sort.CREATED_AT, True)
SOURCE_BY_CREATED = ListIndex("SourceByCreated", "SOURCEPK", "CREATEDSK", Sort.CREATED_AT, True)

LIST_INDEXES = (
    ALL_STAGE_BY_CREATED,
    ALL_STAGE_BY_SCORE,
    TEAM_STAGE_BY_CREATED,
    TEAM_STAGE_BY_SCORE,
    HOLDER_BY_CREATED,
    HOLDER_BY_SCORE,
    HOLDER_STAGE_BY_CREATED,
    TEAM_OWNER_BY_CREATED,
)


def list_index_attributes(lead: Lead, shards: int) -> dict[str, Any]:
    """The key attributes of the list indexes for this lead (merged into its stored item)."""
    created = clock.isoformat(lead.created_at)
    shard = shard_of(lead.id, shards)
    stage = stage_of(lead)
    owner = lead.assigned_to
    return {
        "CREATEDSK": created_sort_key(created, lead.id),
        "SCORESK": score_sort_key(lead.score, lead.grade is not None, created, lead.id),
        "ALLSTAGEPK": all_stage_pk(stage, shard),
        "TEAMSTAGEPK": team_stage_pk(lead.team, stage, shard),
        "HOLDERPK": owner_holder_pk(owner) if owner else queue_holder_pk(lead.team, shard),
        "HOLDERSTAGEPK": owner_stage_pk(owner, stage) if owner else queue_stage_pk(lead.team, stage, shard),
        # Sparse: only assigned leads are listed by owner within a team.
        "TEAMOWNERPK": team_owner_pk(lead.team, owner) if owner else None,
        "STATUSPK": status_pk(lead.lead_status.value, shard),
        "SOURCEPK": source_pk(lead.lead_source, shard),
        # Sparse: only leads nobody owns are in the unassigned index.
        "UNASSIGNEDPK": None if owner else unassigned_owner_pk(shard),
    }
