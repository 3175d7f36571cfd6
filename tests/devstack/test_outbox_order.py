"""The local outbox: every kind of mail (simple, raw MIME, templated) in one list, newest first by when the
stack saw SES accept it, each with its `sent_at`; message ids are read from SES v2 and v1 answers."""

from devstack.outbox import message_ids, render_html, sent_messages

MODEL = {
    "ses": {
        "Message": [
            {"id": "simple-old", "source": "a@x.io", "subject": "Old", "body": "text", "destinations": {}},
            {"id": "simple-new", "source": "a@x.io", "subject": "New", "body": "text", "destinations": {}},
        ],
        "RawMessage": [
            {"id": "raw-middle", "source": "a@x.io", "raw_data": "Subject: Middle\nTo: b@x.io\n\nhello"},
        ],
        "TemplateMessage": [
            {"id": "templated-first", "source": "a@x.io", "template": "t", "destinations": {}}
        ],
    }
}
SENT_AT = {
    "templated-first": "2026-11-25T09:00:00+00:00",
    "simple-old": "2026-11-25T09:01:00+00:00",
    "raw-middle": "2026-11-25T09:02:00+00:00",
    "simple-new": "2026-11-25T09:03:00+00:00",
}


def test_mail_of_every_kind_is_listed_newest_first_with_its_time() -> None:
    messages = sent_messages(MODEL, SENT_AT)
    assert [m["id"] for m in messages] == ["simple-new", "raw-middle", "simple-old", "templated-first"]
    assert [m["sent_at"] for m in messages] == sorted(SENT_AT.values(), reverse=True)
    assert "2026-11-25T09:02:00+00:00" in render_html(messages)


def test_mail_the_stack_did_not_see_pass_comes_last_without_a_time() -> None:
    messages = sent_messages(MODEL, {"simple-old": "2026-11-25T09:01:00+00:00"})
    assert messages[0]["id"] == "simple-old"
    assert all(m["sent_at"] is None for m in messages[1:])


def test_message_ids_are_read_from_ses_answers() -> None:
    assert message_ids(b'{"MessageId": "0100-abc"}') == ["0100-abc"]
    assert message_ids(b"<SendRawEmailResult><MessageId>v1-id</MessageId></SendRawEmailResult>") == ["v1-id"]
    assert message_ids(b'{"Message": "Too many requests"}') == []
