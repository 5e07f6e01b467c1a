"""etcd v3's JSON gateway over HTTP(S): the one place that talks to etcd.

Plain HTTP with urllib3 (imported when a store is opened, never at start-up):
each call is one POST of a JSON body to `/v3/...` and one JSON reply; keys and
values travel base64-encoded and 64-bit integers as strings, as the gateway
spells them. The store's endpoints are tried in order and the first that
answers is kept. Every failure to get an answer (refused, timed out, TLS, an
error status) is a `GatewayError` with a short reason; `store.py` turns it
into `StoreUnavailable` naming the store.

Why urllib3 and not an etcd client library: docs/performance.md, "Cluster
store client".
"""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .records import StoreConfig

if TYPE_CHECKING:
    import urllib3

CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0


class GatewayError(Exception):
    """No answer from any endpoint, or an error answer; `reason` is one short line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TlsFilesError(Exception):
    """A `--store-ca`/`--store-cert`/`--store-key` file cannot be used (the user's to fix)."""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def prefix_end(prefix: str) -> str:
    """The range end that makes [prefix, end) every key starting with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _reason(exc: BaseException) -> str:
    """The root cause of a urllib3 failure as a short phrase (no object reprs)."""
    seen: BaseException | None = exc
    for _ in range(16):  # a chain of causes is short; never follow one forever
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS: certificate verify failed ({seen.verify_message})"
        if isinstance(seen, ssl.SSLError):
            return f"TLS: {seen.reason or seen}"
        if isinstance(seen, TimeoutError) or type(seen).__name__.endswith("TimeoutError"):
            return "timed out"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        nested = getattr(seen, "reason", None)
        seen = nested if isinstance(nested, BaseException) else seen.__cause__ or seen.__context__
    text = str(exc)
    return text.split(": ", 1)[-1] if "object at 0x" in text else text


def _tls_context(config: StoreConfig) -> ssl.SSLContext:
    """Verify the store against `ca` only (a private CA, not the system's); present `cert`."""
    option = f"--store-ca {config.ca}"
    try:
        context = ssl.create_default_context(cafile=config.ca)
        if config.cert:
            option = f"--store-cert {config.cert} --store-key {config.key}"
            context.load_cert_chain(config.cert, config.key)
    except (OSError, ssl.SSLError) as exc:
        if isinstance(exc, ssl.SSLError):
            what = f"not a usable PEM file ({exc.reason or 'unreadable'})"
        else:
            what = (exc.strerror or str(exc)).lower()
        raise TlsFilesError(f"{option}: {what}") from None
    return context


class Gateway:
    """A connection pool to the store's endpoints (thread-safe: urllib3's is)."""

    def __init__(self, config: StoreConfig) -> None:
        import urllib3  # lazily: `cnm --version` and `validate` never load it

        self.config = config
        self.scheme = "https" if config.tls else "http"
        kwargs: dict[str, Any] = {}
        if config.tls:
            kwargs["ssl_context"] = _tls_context(config)
        self._urllib3 = urllib3
        self.pool = urllib3.PoolManager(
            num_pools=len(config.endpoints), maxsize=4,
            retries=urllib3.Retry(total=0, redirect=0),
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT), **kwargs)
        self.current = 0  # index of the endpoint that answered last

    def _url(self, index: int, path: str) -> str:
        return f"{self.scheme}://{self.config.endpoints[index]}/v3/{path}"

    def _order(self) -> list[int]:
        count = len(self.config.endpoints)
        return [(self.current + i) % count for i in range(count)]

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST `body` to `/v3/<path>`; the decoded reply, or `GatewayError`."""
        data = json.dumps(body).encode()
        reason = "no endpoint"
        for index in self._order():
            try:
                response = self.pool.request(
                    "POST", self._url(index, path), body=data,
                    headers={"Content-Type": "application/json"})
            except (self._urllib3.exceptions.HTTPError, OSError) as exc:
                reason = _reason(exc)
                continue
            self.current = index
            return self._decode(response.status, response.data)
        raise GatewayError(reason)

    @staticmethod
    def _decode(status: int, data: bytes) -> dict[str, Any]:
        try:
            reply = json.loads(data) if data else {}
        except ValueError:
            raise GatewayError(f"HTTP {status}: not JSON") from None
        if status != 200 or not isinstance(reply, dict):
            message = reply.get("message") or reply.get("error") if isinstance(reply, dict) else ""
            raise GatewayError(f"HTTP {status}: {message or 'error'}")
        return reply

    def stream(self, path: str, body: dict[str, Any],
               read_timeout: float | None = None) -> Stream:
        """POST to a streaming endpoint (watch, lease keep-alive), the reply as a `Stream`.

        `read_timeout` None waits for the next line as long as it takes (watch).
        """
        data = json.dumps(body).encode()
        reason = "no endpoint"
        timeout = self._urllib3.Timeout(connect=CONNECT_TIMEOUT, read=read_timeout)
        for index in self._order():
            try:
                response = self.pool.request(
                    "POST", self._url(index, path), body=data, preload_content=False,
                    headers={"Content-Type": "application/json"}, timeout=timeout)
            except (self._urllib3.exceptions.HTTPError, OSError) as exc:
                reason = _reason(exc)
                continue
            self.current = index
            if response.status != 200:
                payload = response.read()
                response.release_conn()
                self._decode(response.status, payload)
            return Stream(response, self._urllib3.exceptions.HTTPError)
        raise GatewayError(reason)

    def close(self) -> None:
        self.pool.clear()


class Stream:
    """A streaming reply: one JSON object per line; `shutdown()` from another thread ends it."""

    def __init__(self, response: urllib3.BaseHTTPResponse, http_error: type[Exception]) -> None:
        self.response = response
        self._http_error = http_error

    def lines(self) -> Iterator[dict[str, Any]]:
        """Each reply line decoded, until the server or `shutdown()` ends the stream."""
        buffer = b""
        try:
            for chunk in self.response.stream(None, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
            if buffer.strip():
                yield json.loads(buffer)
        except (self._http_error, OSError, ValueError) as exc:
            raise GatewayError(_reason(exc)) from None
        finally:
            self.response.close()

    def shutdown(self) -> None:
        """Wake a thread blocked reading this stream (closing alone would not) and end it."""
        with contextlib.suppress(ValueError, OSError):  # already ended: nothing to wake
            self.response.shutdown()
        self.response.close()
