"""SES email templates go from template.yaml into moto; raw MIME mail shows its headers in the outbox."""

import boto3
from crm.platform.email import OutgoingEmail, raw_message
from moto import mock_aws

from devstack.outbox import sent_messages
from devstack.provision import create_email_templates, verify_email_identities
from devstack.seed import load_seed
from devstack.template import load_template


def test_the_templates_ses_templates_are_read_with_their_resolved_names() -> None:
    template = load_template("template.yaml", parameter_overrides={"Stage": "prod"})

    names = {t.logical_id: t.name for t in template.email_templates}

    assert names == {
        "NurtureWelcomeTemplate": "leadflow-prod-nurture-welcome",
        "NurtureResourcesTemplate": "leadflow-prod-nurture-resources",
        "NurtureCheckInTemplate": "leadflow-prod-nurture-check-in",
    }
    assert all(t.subject and "{{unsubscribe_url}}" in t.html for t in template.email_templates)


def test_provisioning_creates_the_templates_and_brings_changed_ones_in_line() -> None:
    template = load_template("template.yaml")
    with mock_aws():
        ses = boto3.client("ses", region_name="us-east-1")
        ses.create_template(
            Template={"TemplateName": "leadflow-dev-nurture-welcome", "SubjectPart": "old", "TextPart": "old"}
        )

        created = create_email_templates(ses, template)
        create_email_templates(ses, template)  # a restart: nothing new, nothing fails

        assert sorted(created) == sorted(t["Name"] for t in ses.list_templates()["TemplatesMetadata"])
        welcome = ses.get_template(TemplateName="leadflow-dev-nurture-welcome")["Template"]
        assert welcome["SubjectPart"] == "Thanks for your interest, {{first_name}}"


def test_a_raw_message_shows_its_headers_and_each_recipient_once_in_the_outbox() -> None:
    template = load_template("template.yaml")
    outgoing = OutgoingEmail(
        to="ada@example.com",
        subject="Hello Ada",
        html="<p>Hello Ada</p>",
        text="Hello Ada",
        headers={"List-Unsubscribe": "<https://api.example.com/unsubscribe?token=t>"},
    )
    with mock_aws():
        sesv2 = boto3.client("sesv2", region_name="us-east-1")
        verify_email_identities(sesv2, template, load_seed())
        sesv2.send_email(
            FromEmailAddress="leads@leadflow.local",
            Destination={"ToAddresses": ["ada@example.com"]},
            Content={"Raw": {"Data": raw_message("leads@leadflow.local", outgoing)}},
        )
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        backend = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        model = {
            "ses": {
                "RawMessage": [
                    {"id": m.id, "source": m.source, "destinations": m.destinations, "raw_data": m.raw_data}
                    for m in backend.sent_messages
                ]
            }
        }

    (mail,) = sent_messages(model)

    assert mail["to"] == ["ada@example.com"] and mail["subject"] == "Hello Ada"
    assert mail["headers"]["List-Unsubscribe"] == "<https://api.example.com/unsubscribe?token=t>"
    assert mail["html"].strip() == "<p>Hello Ada</p>" and mail["text"].strip() == "Hello Ada"
