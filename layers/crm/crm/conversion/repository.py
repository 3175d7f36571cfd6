"""Data access for conversion: contacts, companies (and their uniqueness keys), deals.

Key design (docs/data-model.md):

    contact      PK=CONTACT#<id>           SK=CONTACT     GSI1PK=OWNER#<user>#contacts GSI1SK=<created>#<id>
    company      PK=COMPANY#<id>           SK=COMPANY
    company key  PK=COMPANYKEY#domain:<d>  SK=COMPANYKEY  (or COMPANYKEY#name:<normalised name>) → company_id
    deal         PK=DEAL#<id>              SK=DEAL        GSI1PK=OWNER#<user>#deals    GSI1SK=<created>#<id>

A conversion is one `TransactWriteItems`; `commit` turns each cancellation reason into what it means.
"""

from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from crm.conversion.model import (
    Company,
    CompanyKeyTaken,
    Contact,
    ConversionPlan,
    Deal,
    LeadAlreadyChanged,
    Lookup,
)
from crm.leads.repository import (
    ActivityItem,
    LeadItem,
)
from crm.platform.dynamo import TableRepository, error_code, marshal, must_exist, translate, unmarshal
from crm.platform.errors import InvalidInput, RetryableError


def contact_key(contact_id: str) -> dict[str, str]:
    return {"PK": f"CONTACT#{contact_id}", "SK": "CONTACT"}


def company_key(company_id: str) -> dict[str, str]:
    return {"PK": f"COMPANY#{company_id}", "SK": "COMPANY"}


def company_match_key(key: str) -> dict[str, str]:
    """`key` is "domain:<domain>" or "name:<normalised name>" (crm.conversion.model.company_keys)."""
    return {"PK": f"COMPANYKEY#{key}", "SK": "COMPANYKEY"}


def deal_key(deal_id: str) -> dict[str, str]:
    return {"PK": f"DEAL#{deal_id}", "SK": "DEAL"}


def _attributes(model: BaseModel, decimals: tuple[str, ...] = ()) -> dict[str, Any]:
    # JSON mode for timestamps and enums; money stays a Decimal, a DynamoDB number.
    attributes: dict[str, Any] = model.model_dump(mode="json")
    for name in decimals:
        attributes[name] = getattr(model, name)
    return attributes


class ContactItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    PK: str
    SK: str
    entity: str = "contact"
    GSI1PK: str
    GSI1SK: str

    @classmethod
    def from_contact(cls, contact: Contact) -> "ContactItem":
        attributes = _attributes(contact)
        return cls(
            **contact_key(contact.id),
            GSI1PK=f"OWNER#{contact.owner}#contacts",
            GSI1SK=f"{attributes['created_at']}#{contact.id}",
            **attributes,
        )

    def to_contact(self) -> Contact:
        return Contact.model_validate(self.model_extra or {})


class CompanyItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    PK: str
    SK: str
    entity: str = "company"

    @classmethod
    def from_company(cls, company: Company) -> "CompanyItem":
        return cls(**company_key(company.id), **_attributes(company, ("annual_revenue",)))

    def to_company(self) -> Company:
        return Company.model_validate(self.model_extra or {})


class CompanyKeyItem(BaseModel):
    PK: str
    SK: str
    entity: str = "company_key"
    company_id: str
    created_at: str


class DealItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    PK: str
    SK: str
    entity: str = "deal"
    GSI1PK: str
    GSI1SK: str

    @classmethod
    def from_deal(cls, deal: Deal) -> "DealItem":
        attributes = _attributes(deal, ("amount",))
        return cls(
            **deal_key(deal.id),
            GSI1PK=f"OWNER#{deal.owner}#deals",
            GSI1SK=f"{attributes['created_at']}#{deal.id}",
            **attributes,
        )

    def to_deal(self) -> Deal:
        return Deal.model_validate(self.model_extra or {})


class ConversionRepository(TableRepository):
    # ------------------------------------------------------------------ reads
    def lookup(self, keys: list[str], company_id: str | None, contact_id: str | None) -> Lookup:
        """Company key owners and the records asked to attach to: one consistent BatchGetItem."""
        wanted = [company_match_key(key) for key in keys]
        if company_id is not None:
            wanted.append(company_key(company_id))
        if contact_id is not None:
            wanted.append(contact_key(contact_id))
        if not wanted:
            return Lookup(key_owners={})
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            self.table_name: {"Keys": [marshal(key) for key in wanted], "ConsistentRead": True}
        }
        try:
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                items += [unmarshal(raw) for raw in response.get("Responses", {}).get(self.table_name, [])]
                request = dict(response.get("UnprocessedKeys") or {})
        except ClientError as exc:
            raise translate(exc) from exc
        owners: dict[str, str] = {}
        company: Company | None = None
        contact: Contact | None = None
        for item in items:
            entity = item.get("entity")
            if entity == "company_key":
                owners[str(item["PK"]).removeprefix("COMPANYKEY#")] = str(item["company_id"])
            elif entity == "company":
                company = CompanyItem.model_validate(item).to_company()
            elif entity == "contact":
                contact = ContactItem.model_validate(item).to_contact()
        return Lookup(key_owners=owners, company=company, contact=contact)

    def get_contact(self, contact_id: str) -> Contact | None:
        item = self._get_item(contact_key(contact_id))
        return ContactItem.model_validate(item).to_contact() if item else None

    def get_company(self, company_id: str) -> Company | None:
        item = self._get_item(company_key(company_id))
        return CompanyItem.model_validate(item).to_company() if item else None

    def get_deal(self, deal_id: str) -> Deal | None:
        item = self._get_item(deal_key(deal_id))
        return DealItem.model_validate(item).to_deal() if item else None

    # ------------------------------------------------------------------ the one write
    def transact_items(self, plan: ConversionPlan) -> list[tuple[str, dict[str, Any]]]:
        """Every item of the conversion, each with its role (to read the cancellation reasons by)."""
        table = self.table_name
        stored = plan.lead.model_copy(update={"version": plan.expected_version + 1})
        created_at = stored.model_dump(mode="json")["updated_at"]
        items: list[tuple[str, dict[str, Any]]] = [
            (
                "lead",
                {
                    "Put": {
                        "TableName": table,
                        "Item": marshal(LeadItem.from_lead(stored, self.shards).model_dump()),
                        "ConditionExpression": "#version = :expected AND #converted = :false",
                        "ExpressionAttributeNames": {"#version": "version", "#converted": "converted"},
                        "ExpressionAttributeValues": {
                            ":expected": {"N": str(plan.expected_version)},
                            ":false": {"BOOL": False},
                        },
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
            )
        ]
        if plan.contact is not None:
            items.append(("contact", _put_new(table, ContactItem.from_contact(plan.contact).model_dump())))
        if plan.existing_contact_id is not None:
            items.append(("attached_contact", must_exist(table, contact_key(plan.existing_contact_id))))
        if plan.company is not None:
            items.append(("company", _put_new(table, CompanyItem.from_company(plan.company).model_dump())))
        if plan.existing_company_id is not None:
            items.append(("attached_company", must_exist(table, company_key(plan.existing_company_id))))
        for key in plan.company_keys_to_claim:
            claim = CompanyKeyItem(
                **company_match_key(key), company_id=str(plan.lead.company_id), created_at=created_at
            )
            items.append(("company_key", _put_new(table, claim.model_dump())))
        if plan.deal is not None:
            items.append(("deal", _put_new(table, DealItem.from_deal(plan.deal).model_dump())))
        activity = ActivityItem.from_activity(plan.activity).model_dump()
        items.append(("activity", {"Put": {"TableName": table, "Item": marshal(activity)}}))
        return items

    def commit(self, plan: ConversionPlan) -> None:
        """Write the whole conversion or nothing.

        Raises LeadAlreadyChanged (with the lead as it is now) when the lead was converted or changed since
        it was read, CompanyKeyTaken when another conversion just created the company, InvalidInput when a
        company or contact to attach to is gone, RetryableError for anything transient.
        """
        roles_and_items = self.transact_items(plan)
        try:
            self.client.transact_write_items(TransactItems=[item for _, item in roles_and_items])  # type: ignore[misc]
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc) from exc
            reasons: list[Any] = list(exc.response.get("CancellationReasons", []))
            failed = [
                role
                for (role, _), reason in zip(roles_and_items, reasons, strict=False)
                if reason.get("Code") == "ConditionalCheckFailed"
            ]
            if "lead" in failed:
                old = unmarshal(reasons[0].get("Item") or {})
                current = LeadItem.model_validate(old).to_lead() if old else None
                raise LeadAlreadyChanged(current) from exc
            if "attached_company" in failed:
                raise InvalidInput.single("company_id", "no company with this id") from exc
            if "attached_contact" in failed:
                raise InvalidInput.single("contact_id", "no contact with this id") from exc
            if "company_key" in failed:
                raise CompanyKeyTaken() from exc
            # A new contact, company or deal id already taken (a freak collision or an injected fault), or a
            # transaction conflict with a concurrent writer: nothing was written; the caller may retry.
            raise RetryableError("The conversion could not be written; try again") from exc


def _put_new(table: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "Put": {"TableName": table, "Item": marshal(item), "ConditionExpression": "attribute_not_exists(PK)"}
    }
