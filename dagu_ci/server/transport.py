"""One HTTP exchange with a wall-clock limit and a size cap.

requests has only per-read socket timeouts, so a server that trickles a byte a second
(or a name lookup that stalls) holds a request for ever. Here the request runs in a
worker thread and the caller waits for it no longer than its limit. The caller is the
main thread, so SIGINT/SIGTERM still reach it while it waits: the handler's exception
interrupts the wait, and the worker is cut loose. The worker reads the body itself, in
chunks, and gives up once it passes its cap, so an answer never costs more than that.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Optional

import requests

from dagu_ci.cancel import raise_if_lost

CHUNK = 64 * 1024
THREAD_PREFIX = "dagu-ci-"  # names of the threads that talk to the server (requests, events stream)


class TooSlow(Exception):
    """No complete answer within the limit."""


class TooLarge(Exception):
    """The answer is larger than its cap."""


class CutShort(Exception):
    """The status and headers came, the body did not (cut, broken chunk, bad encoding)."""

    def __init__(self, cause: BaseException):
        super().__init__(type(cause).__name__)
        self.cause = cause


class _Exchange:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.response: Optional[requests.Response] = None
        self.error: Optional[BaseException] = None
        self._lock = threading.Lock()
        self._abandoned = False

    def hold(self, response: requests.Response) -> bool:
        """Keep the response, so that abandoning can cut it; False if already abandoned."""
        with self._lock:
            self.response = response
            return not self._abandoned

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            response = self.response
        _cut(response)


def fetch(
    session: requests.Session, method: str, url: str, *, limit: float, cap: int, **options: Any
) -> requests.Response:
    """session.request(method, url, **options), body read, within `limit` seconds.

    Raises TooSlow, TooLarge, CutShort, or what requests raised before the answer began;
    Cancelled for a cancel whose own exception was lost (retries must not keep it waiting).
    """
    raise_if_lost()
    exchange = _Exchange()
    worker = threading.Thread(
        target=_work, args=(exchange, session, method, url, cap, options), name=f"{THREAD_PREFIX}http", daemon=True
    )
    worker.start()
    finished = False
    try:
        finished = exchange.done.wait(limit)
    finally:  # also when a signal's exception interrupted the wait
        if not finished:
            exchange.abandon()
    if not finished:
        raise TooSlow()
    if exchange.error is not None:
        raise exchange.error
    assert exchange.response is not None
    return exchange.response


def _work(exchange: _Exchange, session: requests.Session, method: str, url: str, cap: int, options: Any) -> None:
    try:
        response = session.request(method, url, stream=True, **options)
        if not exchange.hold(response):
            _cut(response)
            return
        try:
            body = _read(response, cap)
        except TooLarge:
            response.close()
            raise
        except (requests.exceptions.RequestException, OSError) as exc:
            response.close()
            raise CutShort(exc) from None
        # requests' own cache of the body: .content, .text and .json() read it from here.
        response._content = body  # noqa: SLF001
        response._content_consumed = True  # type: ignore[attr-defined]  # noqa: SLF001 - not in requests' stubs
    except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
        exchange.error = exc
    finally:
        exchange.done.set()


def _read(response: requests.Response, cap: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap:
        raise TooLarge()
    chunks = []
    size = 0
    for chunk in response.iter_content(CHUNK):  # decoded: a gzip bomb counts at its real size
        size += len(chunk)
        if size > cap:
            raise TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _cut(response: Optional[requests.Response]) -> None:
    """Unblock a read in progress: shut the socket down (close() alone would wait for it)."""
    if response is None:
        return
    sock = socket_of(response)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def socket_of(response: requests.Response) -> Optional[socket.socket]:
    """The socket under a streamed response. A keep-alive response still holds its pool
    connection; one that will close has been let go by it (http.client drops the
    connection's `sock` then), and is reachable only through the response's file."""
    raw = getattr(response, "raw", None)
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is None:
        fileobj = getattr(getattr(raw, "_fp", None), "fp", None)  # http.client's socket file
        sock = getattr(getattr(fileobj, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None
