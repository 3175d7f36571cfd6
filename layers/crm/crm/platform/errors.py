"""Domain errors. The HTTP resolver (crm.platform.http) maps each to a status code; nothing else does."""

from dataclasses import dataclass
from typing import Self


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
    def single(cls, field_name: str, message: str) -> Self:
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


class BadQuery(InvalidInput):
    """Query parameters that no index can answer together, or a cursor that is not this query's (400)."""

    code = "bad_query"


class PreconditionRequired(InvalidInput):
    """A change that needs the version the client read (If-Match or `version`) came without one."""

    code = "precondition_required"


class InvalidTransition(Conflict):
    """The lead's current status does not allow the requested one (see crm.lifecycle.service.TRANSITIONS)."""

    code = "invalid_transition"


class NotQualified(Conflict):
    """Conversion of a lead that is not qualified, without an allowed `force`."""

    code = "lead_not_qualified"


class EmailTaken(Conflict):
    """Another lead already owns the email a change asks for (its id is not revealed)."""

    code = "email_taken"


class PermanentFailure(DomainError):
    """A queued job that can never succeed as it stands (e.g. an unknown recipient): retrying is pointless,
    so its message goes to the dead-letter queue at once, with this message as the reason."""

    code = "permanent_failure"
