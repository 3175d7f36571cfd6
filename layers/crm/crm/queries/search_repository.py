"""The DynamoDB adapter of `crm.queries.search.SearchIndex`: search-token items in the single table.

    token item   PK=SEARCH#ALL#<first 2 chars of token>   SK=<token>#<lead id>
                 (lead_id, tokens: all the lead's tokens, seen_by: its scopes, lead_version)
    manifest     PK=SEARCHDOC#<lead id>   SK=SEARCHDOC   (keys, tokens, seen_by, lead_version)

A lead has one token item per token. Who may see it travels on the item as `seen_by`, the lead's scopes
other than ALL (crm.queries.search.lead_scopes: its team's, and its rep's or its team queue's). A prefix
search is one Query of the prefix's partition (`SK BETWEEN <prefix> AND <prefix>\\U0010ffff`); an admin
reads it whole, anyone else with a filter on `seen_by`, so a search returns only what the caller may see.
A lead matching through several tokens is listed once, at its smallest matching token (each item carries
the lead's token list to decide).

Items used to be written once per scope (ALL, team, holder): a lead being routed and then assigned moved
two scopes, three times its tokens in writes and as many deletes. Now routing and assignment rewrite each
token item once, in place. Items and manifests written before (per scope, without `seen_by`) are rewritten
by the lead's next change or by `python -m crm.tools.search_backfill`.

`sync` is driven by the table's stream and is idempotent: it reads the manifest, deletes the items no longer
wanted and writes the wanted ones (all of them when the tokens or who sees them changed), then moves the
manifest to the new version on the condition that the manifest is not newer (a BatchWriteItem and a
conditional put: a transaction cost twice the write units). A redelivered or out-of-date change is a no-op;
one that loses the race to a newer version puts that version's items back from its manifest.
"""

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from crm.leads.model import Lead
from crm.platform.dynamo import TableRepository, marshal, translate, unmarshal
from crm.queries.list_repository import resume_bounds
from crm.queries.search import ALL_SCOPE, SearchHit, first_matching_token, lead_scopes, tokens_for

SEARCH_ENTITY = "search_token"
MANIFEST_ENTITY = "search_doc"
_TOP = "\U0010ffff"
# Items a filtered Query reads per page: a rep's or a manager's hits are a share of the partition's items.
FILTERED_PAGE_SIZE = 200


def token_key(token: str, lead_id: str) -> dict[str, str]:
    return {"PK": f"SEARCH#{ALL_SCOPE}#{token[:2]}", "SK": f"{token}#{lead_id}"}


def manifest_key(lead_id: str) -> dict[str, str]:
    return {"PK": f"SEARCHDOC#{lead_id}", "SK": "SEARCHDOC"}


def seen_by(lead: Lead) -> list[str]:
    """The scopes, besides ALL, whose callers may find this lead."""
    return [scope for scope in lead_scopes(lead) if scope != ALL_SCOPE]


def wanted_items(lead: Lead, version: int) -> dict[tuple[str, str], dict[str, Any]]:
    """Every token item this lead should have, by (PK, SK)."""
    tokens, scopes = tokens_for(lead), seen_by(lead)
    items: dict[tuple[str, str], dict[str, Any]] = {}
    for token in tokens:
        key = token_key(token, lead.id)
        items[(key["PK"], key["SK"])] = token_item(
            key["PK"], key["SK"], lead.id, tokens=tokens, scopes=scopes, version=version
        )
    return items


def token_item(
    pk: str, sk: str, lead_id: str, *, tokens: list[str], scopes: list[str], version: int
) -> dict[str, Any]:
    return {
        "PK": pk,
        "SK": sk,
        "entity": SEARCH_ENTITY,
        "lead_id": lead_id,
        "tokens": tokens,
        "seen_by": scopes,
        "lead_version": version,
    }


def visibility_filter(scopes: list[str]) -> dict[str, Any]:
    """The Query parameters that keep the items a caller with these scopes may see (none for ALL)."""
    if ALL_SCOPE in scopes:
        return {}
    values = {f":scope{index}": {"S": scope} for index, scope in enumerate(scopes)}
    return {
        "FilterExpression": " OR ".join(f"contains(seen_by, {name})" for name in values),
        "ExpressionAttributeValues": values,
    }


def _stored_keys(manifest: dict[str, Any] | None) -> set[tuple[str, str]]:
    return {(str(pk), str(sk)) for pk, sk in (manifest or {}).get("keys") or []}


def _searchable(lead: Lead | None) -> tuple[list[str], list[str]]:
    return (tokens_for(lead), seen_by(lead)) if lead is not None else ([], [])


def _holds(
    manifest: dict[str, Any] | None, wanted: set[tuple[str, str]], searchable: tuple[list[str], list[str]]
) -> bool:
    """Whether the items this manifest lists are the `wanted` ones, with these tokens and `seen_by` (a
    manifest written before `seen_by` existed has none: it holds nothing current)."""
    if manifest is None:
        return not wanted and searchable == ([], [])
    stored = (manifest.get("tokens") or [], manifest.get("seen_by"))
    return _stored_keys(manifest) == wanted and stored == searchable


class DynamoSearchIndex(TableRepository):
    # ------------------------------------------------------------------ reads
    def search(self, scopes: list[str], prefix: str, limit: int, after: str | None) -> list[SearchHit]:
        bounds = resume_bounds(prefix, prefix + _TOP, False, after)
        if bounds is None or len(prefix) < 2:
            return []
        lower, upper = bounds[0] or prefix, bounds[1] or prefix + _TOP
        visible = visibility_filter(scopes)
        page_size = max(limit + 2, FILTERED_PAGE_SIZE) if visible else limit + 2
        partition = token_key(prefix, "")["PK"]
        hits: list[SearchHit] = []
        for item in self._stream(partition, lower, upper, page_size, visible):
            sort_key = str(item["SK"])
            if sort_key == after:
                continue
            token = sort_key.rsplit("#", 1)[0]
            # A lead found through several tokens is listed once, at its smallest matching one.
            if first_matching_token(list(item.get("tokens") or []), prefix) != token:
                continue
            hits.append(SearchHit(sort_key=sort_key, lead_id=str(item["lead_id"])))
            if len(hits) == limit + 1:
                break
        return hits

    def _stream(
        self, pk: str, lower: str, upper: str, page_size: int, visible: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        """The partition's items between the bounds that pass `visible`, in key order, page after page."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :lower AND :upper",
            **visible,
            "ExpressionAttributeValues": {
                ":pk": {"S": pk},
                ":lower": {"S": lower},
                ":upper": {"S": upper},
                **visible.get("ExpressionAttributeValues", {}),
            },
            "Limit": page_size,
        }
        while True:
            try:
                response = self.client.query(**kwargs)
            except ClientError as exc:
                raise translate(exc) from exc
            yield from (unmarshal(raw) for raw in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # ------------------------------------------------------------------ writes
    def holds(self, lead_id: str, lead: Lead | None) -> bool:
        """Whether the stored items are exactly this lead's (its tokens, who sees them)."""
        wanted = set(wanted_items(lead, 0)) if lead is not None else set()
        return _holds(self._get_item(manifest_key(lead_id)), wanted, _searchable(lead))

    def sync(self, lead_id: str, lead: Lead | None, version: int) -> bool:
        manifest = self._get_item(manifest_key(lead_id))
        if manifest is not None and int(manifest["lead_version"]) > version:
            return False
        current = _stored_keys(manifest)
        wanted = wanted_items(lead, version) if lead is not None else {}
        searchable = _searchable(lead)
        if _holds(manifest, set(wanted), searchable):
            return True  # nothing searchable changed (a score, a status...)
        # Token items first, the manifest last: a crash in between leaves the old manifest, so the
        # redelivered record does it all again (idempotent puts and deletes). Not a transaction: that cost
        # twice the write units.
        self._batch_write(
            puts=list(wanted.values()),
            deletes=[{"PK": pk, "SK": sk} for pk, sk in sorted(current - set(wanted))],
            busy="The search index could not be updated; try again",
        )
        if self._move_manifest(lead_id, lead, wanted, searchable, version):
            return True
        # A newer version was indexed meanwhile (a replayed record racing the live one): put its items back
        # as its manifest lists them, and take away the ones written here that it does not want.
        newer = self._get_item(manifest_key(lead_id)) or {"keys": [], "lead_version": version}
        newer_keys = _stored_keys(newer)
        newer_tokens = [str(token) for token in newer.get("tokens") or []]
        newer_seen_by = [str(scope) for scope in newer.get("seen_by") or []]
        self._batch_write(
            puts=[
                token_item(
                    pk,
                    sk,
                    lead_id,
                    tokens=newer_tokens,
                    scopes=newer_seen_by,
                    version=int(newer["lead_version"]),
                )
                for pk, sk in sorted(newer_keys)
            ],
            deletes=[{"PK": pk, "SK": sk} for pk, sk in sorted(set(wanted) - newer_keys)],
            busy="The search index could not be updated; try again",
        )
        return False

    def _move_manifest(
        self,
        lead_id: str,
        lead: Lead | None,
        wanted: dict[tuple[str, str], dict[str, Any]],
        searchable: tuple[list[str], list[str]],
        version: int,
    ) -> bool:
        """The manifest moves to `version` (or goes, with the lead) unless a newer one is stored."""
        guard: dict[str, Any] = {
            "ConditionExpression": "attribute_not_exists(PK) OR lead_version <= :version",
            "ExpressionAttributeValues": {":version": {"N": str(version)}},
        }
        if lead is None:
            return self._write_if("delete_item", Key=marshal(manifest_key(lead_id)), **guard)
        manifest_item = {
            **manifest_key(lead_id),
            "entity": MANIFEST_ENTITY,
            "lead_id": lead_id,
            "keys": [list(key) for key in sorted(wanted)],
            "tokens": searchable[0],
            "seen_by": searchable[1],
            "lead_version": version,
        }
        return self._write_if("put_item", Item=marshal(manifest_item), **guard)
