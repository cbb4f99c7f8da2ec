"""HTTP plumbing: a threaded server that can drop its socket, replies, Go-style JSON."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

HANG_AT_MOST = 600.0  # a hanging answer ends by then even if the fake is never stopped

SPA_HTML = (
    b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Dagu</title></head>'
    b'<body><div id="root"></div><script src="/assets/bundle.js"></script></body></html>\n'
)


def go_json(value: Any) -> bytes:
    """encoding/json's Encoder: compact, HTML-escaped, newline-terminated."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text.encode("utf-8") + b"\n"


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: List[Tuple[str, str]] = field(default_factory=list)
    drop: bool = False  # close the connection without answering
    # Faulty deliveries (fault injection; see FakeDagu.fault):
    hang: bool = False  # read the request, then never answer (until the fake stops)
    trickle: float = 0.0  # send the body one byte every this many seconds
    cut: Optional[str] = None  # "length": half the promised body, then close; "chunked": a broken chunk

    @classmethod
    def json(cls, status: int, value: Any) -> "Reply":
        return cls(status, go_json(value), [("Content-Type", "application/json")])

    @classmethod
    def error(cls, status: int, code: str, message: str) -> "Reply":
        return cls.json(status, {"code": code, "message": message})

    @classmethod
    def empty(cls, status: int = 200) -> "Reply":
        return cls(status)

    @classmethod
    def html(cls) -> "Reply":
        return cls(200, SPA_HTML, [("Content-Type", "text/html; charset=utf-8")])

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> "Reply":
        return cls(status, text.encode("utf-8"), [("Content-Type", content_type)])


@dataclass
class Incoming:
    method: str
    target: str  # path and query exactly as sent
    headers: Dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], handle: Callable[["_Handler"], None]):
        self.handle_request_fn = handle
        self.connections: Set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.stopping = threading.Event()  # ends hanging and trickling answers
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), which can stall on DNS; skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self.connections_lock:
            open_sockets = list(self.connections)
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like Go's net/http
    server_version = "fakedagu"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # Go sets TCP_NODELAY; without it headers and body in separate writes stall ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _dispatch(self) -> None:
        self.server.handle_request_fn(self)  # type: ignore[attr-defined]

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def incoming(self) -> Incoming:
        headers = {k.lower(): v for k, v in self.headers.items()}
        return Incoming(self.command, self.path, headers, self.read_body())

    def send(self, reply: Reply) -> int:
        if reply.hang:
            self.close_connection = True
            self.server.stopping.wait(HANG_AT_MOST)  # type: ignore[attr-defined]
            return 0
        if reply.drop:
            self._hang_up()
            return 0
        try:
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            if reply.cut == "chunked":
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if reply.cut or reply.trickle:
                return self._send_faulty(reply)
            if reply.body and self.command != "HEAD":
                self.wfile.write(reply.body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            return 0
        return len(reply.body)

    def _send_faulty(self, reply: Reply) -> int:
        half = reply.body[: len(reply.body) // 2]
        if reply.cut == "length":  # fewer bytes than Content-Length said: IncompleteRead
            self.wfile.write(half)
        elif reply.cut == "chunked":  # a whole chunk, then one that promises more than it has
            self.wfile.write(b"%x\r\n%s\r\n" % (len(half), half))
            self.wfile.write(b"%x\r\n%s" % (len(reply.body), reply.body[len(half) :][:10]))
        else:  # trickle: a live but useless connection
            stopping = self.server.stopping  # type: ignore[attr-defined]
            for index in range(len(reply.body)):
                self.wfile.write(reply.body[index : index + 1])
                self.wfile.flush()
                if stopping.wait(reply.trickle):
                    break
            else:
                return len(reply.body)
        self.wfile.flush()
        self._hang_up()
        return len(half)

    def _hang_up(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by design
        return


class Listener:
    """A server on a fixed host and port that can stop listening and listen again."""

    def __init__(self, host: str, port: int, handle: Callable[[_Handler], None], tls: Optional[Any] = None):
        self.host = host
        self.port = port
        self.tls = tls  # an ssl.SSLContext: serve HTTPS (with client-certificate checks if it asks)
        self._handle = handle
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    @property
    def listening(self) -> bool:
        return self._server is not None

    def open(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            server = _Server((self.host, self.port), self._handle)
            if self.tls is not None:
                server.socket = self.tls.wrap_socket(server.socket, server_side=True)
            self.port = server.server_port
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fakedagu-http", daemon=True
            )
            thread.start()
            self._server, self._thread = server, thread

    def close(self) -> None:
        """Stop accepting, close the listening socket and cut open connections."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if thread is not None:
            thread.join(2.0)
