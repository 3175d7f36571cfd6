"""Where import files live: presigned upload and download links, a ranged read of the upload, the rejects
file; behind a small port. `S3ImportStorage` is the real adapter (the bucket from IMPORTS_BUCKET; locally
the endpoint AWS_ENDPOINT_URL_S3 names, the stack's own port); `InMemoryImportStorage` is for tests.
"""

from collections.abc import Iterator
from functools import cached_property
from typing import IO, Any, Protocol

from botocore.exceptions import ClientError

from crm.platform import aws
from crm.platform.errors import PermanentFailure, RetryableError

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
READ_CHUNK_BYTES = 64 * 1024


class ImportStorage(Protocol):
    def upload_url(self, key: str, seconds: int) -> str:
        """A presigned PUT of `key`, good for `seconds`."""

    def download_url(self, key: str, file_name: str, seconds: int) -> str:
        """A presigned GET of `key`, good for `seconds`."""

    def read_from(self, key: str, offset: int) -> Iterator[bytes]:
        """The object's bytes from `offset` to its end, a chunk at a time (nothing when offset is the end)."""

    def put_file(self, key: str, file: IO[bytes], file_name: str) -> None:
        """Write `file` (read from its current position) as the object `key`."""


class S3ImportStorage:
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
            raise PermanentFailure("IMPORTS_BUCKET is not configured")
        return self.bucket

    def upload_url(self, key: str, seconds: int) -> str:
        url: str = self.client.generate_presigned_url(
            "put_object", Params={"Bucket": self._bucket(), "Key": key}, ExpiresIn=seconds
        )
        return url

    def download_url(self, key: str, file_name: str, seconds: int) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self._bucket(),
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{file_name}"',
            },
            ExpiresIn=seconds,
        )
        return url

    def read_from(self, key: str, offset: int) -> Iterator[bytes]:
        try:
            response = self.client.get_object(Bucket=self._bucket(), Key=key, Range=f"bytes={offset}-")
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "InvalidRange":  # the offset is the end of the file: nothing left
                return
            if code in ("NoSuchKey", "404"):
                raise PermanentFailure("The uploaded file is gone") from exc
            raise RetryableError("The uploaded file could not be read; try again") from exc
        body = response["Body"]
        try:
            yield from body.iter_chunks(READ_CHUNK_BYTES)
        finally:
            body.close()

    def put_file(self, key: str, file: IO[bytes], file_name: str) -> None:
        try:
            self.client.upload_fileobj(
                file,
                self._bucket(),
                key,
                ExtraArgs={
                    "ContentType": CSV_CONTENT_TYPE,
                    "ContentDisposition": f'attachment; filename="{file_name}"',
                },
            )
        except ClientError as exc:
            raise RetryableError("The rejected rows could not be written; try again") from exc


class InMemoryImportStorage:
    """Objects in a dict; links are `memory://` URLs. `reads` counts ranged reads (tests of resuming)."""

    def __init__(self, read_chunk_bytes: int = READ_CHUNK_BYTES) -> None:
        self.objects: dict[str, bytes] = {}
        self.read_chunk_bytes = read_chunk_bytes
        self.reads: list[tuple[str, int]] = []

    def upload_url(self, key: str, seconds: int) -> str:
        return f"memory://put/{key}?expires={seconds}"

    def download_url(self, key: str, file_name: str, seconds: int) -> str:
        return f"memory://get/{key}?expires={seconds}"

    def read_from(self, key: str, offset: int) -> Iterator[bytes]:
        if key not in self.objects:
            raise PermanentFailure("The uploaded file is gone")
        self.reads.append((key, offset))
        data = self.objects[key]
        for start in range(offset, len(data), self.read_chunk_bytes):
            yield data[start : start + self.read_chunk_bytes]

    def put_file(self, key: str, file: IO[bytes], file_name: str) -> None:
        self.objects[key] = file.read()
