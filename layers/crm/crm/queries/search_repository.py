"""The DynamoDB adapter of `crm.queries.search.SearchIndex`: search-token items in the single table.

    token item   PK=SEARCH#<scope>#<first 2 chars of token>   SK=<token>#<lead id>
                 (lead_id, tokens: all the lead's tokens, lead_version)
    manifest     PK=SEARCHDOC#<lead id>   SK=SEARCHDOC   (keys: the token items written, lead_version)

A lead has one token item per (token, scope); the scopes are the ones of crm.queries.search.lead_scopes, so a
search reads only partitions the caller may see. A prefix search is one Query per scope partition
(`SK BETWEEN <prefix> AND <prefix>\\U0010ffff`), merged by sort key. A lead matching through several tokens
is listed once, at its smallest matching token (each item carries the lead's token list to decide).

`sync` is driven by the table's stream and is idempotent: it reads the manifest, deletes the items no longer
wanted, writes the wanted ones it does not already have (all of them when the lead's tokens changed), then
moves the manifest to the new version on the condition that the manifest is not newer (a BatchWriteItem and
a conditional put: a transaction cost twice the write units). A redelivered or out-of-date change is a no-op;
one that loses the race to a newer version puts that version's items back from its manifest.
"""

import heapq
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

from crm.leads.model import Lead
from crm.platform.dynamo import TableRepository, marshal, translate, unmarshal
from crm.queries.list_repository import resume_bounds
from crm.queries.search import SearchHit, first_matching_token, lead_scopes, tokens_for

SEARCH_ENTITY = "search_token"
MANIFEST_ENTITY = "search_doc"
_TOP = "\U0010ffff"


@cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="search-query")


def token_key(scope: str, token: str, lead_id: str) -> dict[str, str]:
    return {"PK": f"SEARCH#{scope}#{token[:2]}", "SK": f"{token}#{lead_id}"}


def manifest_key(lead_id: str) -> dict[str, str]:
    return {"PK": f"SEARCHDOC#{lead_id}", "SK": "SEARCHDOC"}


def wanted_items(lead: Lead, version: int) -> dict[tuple[str, str], dict[str, Any]]:
    """Every token item this lead should have, by (PK, SK)."""
    tokens = tokens_for(lead)
    items: dict[tuple[str, str], dict[str, Any]] = {}
    for scope in lead_scopes(lead):
        for token in tokens:
            key = token_key(scope, token, lead.id)
            items[(key["PK"], key["SK"])] = token_item(key["PK"], key["SK"], lead.id, tokens, version)
    return items


def token_item(pk: str, sk: str, lead_id: str, tokens: list[str], version: int) -> dict[str, Any]:
    return {
        "PK": pk,
        "SK": sk,
        "entity": SEARCH_ENTITY,
        "lead_id": lead_id,
        "tokens": tokens,
        "lead_version": version,
    }


class DynamoSearchIndex(TableRepository):
    # ------------------------------------------------------------------ reads
    def search(self, scopes: list[str], prefix: str, limit: int, after: str | None) -> list[SearchHit]:
        bounds = resume_bounds(prefix, prefix + _TOP, False, after)
        if bounds is None or len(prefix) < 2:
            return []
        lower, upper = bounds[0] or prefix, bounds[1] or prefix + _TOP
        page_size = limit + 2
        partitions = [f"SEARCH#{scope}#{prefix[:2]}" for scope in scopes]
        first_pages = list(
            _executor().map(lambda pk: self._query(pk, lower, upper, page_size, None), partitions)
        )
        streams = [
            self._stream(pk, lower, upper, page_size, first)
            for pk, first in zip(partitions, first_pages, strict=True)
        ]
        hits: list[SearchHit] = []
        for item in heapq.merge(*streams, key=lambda i: str(i["SK"])):
            sort_key = str(item["SK"])
            if sort_key == after or (hits and hits[-1].sort_key == sort_key):
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
        self,
        pk: str,
        lower: str,
        upper: str,
        page_size: int,
        first: tuple[list[dict[str, Any]], dict[str, Any] | None],
    ) -> Iterator[dict[str, Any]]:
        items, last_key = first
        while True:
            yield from items
            if last_key is None:
                return
            items, last_key = self._query(pk, lower, upper, page_size, last_key)

    def _query(
        self, pk: str, lower: str, upper: str, limit: int, start: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :lower AND :upper",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":lower": {"S": lower}, ":upper": {"S": upper}},
            "Limit": limit,
        }
        if start is not None:
            kwargs["ExclusiveStartKey"] = start
        try:
            response = self.client.query(**kwargs)
        except ClientError as exc:
            raise translate(exc) from exc
        return [unmarshal(raw) for raw in response.get("Items", [])], response.get("LastEvaluatedKey")

    # ------------------------------------------------------------------ writes
    def sync(self, lead_id: str, lead: Lead | None, version: int) -> bool:
        manifest = self._get_item(manifest_key(lead_id))
        if manifest is not None and int(manifest["lead_version"]) > version:
            return False
        current = {(str(pk), str(sk)) for pk, sk in (manifest.get("keys") or [])} if manifest else set()
        wanted = wanted_items(lead, version) if lead is not None else {}
        current_tokens = list(manifest.get("tokens") or []) if manifest else []
        wanted_tokens = tokens_for(lead) if lead is not None else []
        if set(wanted) == current and wanted_tokens == current_tokens:
            return True  # nothing searchable changed (a score, a status...)
        # Items carry the lead's token list: when it is unchanged, an item already written stays as it is
        # (a lead moving to another rep rewrites only its holder scope's items, not every scope's).
        keep = current if wanted_tokens == current_tokens else set()
        stale = sorted(current - set(wanted))
        # Token items first, the manifest last: a crash in between leaves the old manifest, so the
        # redelivered record does it all again (idempotent puts and deletes). Not a transaction: that cost
        # twice the write units.
        self._batch_write(
            puts=[item for key, item in wanted.items() if key not in keep],
            deletes=[{"PK": pk, "SK": sk} for pk, sk in stale],
            busy="The search index could not be updated; try again",
        )
        if self._move_manifest(lead_id, lead, wanted, wanted_tokens, version):
            return True
        # A newer version was indexed meanwhile (a replayed record racing the live one): put its items back
        # as its manifest lists them, and take away the ones written here that it does not want.
        newer = self._get_item(manifest_key(lead_id)) or {"keys": [], "tokens": [], "lead_version": version}
        newer_keys = {(str(pk), str(sk)) for pk, sk in newer["keys"]}
        newer_tokens = [str(token) for token in newer["tokens"]]
        self._batch_write(
            puts=[
                token_item(pk, sk, lead_id, newer_tokens, int(newer["lead_version"]))
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
        tokens: list[str],
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
            "tokens": tokens,
            "lead_version": version,
        }
        return self._write_if("put_item", Item=marshal(manifest_item), **guard)
