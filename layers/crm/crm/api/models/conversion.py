"""API models of the conversion routes: what `POST /leads/{id}/convert` accepts, and the contact, company
and deal as clients read them back."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator

from crm.api.models.leads import LeadResponse
from crm.conversion.model import Company, Contact, ConversionOptions, ConversionResult, Deal, DealStage
from crm.leads.model import UtcDatetime
from crm.platform.fields import MoneyAmount, OptionalMoney, OptionalText255
from crm.platform.ids import ID_PATTERN

RecordId = Annotated[str, Field(pattern=ID_PATTERN, max_length=36)]


class ConvertLeadRequest(BaseModel):
    """Create a contact (and company, and deal) from the lead, or attach to existing ones."""

    model_config = ConfigDict(extra="forbid")

    create_opportunity: StrictBool = True
    deal_name: OptionalText255 = None
    amount: OptionalMoney = None
    company_id: RecordId | None = None
    contact_id: RecordId | None = None
    force: StrictBool = False

    @field_validator("deal_name", "amount")
    @classmethod
    def deal_fields_need_a_deal(cls, value: object, info: ValidationInfo) -> object:
        if value is not None and info.data.get("create_opportunity") is False:
            raise ValueError("only with create_opportunity: true")
        return value

    def to_options(self) -> ConversionOptions:
        return ConversionOptions(
            create_opportunity=self.create_opportunity,
            deal_name=self.deal_name,
            amount=self.amount,
            company_id=self.company_id,
            contact_id=self.contact_id,
            force=self.force,
        )


class ConversionResponse(BaseModel):
    lead_id: str
    contact_id: str
    company_id: str | None
    deal_id: str | None
    converted_at: UtcDatetime | None
    lead: LeadResponse

    @classmethod
    def from_result(cls, result: ConversionResult) -> "ConversionResponse":
        lead = result.lead
        return cls(
            lead_id=lead.id,
            contact_id=str(lead.contact_id),
            company_id=lead.company_id,
            deal_id=lead.deal_id,
            converted_at=lead.converted_at,
            lead=LeadResponse.from_lead(lead),
        )


class ContactResponse(BaseModel):
    id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None
    title: str | None
    company_id: str | None
    owner: str
    team: str | None
    lead_id: str | None
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int

    @classmethod
    def from_contact(cls, contact: Contact) -> "ContactResponse":
        return cls.model_validate(contact.model_dump())


class CompanyResponse(BaseModel):
    id: str
    name: str
    domain: str | None
    industry: str | None
    employee_count: int | None
    annual_revenue: MoneyAmount | None  # a JSON number
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int

    @classmethod
    def from_company(cls, company: Company) -> "CompanyResponse":
        return cls.model_validate(company.model_dump())


class DealResponse(BaseModel):
    id: str
    name: str
    stage: DealStage
    amount: MoneyAmount | None  # a JSON number
    contact_id: str
    company_id: str | None
    lead_id: str | None
    owner: str
    team: str | None
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int

    @classmethod
    def from_deal(cls, deal: Deal) -> "DealResponse":
        return cls.model_validate(deal.model_dump())
