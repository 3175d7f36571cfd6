"""SES events to activities: which type, which lead, and a stable id per (message, event). No AWS."""

import json

import pytest
from crm.notifications.ses_events import activity_for

from tests.support import EVENTS


def sample(name: str, **tags: list[str]) -> dict:
    event = json.loads((EVENTS / name).read_text())
    event["detail"]["mail"]["tags"].update(tags)
    return event


@pytest.mark.parametrize(
    ("name", "staff_type", "lead_type"),
    [
        ("ses_email_opened.json", "notification_opened", "email_opened"),
        ("ses_email_clicked.json", "notification_clicked", "email_clicked"),
        ("ses_email_bounced.json", "notification_bounced", "email_bounced"),
        ("ses_email_complaint.json", "notification_complained", "email_complained"),
        ("ses_email_delivered.json", "notification_delivered", "email_delivered"),
    ],
)
def test_each_event_becomes_an_activity_on_the_tagged_lead(
    name: str, staff_type: str, lead_type: str
) -> None:
    to_staff = activity_for(sample(name))
    to_lead = activity_for(sample(name, audience=["lead"]))

    assert to_staff is not None and to_lead is not None
    assert to_staff.lead_id == "6f1c1b8e-2a52-4a53-9d8e-3f6f4a1c2b10"
    assert (to_staff.type, to_lead.type) == (staff_type, lead_type)
    assert to_staff.id == to_lead.id  # same message, same event: same activity
    assert "rep1@demo.leadflow.local" not in json.dumps(to_staff.data)  # no recipient addresses kept


def test_the_same_event_delivered_twice_maps_to_the_same_activity() -> None:
    first = activity_for(sample("ses_email_clicked.json"))
    again = activity_for(sample("ses_email_clicked.json"))

    assert first == again
    assert first is not None and first.data["link"].endswith("/leads/6f1c1b8e-2a52-4a53-9d8e-3f6f4a1c2b10")


def test_events_about_no_lead_or_of_other_kinds_map_to_nothing() -> None:
    untagged = sample("ses_email_opened.json")
    del untagged["detail"]["mail"]["tags"]["lead_id"]
    other = sample("ses_email_opened.json")
    other["detail-type"] = "Email Rendering Failed"

    assert activity_for(untagged) is None
    assert activity_for(other) is None
