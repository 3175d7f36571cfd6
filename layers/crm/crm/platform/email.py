"""Sending email, behind a small port: SES v2 in AWS (and in the local stack, moto's SES).

Each email carries SES tags (`lead_id`, `kind`, `audience`) and goes through the configuration set, so its
delivery, opens, clicks, bounces and complaints come back as EventBridge events
(`crm.notifications.ses_events`).
"""

from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from typing import Protocol

from botocore.exceptions import BotoCoreError, ClientError

from crm.platform import aws
from crm.platform.errors import PermanentFailure, RetryableError

# SESv2 answers these for throttling, quotas, pauses and its own faults: try again later.
_TRANSIENT_CODES = frozenset(
    {
        "TooManyRequestsException",
        "LimitExceededException",
        "ThrottlingException",
        "Throttling",
        "SendingPausedException",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
    }
)


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    html: str
    text: str
    tags: dict[str, str] = field(default_factory=dict)
    # Extra MIME headers (e.g. List-Unsubscribe): such an email is sent as a raw MIME message.
    headers: dict[str, str] = field(default_factory=dict)


class EmailSender(Protocol):
    def send(self, email: OutgoingEmail) -> str:
        """Send; return the provider's message id. RetryableError: try later. PermanentFailure: never."""
        ...


def raw_message(sender: str, email: OutgoingEmail) -> bytes:
    """The email as MIME (text and HTML alternatives) with its extra headers; header values lose line breaks,
    so nothing a template renders can add a header."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = " ".join(email.subject.split())
    for name, value in email.headers.items():
        message[name] = " ".join(value.split())
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message.as_bytes()


class SesEmailSender:
    def __init__(self, sender: str, configuration_set: str) -> None:
        self.sender = sender
        self.configuration_set = configuration_set

    def send(self, email: OutgoingEmail) -> str:
        content: dict[str, object] = (
            {"Raw": {"Data": raw_message(self.sender, email)}}
            if email.headers
            else {
                "Simple": {
                    "Subject": {"Data": email.subject, "Charset": "UTF-8"},
                    "Body": {
                        "Html": {"Data": email.html, "Charset": "UTF-8"},
                        "Text": {"Data": email.text, "Charset": "UTF-8"},
                    },
                }
            }
        )
        request: dict[str, object] = {
            "FromEmailAddress": self.sender,
            "Destination": {"ToAddresses": [email.to]},
            "Content": content,
            "EmailTags": [{"Name": name, "Value": value} for name, value in email.tags.items()],
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            response = aws.client("sesv2").send_email(**request)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in _TRANSIENT_CODES or status >= 500:
                raise RetryableError(f"SES is not accepting mail right now ({code})") from exc
            raise PermanentFailure(f"SES refused the email ({code})") from exc
        except BotoCoreError as exc:  # connection errors, timeouts
            raise RetryableError(f"SES could not be reached ({type(exc).__name__})") from exc
        return str(response["MessageId"])
