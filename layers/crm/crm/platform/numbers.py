"""What DynamoDB can store as a number, checked where numbers enter (request bodies, rule values).

DynamoDB keeps up to 38 significant digits, magnitudes from 1E-130 to 9.99…E+125, and zero; anything else
fails at write time, long after the request was accepted. `number_problem` says why a number cannot be
stored (None when it can), so input models refuse it with a 422 naming the field.
"""

from decimal import Decimal

MAX_DIGITS = 38
SMALLEST_EXPONENT = -130  # 1E-130
LARGEST_EXPONENT = 125  # 9.99…E+125


def number_problem(number: int | float | Decimal) -> str | None:
    """Why DynamoDB cannot store `number`, or None when it can (as given: trailing zeros count as digits)."""
    value = number if isinstance(number, Decimal) else Decimal(str(number))
    if not value.is_finite():
        return "must be a finite number"
    if value.is_zero():
        return None
    if len(value.as_tuple().digits) > MAX_DIGITS:
        return f"must have at most {MAX_DIGITS} significant digits"
    if not SMALLEST_EXPONENT <= value.adjusted() <= LARGEST_EXPONENT:
        return "must be between 1E-130 and 9.99E+125 in size (or 0)"
    return None
