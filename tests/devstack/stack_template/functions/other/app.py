"""Has the same module name as EchoFunction's app.py, to prove the functions cannot see each other."""

import json
import os


def lambda_handler(event, context):
    return {
        "statusCode": 200,
        "body": json.dumps({"function": "other", "only_echo": os.environ.get("ONLY_ECHO")}),
    }
