"""Domain errors. The HTTP resolver (crm.http) maps each to a status code; nothing else does."""

from dataclasses import dataclass


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


class InvalidInput(DomainError):
    code = "validation_error"

    def __init__(self, problems: list[FieldProblem], message: str = "The request has invalid fields") -> None:
        super().__init__(message)
        self.problems = problems

    @classmethod
    def single(cls, field_name: str, message: str) -> "InvalidInput":
        return cls([FieldProblem(field_name, message)], f"{field_name}: {message}")


class MalformedBody(DomainError):
    code = "malformed_body"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class Unauthorized(DomainError):
    code = "unauthorized"


class Forbidden(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"

    def __init__(self, message: str, current_version: int | None = None) -> None:
        super().__init__(message)
        self.current_version = current_version


class DuplicateEmail(DomainError):
    """A lead already owns this email; carries its id so the capture can merge into it."""

    code = "duplicate_email"

    def __init__(self, lead_id: str | None) -> None:
        super().__init__("A lead with this email already exists")
        self.lead_id = lead_id


class VersionConflict(Conflict):
    code = "version_conflict"


class RetryableError(DomainError):
    """A transient failure (throttling, transaction conflict): the client may try again."""

    code = "temporarily_unavailable"
