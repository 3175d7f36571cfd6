import pytest
from crm.capture.webhooks import sign, verify_signature
from crm.platform.errors import Unauthorized

BODY = b'{"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com"}'
NOW = 1_800_000_000


def header(*signatures: str, timestamp: int = NOW) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={s}" for s in signatures)])


def test_a_correct_signature_passes_and_names_the_delivery() -> None:
    signature = sign("s3cret", NOW, BODY)
    assert verify_signature(header(signature), BODY, ["s3cret"], NOW, 300) == f"{NOW}.{signature}"


def test_during_rotation_either_secret_and_either_signature_passes() -> None:
    signatures = (sign("old", NOW, BODY), sign("new", NOW, BODY))
    verify_signature(header(*signatures), BODY, ["new"], NOW, 300)
    verify_signature(header(sign("old", NOW, BODY)), BODY, ["new", "old"], NOW, 300)


@pytest.mark.parametrize(
    ("signature_header", "reason"),
    [
        (None, "Missing"),
        ("", "Missing"),
        ("garbage", "Malformed"),
        (f"t=abc,v1={'0' * 64}", "Malformed"),
        (f"t={NOW}", "Malformed"),
        (f"t={NOW},v1=xyz", "Malformed"),
        (f"t={'9' * 400},v1={'0' * 64}", "Malformed"),  # overflowed float arithmetic: a 500 before
        (f"t=١٢٣٤,v1={'0' * 64}", "Malformed"),  # Arabic-Indic digits pass str.isdigit()
        (f"t={NOW},v1={'é' * 64}", "Malformed"),
        (header(sign("s3cret", NOW - 301, BODY), timestamp=NOW - 301), "Stale"),
        (header(sign("s3cret", NOW + 301, BODY), timestamp=NOW + 301), "Stale"),
        (header(sign("wrong", NOW, BODY)), "Invalid signature"),
        (header(sign("s3cret", NOW, BODY + b" ")), "Invalid signature"),
    ],
)
def test_missing_malformed_stale_or_wrong_signatures_are_refused(
    signature_header: str | None, reason: str
) -> None:
    with pytest.raises(Unauthorized, match=reason):
        verify_signature(signature_header, BODY, ["s3cret"], NOW, 300)


def test_the_signature_covers_the_timestamp() -> None:
    replayed = f"t={NOW + 10},v1={sign('s3cret', NOW, BODY)}"
    with pytest.raises(Unauthorized, match="Invalid signature"):
        verify_signature(replayed, BODY, ["s3cret"], NOW, 300)
