"""Echoes the event, the context and the environment back; query flags make it misbehave on purpose."""

import base64
import json
import os
import sys
import time

import shared_layer


def lambda_handler(event, context):
    query = event.get("queryStringParameters") or {}
    if "raise" in query:
        raise RuntimeError("asked to fail")
    if "sleep" in query:
        time.sleep(float(query["sleep"]))
    if "exit" in query:
        os._exit(3)
    if "bare" in query:
        return {"bare": True}
    if "malformed" in query:
        return {"statusCode": "teapot"}
    if "binary" in query:
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/octet-stream"},
            "body": base64.b64encode(b"\x00\x01binary").decode(),
            "isBase64Encoded": True,
        }
    print(json.dumps({"level": "INFO", "message": "echo"}))
    body = {
        "event": event,
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
        "env": dict(os.environ),
        "sys_path": sys.path,
        "layer": shared_layer.LAYER_NAME,
        "pid": os.getpid(),
    }
    return {
        "statusCode": 200,
        "headers": {
            "content-type": "application/json",
            "access-control-allow-origin": "https://evil.test",
            "x-request-id": "abc",
        },
        "cookies": ["session=1; Path=/", "theme=dark"],
        "body": json.dumps(body),
    }
