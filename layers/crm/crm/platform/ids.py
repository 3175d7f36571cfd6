"""Record ids: every lead, task, contact, company and deal id is a UUID4, as `new_id` makes it."""

import re
import uuid

ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
RECORD_ID = re.compile(ID_PATTERN)


def new_id() -> str:
    return str(uuid.uuid4())
