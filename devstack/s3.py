"""S3 on the stack's own port: `/_s3/<bucket>/<key>` is moto's S3 (path style), so a presigned URL a function
makes (its S3 endpoint is `<stack>/_s3`) works from a browser or curl on 127.0.0.1; and the template's bucket
notifications (SAM `Type: S3` events, queue targets, EventBridge) are delivered when an object is created
through it, as S3 would: a function asynchronously (Lambda retries a failed asynchronous invocation twice), a
queue by SendMessage, EventBridge as an `Object Created` event on the default bus.
"""

from __future__ import annotations

import json
import queue
import threading
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .apigw_events import HttpRequest, HttpResponse
from .template import LOCAL_ACCOUNT_ID, LOCAL_REGION, Bucket, Template
from .workers import Invocation

PREFIX = "/_s3"
_ASYNC_RETRIES = 2
# What moto must not see again: hop-by-hop headers, and the length its own answer sets.
_DROPPED = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "host"}


def handles(raw_path: str) -> bool:
    return raw_path == PREFIX or raw_path.startswith(PREFIX + "/")


def endpoint_url(stack_url: str) -> str:
    return stack_url + PREFIX


def create_buckets(s3_client: Any, template: Template) -> list[str]:
    """The template's buckets, with their CORS rules (moto answers browsers' preflights from them).
    Encryption, lifecycle and public access settings have no local meaning; notifications are this
    module's job."""
    existing = {b["Name"] for b in s3_client.list_buckets().get("Buckets", [])}
    for bucket in template.buckets:
        if bucket.name not in existing:
            s3_client.create_bucket(Bucket=bucket.name)
        rules = (bucket.properties.get("CorsConfiguration") or {}).get("CorsRules")
        if rules:
            s3_client.put_bucket_cors(
                Bucket=bucket.name, CORSConfiguration={"CORSRules": [_cors_rule(rule) for rule in rules]}
            )
    return [bucket.name for bucket in template.buckets]


def _cors_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's CorsRule (AllowedHeaders, ExposedHeaders, MaxAge) in S3 API words."""
    out: dict[str, Any] = {
        "AllowedMethods": list(rule["AllowedMethods"]),
        "AllowedOrigins": list(rule["AllowedOrigins"]),
    }
    if "AllowedHeaders" in rule:
        out["AllowedHeaders"] = list(rule["AllowedHeaders"])
    if "ExposedHeaders" in rule:
        out["ExposeHeaders"] = list(rule["ExposedHeaders"])
    if "MaxAge" in rule:
        out["MaxAgeSeconds"] = int(rule["MaxAge"])
    return out


def created_event_name(method: str, query: dict[str, str], headers: dict[str, str]) -> str | None:
    """The S3 event a successful request makes, or None (a part of a multipart upload, a bucket call...)."""
    if method == "PUT" and not ({"partNumber", "uploadId"} & query.keys()) and not _bucket_subresource(query):
        return "ObjectCreated:Copy" if "x-amz-copy-source" in headers else "ObjectCreated:Put"
    if method == "POST" and "uploadId" in query:
        return "ObjectCreated:CompleteMultipartUpload"
    return None


def _is_form(headers: dict[str, str]) -> bool:
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return content_type.split(";")[0].strip().lower() in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    )


def _bucket_subresource(query: dict[str, str]) -> bool:
    # PUT ?tagging, ?acl, ?retention... change an object without creating one.
    return bool({"tagging", "acl", "retention", "legal-hold"} & query.keys())


def s3_event_record(
    bucket: Bucket, key: str, *, event_name: str, size: int, etag: str, source_ip: str
) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": LOCAL_REGION,
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "eventName": event_name,
        "userIdentity": {"principalId": f"AWS:{LOCAL_ACCOUNT_ID}"},
        "requestParameters": {"sourceIPAddress": source_ip},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": "local"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "devstack",
            "bucket": {
                "name": bucket.name,
                "ownerIdentity": {"principalId": LOCAL_ACCOUNT_ID},
                "arn": bucket.arn,
            },
            # S3 sends the key URL-encoded (spaces as "+").
            "object": {
                "key": urllib.parse.quote_plus(key, safe="/"),
                "size": size,
                "eTag": etag.strip('"'),
                "sequencer": f"{int(now.timestamp() * 1_000_000):016X}",
            },
        },
    }


def eventbridge_entry(bucket: Bucket, key: str, *, size: int, etag: str, source_ip: str) -> dict[str, Any]:
    return {
        "Source": "aws.s3",
        "DetailType": "Object Created",
        "Resources": [bucket.arn],
        "Detail": json.dumps(
            {
                "version": "0",
                "bucket": {"name": bucket.name},
                "object": {"key": key, "size": size, "etag": etag.strip('"')},
                "request-id": uuid.uuid4().hex[:16].upper(),
                "requester": LOCAL_ACCOUNT_ID,
                "source-ip-address": source_ip,
                "reason": "PutObject",
            }
        ),
    }


class S3Front:
    """Forwards `/_s3/...` to moto and delivers the bucket notifications of what was created."""

    def __init__(
        self,
        template: Template,
        forward: Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]],
        *,
        invoke: Callable[[str, Any], Invocation],
        sqs: Any,
        events: Any,
        log: Callable[[str], None],
        stop: threading.Event,
    ) -> None:
        self.template = template
        self.forward = forward
        self.invoke_function = invoke
        self.sqs = sqs
        self.events = events
        self.log = log
        self.stop = stop
        self._pending: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.delivered = 0
        self.thread = threading.Thread(target=self._run, name="s3 notifications", daemon=True)

    def start(self) -> S3Front:
        if any(bucket.notifications for bucket in self.template.buckets):
            self.thread.start()
        return self

    def handle(self, request: HttpRequest) -> HttpResponse:
        path = request.raw_path[len(PREFIX) :] or "/"
        target = path + (f"?{request.raw_query}" if request.raw_query else "")
        headers = {k: v for k, v in request.headers if k.lower() not in _DROPPED}
        # Path style against moto: the host names S3, the path the bucket.
        headers["Host"] = "s3.amazonaws.com"
        if request.method.upper() == "PUT" and _is_form(headers):
            # moto's server reads a form-typed body as form fields and stores nothing (curl --data-binary and
            # urllib send that type by default); S3 stores the bytes whatever the type says.
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            headers["Content-Type"] = "application/octet-stream"
        status, answer_headers, payload = self.forward(request.method, target, headers, request.body)
        if 200 <= status < 300:
            self._notify(request, path, {k.lower(): v for k, v in answer_headers.items()})
        kept = [(k, v) for k, v in answer_headers.items() if k.lower() not in _DROPPED]
        return HttpResponse(status, kept, payload)

    def _notify(self, request: HttpRequest, path: str, answer: dict[str, str]) -> None:
        query = request.query_map()
        event_name = created_event_name(request.method.upper(), query, request.header_map())
        bucket_name, _, raw_key = path.lstrip("/").partition("/")
        if event_name is None or not raw_key:
            return
        bucket = next((b for b in self.template.buckets if b.name == bucket_name), None)
        if bucket is None:
            return
        key = urllib.parse.unquote(raw_key)
        size = len(request.body)
        etag = answer.get("etag", "")
        for notification in bucket.notifications:
            if not notification.matches(event_name, key):
                continue
            if notification.eventbridge:
                self._pending.put(
                    (
                        "eventbridge",
                        eventbridge_entry(bucket, key, size=size, etag=etag, source_ip=request.source_ip),
                    )
                )
                continue
            event = {
                "Records": [
                    s3_event_record(
                        bucket, key, event_name=event_name, size=size, etag=etag, source_ip=request.source_ip
                    )
                ]
            }
            if notification.function_logical_id is not None:
                self._pending.put((notification.function_logical_id, event))
            elif notification.queue_arn is not None:
                self._pending.put(("queue:" + notification.queue_arn, event))

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                target, event = self._pending.get(timeout=0.25)
            except queue.Empty:
                continue
            try:
                self._deliver(target, event)
            except Exception as exc:  # keep delivering after a bad one
                self.log(f"[s3] delivery to {target} failed: {exc!r}")

    def _deliver(self, target: str, event: dict[str, Any]) -> None:
        if target == "eventbridge":
            self.events.put_events(Entries=[event])
        elif target.startswith("queue:"):
            url = self.template.queue(target[len("queue:") :]).url
            self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
        else:
            for attempt in range(_ASYNC_RETRIES + 1):
                if self.invoke_function(target, event).ok:
                    break
                if attempt < _ASYNC_RETRIES and self.stop.wait(1.0 * (attempt + 1)):
                    return
            else:
                self.log(f"[s3] notification -> {target} failed after retries; dropped")
                return
        self.delivered += 1
