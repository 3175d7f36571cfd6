"""Composition root: the services each function uses, built once per execution environment."""

from functools import cache

from crm.capture import CaptureService
from crm.repository import LeadRepository
from crm.settings import get_settings


@cache
def lead_repository() -> LeadRepository:
    settings = get_settings()
    return LeadRepository(settings.table_name, shards=settings.index_shards)


@cache
def capture_service() -> CaptureService:
    return CaptureService(lead_repository())


def reset() -> None:
    """Forget built services (tests switch settings between cases)."""
    lead_repository.cache_clear()
    capture_service.cache_clear()
