"""Where export files go: S3 multipart uploads and presigned download links, behind a small port.

`S3ExportStorage` is the real adapter (the bucket from EXPORTS_BUCKET; locally the endpoint the standard
AWS_ENDPOINT_URL_S3 variable names); `InMemoryExportStorage` keeps S3's multipart rules (a part written
again replaces itself; the upload completes only with every part's current ETag; every part but the last
at least `min_part_bytes`) for unit tests.
"""

import hashlib
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Protocol

from botocore.exceptions import ClientError

from crm.exports.model import UploadedPart
from crm.platform import aws, clock
from crm.platform.errors import PermanentFailure, RetryableError

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
S3_MIN_PART_BYTES = 5 * 1024 * 1024  # every part but the last


class ExportStorage(Protocol):
    def start_upload(self, key: str, file_name: str) -> str:
        """Begin a multipart upload of `key`; its upload id."""

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes | bytearray) -> str:
        """Write (or replace) part `number`; its ETag."""

    def complete_upload(self, key: str, upload_id: str, parts: list[UploadedPart]) -> None:
        """Join the parts into the object (done already: nothing to do)."""

    def download_url(self, key: str, file_name: str, seconds: int) -> str:
        """A presigned GET of the object, good for `seconds`."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3ExportStorage:
    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self._client = client

    @cached_property
    def client(self) -> Any:
        if self._client is not None:
            return self._client
        return aws.s3()

    def _bucket(self) -> str:
        if not self.bucket:
            raise PermanentFailure("EXPORTS_BUCKET is not configured")
        return self.bucket

    def start_upload(self, key: str, file_name: str) -> str:
        try:
            response = self.client.create_multipart_upload(
                Bucket=self._bucket(),
                Key=key,
                ContentType=CSV_CONTENT_TYPE,
                ContentDisposition=f'attachment; filename="{file_name}"',
            )
        except ClientError as exc:
            raise RetryableError("The export file could not be started; try again") from exc
        return str(response["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes | bytearray) -> str:
        try:
            response = self.client.upload_part(
                Bucket=self._bucket(), Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
        except ClientError as exc:
            if _code(exc) == "NoSuchUpload":
                raise PermanentFailure(f"The upload of {key} is gone (aborted or expired)") from exc
            raise RetryableError("A part of the export could not be written; try again") from exc
        return str(response["ETag"])

    def complete_upload(self, key: str, upload_id: str, parts: list[UploadedPart]) -> None:
        try:
            self.client.complete_multipart_upload(
                Bucket=self._bucket(),
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in parts]},
            )
        except ClientError as exc:
            if _code(exc) == "NoSuchUpload" and self._exists(key):
                return  # completed by an earlier attempt that stopped before recording it
            if _code(exc) in ("NoSuchUpload", "InvalidPart", "InvalidPartOrder", "EntityTooSmall"):
                raise PermanentFailure(f"The export file could not be completed ({_code(exc)})") from exc
            raise RetryableError("The export file could not be completed; try again") from exc

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self._bucket(), Key=key)
        except ClientError:
            return False
        return True

    def download_url(self, key: str, file_name: str, seconds: int) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self._bucket(),
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{file_name}"',
                "ResponseContentType": CSV_CONTENT_TYPE,
            },
            ExpiresIn=seconds,
        )
        return url


class InMemoryExportStorage:
    """S3's multipart rules in a dict, for unit tests (and a record of how many times each part was sent)."""

    def __init__(self, min_part_bytes: int = 0) -> None:
        self.min_part_bytes = min_part_bytes
        self.uploads: dict[str, dict[int, tuple[str, bytes]]] = {}
        self.objects: dict[str, bytes] = {}
        self.part_writes = 0

    def start_upload(self, key: str, file_name: str) -> str:
        upload_id = f"upload-{len(self.uploads) + 1}"
        self.uploads[upload_id] = {}
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes | bytearray) -> str:
        if upload_id not in self.uploads:
            raise PermanentFailure("no such upload")
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest() + f"-{self.part_writes}"
        self.uploads[upload_id][number] = (etag, bytes(data))
        self.part_writes += 1
        return etag

    def complete_upload(self, key: str, upload_id: str, parts: list[UploadedPart]) -> None:
        if upload_id not in self.uploads:
            if key in self.objects:
                return
            raise PermanentFailure("no such upload")
        stored = self.uploads[upload_id]
        numbers = [part.number for part in parts]
        if numbers != sorted(set(numbers)):
            raise PermanentFailure("parts out of order")
        chunks = []
        for index, part in enumerate(parts):
            etag, data = stored.get(part.number, ("", b""))
            if etag != part.etag:
                raise PermanentFailure(f"part {part.number}: ETag does not match")
            if index < len(parts) - 1 and len(data) < self.min_part_bytes:
                raise PermanentFailure(f"part {part.number} is too small")
            chunks.append(data)
        self.objects[key] = b"".join(chunks)
        del self.uploads[upload_id]

    def download_url(self, key: str, file_name: str, seconds: int) -> str:
        until = clock.now() + timedelta(seconds=seconds)
        return f"memory://{key}?until={int(until.timestamp())}"


def link_expiry(now: datetime, seconds: int) -> datetime:
    return now + timedelta(seconds=seconds)
