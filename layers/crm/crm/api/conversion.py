"""Conversion routes (ConversionFunction): convert a lead, and read back what conversion made."""

from http import HTTPStatus

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from crm import bootstrap
from crm.api.lifecycle import checked_id, json_body
from crm.api.models.conversion import (
    CompanyResponse,
    ContactResponse,
    ConversionResponse,
    ConvertLeadRequest,
    DealResponse,
)
from crm.api.models.lifecycle import etag
from crm.api.openapi import request_model
from crm.platform.http import CHANGE_ERRORS, JWT, documented_responses, json_response, model_from
from crm.platform.observability import logger, metrics


def build_router() -> Router:
    router = Router()

    @router.post(
        "/leads/<lead_id>/convert",
        summary="Convert a lead into a contact, a company and a deal, all or nothing",
        description=(
            "The rep who owns the lead, a manager or an admin. One transaction creates the contact (from "
            "the lead's person fields), the company (matched first to an existing one by email domain, then "
            'by normalised name) and the deal ("{company or last name} - Opportunity", stage '
            "qualification), and marks the lead converted. `company_id` / `contact_id` attach to existing "
            "records instead. A lead converted before answers 200 with the first conversion's ids. A lead "
            "that is not qualified needs `force: true` from a manager or admin (409 otherwise)."
        ),
        tags=["Conversion"],
        security=JWT,
        responses=documented_responses(
            {
                201: ("Converted now", ConversionResponse),
                200: ("Converted before: the first conversion's result", ConversionResponse),
            },
            *CHANGE_ERRORS,
        ),
        openapi_extensions=request_model(ConvertLeadRequest),
    )
    def convert_lead_route(lead_id: str) -> Response[str]:
        event = router.current_event.raw_event
        principal = bootstrap.caller(event)
        checked_id(lead_id, "lead")
        request: ConvertLeadRequest = model_from(
            ConvertLeadRequest, json_body(event) if event.get("body") else {}
        )
        result = bootstrap.conversion_service().convert(lead_id, request.to_options(), principal)
        if result.created:
            metrics.add_metric(name="LeadsConverted", unit="Count", value=1)
        logger.info(
            "Lead converted" if result.created else "Lead was converted before",
            extra={"lead_id": lead_id, "contact_id": result.lead.contact_id, "deal_id": result.lead.deal_id},
        )
        status = HTTPStatus.CREATED if result.created else HTTPStatus.OK
        return json_response(
            status, ConversionResponse.from_result(result), headers=etag(result.lead.version)
        )

    @router.get(
        "/contacts/<contact_id>",
        summary="A contact",
        tags=["Conversion"],
        security=JWT,
        responses=documented_responses({200: ("The contact", ContactResponse)}, 401, 404, 503),
    )
    def get_contact_route(contact_id: str) -> Response[str]:
        principal = bootstrap.caller(router.current_event.raw_event)
        contact = bootstrap.conversion_service().contact(checked_id(contact_id, "contact"), principal)
        return json_response(HTTPStatus.OK, ContactResponse.from_contact(contact))

    @router.get(
        "/companies/<company_id>",
        summary="A company",
        tags=["Conversion"],
        security=JWT,
        responses=documented_responses({200: ("The company", CompanyResponse)}, 401, 404, 503),
    )
    def get_company_route(company_id: str) -> Response[str]:
        principal = bootstrap.caller(router.current_event.raw_event)
        company = bootstrap.conversion_service().company(checked_id(company_id, "company"), principal)
        return json_response(HTTPStatus.OK, CompanyResponse.from_company(company))

    @router.get(
        "/deals/<deal_id>",
        summary="A deal",
        tags=["Conversion"],
        security=JWT,
        responses=documented_responses({200: ("The deal", DealResponse)}, 401, 404, 503),
    )
    def get_deal_route(deal_id: str) -> Response[str]:
        principal = bootstrap.caller(router.current_event.raw_event)
        deal = bootstrap.conversion_service().deal(checked_id(deal_id, "deal"), principal)
        return json_response(HTTPStatus.OK, DealResponse.from_deal(deal))

    return router
