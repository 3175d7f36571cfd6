"""The webhook sender: an HTTP POST that resolves the host at send time and connects only to the address it
checked (no private, loopback or link-local address in AWS; a DNS answer cannot change between the check
and the connection), with a timeout, no redirects followed, and the answer's body discarded."""

import http.client
import socket
import ssl
import time
from urllib.parse import urlsplit

from crm.integrations.webhooks import Attempt, is_loopback_url, is_public_address

TIMEOUT_SECONDS = 10.0


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class GuardedHttpSender:
    def __init__(self, *, allow_loopback: bool, timeout: float = TIMEOUT_SECONDS) -> None:
        self.allow_loopback = allow_loopback
        self.timeout = timeout

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt:
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        parts = urlsplit(url)
        host = parts.hostname or ""
        loopback = self.allow_loopback and is_loopback_url(url)
        if parts.scheme != "https" and not loopback:
            return Attempt(None, elapsed(), "refused: only https URLs", permanent=True)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            return Attempt(None, elapsed(), "the host name does not resolve")
        addresses = [str(info[4][0]) for info in infos]
        if not loopback and not all(is_public_address(address) for address in addresses):
            # Permanent: retrying would not make a private address public (and must not probe it).
            message = "refused: the host resolves to a private, loopback or link-local address"
            return Attempt(None, elapsed(), message, permanent=True)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection_type = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
        connection = connection_type(host, port, addresses[0], self.timeout)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read(65536)
            retry_after = _retry_after(response.getheader("Retry-After"))
            return Attempt(response.status, elapsed(), None, retry_after)
        except TimeoutError:
            return Attempt(None, elapsed(), "timed out")
        except (OSError, http.client.HTTPException) as exc:
            return Attempt(None, elapsed(), f"connection failed: {type(exc).__name__}")
        finally:
            connection.close()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, moment.timestamp() - time.time())
