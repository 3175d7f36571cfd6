"""Routing settings managers change through the API: the sales threshold (score at or above it: a rep;
below it: nurture).

Stored once in the table (`SETTINGS#routing`), versioned like every changeable resource. Until a manager
first saves it, the deploy parameter (`SalesThreshold`, env `SALES_THRESHOLD`) is the value, at version 1.
Routing and nurture read the threshold through `RoutingSettingsService.sales_threshold`, which keeps it for
`CACHE_SECONDS` per warm function, so a change reaches every function within that time.
"""

import time
from collections.abc import Callable
from datetime import datetime
from threading import Lock

from pydantic import BaseModel, Field

from crm.leads.model import UtcDatetime
from crm.leads.routing_settings_repository import RoutingSettingsRepository
from crm.platform import clock

CACHE_SECONDS = 30.0
MAX_THRESHOLD = 1000


class RoutingSettings(BaseModel):
    sales_threshold: int = Field(ge=0, le=MAX_THRESHOLD)
    version: int = Field(ge=1)
    updated_at: UtcDatetime | None = None
    updated_by: str | None = None

    @property
    def stored(self) -> bool:
        """False while nobody has saved the settings: the deploy parameter's value is in force."""
        return self.updated_at is not None


class RoutingSettingsService:
    def __init__(
        self,
        repository: RoutingSettingsRepository,
        default_threshold: int,
        *,
        cache_seconds: float = CACHE_SECONDS,
        now: Callable[[], datetime] = clock.now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repository = repository
        self.default_threshold = default_threshold
        self.cache_seconds = cache_seconds
        self.now = now
        self.monotonic = monotonic
        self._lock = Lock()
        self._cached: tuple[float, int] | None = None

    def current(self) -> RoutingSettings:
        """The settings as stored now (read consistently), or the deploy default at version 1."""
        stored = self.repository.get()
        if stored is None:
            return RoutingSettings(sales_threshold=self.default_threshold, version=1)
        return RoutingSettings.model_validate(stored)

    def sales_threshold(self) -> int:
        """The threshold routing decisions use, read at most once per `cache_seconds`."""
        with self._lock:
            if self._cached is not None and self.monotonic() - self._cached[0] < self.cache_seconds:
                return self._cached[1]
        threshold = self.current().sales_threshold
        with self._lock:
            self._cached = (self.monotonic(), threshold)
        return threshold

    def replace(self, sales_threshold: int, expected_version: int, actor: str) -> RoutingSettings:
        """Save a new threshold if the settings are still at `expected_version` (VersionConflict if not)."""
        saved = RoutingSettings(
            sales_threshold=sales_threshold,
            version=expected_version + 1,
            updated_at=self.now(),
            updated_by=actor,
        )
        self.repository.save(saved.model_dump(mode="json"), expected_version)
        with self._lock:
            self._cached = (self.monotonic(), saved.sales_threshold)
        return saved
