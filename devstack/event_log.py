"""The last events published to the template's custom buses, for `/_local/events`.

moto keeps no record of what `put_events` received, so every custom bus gets one local-only rule (all its
events) targeting a private queue; the page drains that queue into a ring of the last `KEEP` events. In AWS
the same view is an archive or a rule of your own on the bus (docs/integrations.md).
"""

from __future__ import annotations

import collections
import json
import threading
from typing import Any

from botocore.exceptions import ClientError

from .template import Template, local_name

KEEP = 500


class EventLog:
    def __init__(self, events: Any, sqs: Any, template: Template) -> None:
        self.sqs = sqs
        self.queues: list[str] = []
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=KEEP)
        self.lock = threading.Lock()
        for bus in template.event_buses:
            name = local_name(f"local-event-log-{bus}")[:64]
            url = sqs.create_queue(QueueName=name[:80])["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            try:
                events.put_rule(
                    Name=name, EventBusName=bus, EventPattern=json.dumps({"source": [{"prefix": ""}]})
                )
            except ClientError:
                events.put_rule(
                    Name=name, EventBusName=bus, EventPattern=json.dumps({"source": ["leadflow"]})
                )
            events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "local-event-log", "Arn": arn}])
            self.queues.append(url)

    def last(self, count: int = 100) -> list[dict[str, Any]]:
        """The last `count` events published (oldest first), as a rule target receives them."""
        with self.lock:
            for url in self.queues:
                while True:
                    messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                        "Messages", []
                    )
                    if not messages:
                        break
                    for message in messages:
                        self.recent.append(json.loads(message["Body"]))
                        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            return list(self.recent)[-count:] if count > 0 else []
