"""Naming a route's request body and query parameters for the OpenAPI document, by the model class.

Our functions read their own input (forms, signed webhooks, exact-byte idempotency), so Powertools cannot
infer these: a route says `openapi_extensions=request_model(CreateLeadRequest)` and the document's builder
(`crm.api.docs`) finds the class here by the name the extension carries.
"""

from typing import Any

from pydantic import BaseModel

_MODELS: dict[str, type[BaseModel]] = {}


def _register(model: type[BaseModel]) -> str:
    known = _MODELS.setdefault(model.__name__, model)
    if known is not model:
        raise ValueError(f"Two API models are named {model.__name__}: {known.__module__}, {model.__module__}")
    return model.__name__


def request_model(model: type[BaseModel]) -> dict[str, Any]:
    return {"x-request-model": _register(model)}


def query_model(model: type[BaseModel]) -> dict[str, Any]:
    return {"x-query-model": _register(model)}


def registered_model(name: str) -> type[BaseModel]:
    return _MODELS[name]
