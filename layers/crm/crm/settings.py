"""Environment, read once at cold start into a validated model."""

import os
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: str = "dev"
    table_name: str = Field(min_length=1)
    allowed_origins: tuple[str, ...] = ()
    public_base_url: str = "http://127.0.0.1:3000"
    partner_secrets_path: str = "/leadflow/dev/partners"
    # Write-sharding for low-cardinality index keys (status, source, unassigned queue).
    index_shards: int = Field(default=4, ge=1, le=64)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    webhook_tolerance_seconds: int = Field(default=300, ge=1)
    honeypot_field: str = "_gotcha"

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(origin.strip().rstrip("/") for origin in value.split(",") if origin.strip())
        return value


@cache
def get_settings() -> Settings:
    names = Settings.model_fields.keys()
    values = {name: os.environ[name.upper()] for name in names if name.upper() in os.environ}
    return Settings.model_validate(values)
