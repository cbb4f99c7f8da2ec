"""The multiplexed events stream of Dagu >= 2.3.0 (API.md §8.2).

    GET  {api}/events/stream?topic=dagrun:{name}/{id}[&topic=…][&topics=a,b][&lastEventId=N]
    POST {api}/events/stream/topics   {"sessionID","add":[…],"remove":[…]}

Frames, as `multiplex.go: writeFrame` writes them:

    event: control            (first, once)
    data: {"sessionID":…,"subscribed":[…],"errors":[…]}

    id: 17                    (a change of one topic's snapshot)
    event: message
    data: {"topic":"dagrun:deploy/r1","payload":{"dagRunDetails":{…same as REST…}}}

    : heartbeat               (every `heartbeat` seconds)

Freshness is modelled on the real server, because it decides how soon a client
can learn that a run ended:

* `dagrun` topics are on-demand. Every persisted status write (run or node)
  lands in Dagu's event store, and `StartDAGRunEventInvalidation` reads that
  store on a fixed 1 s ticker and wakes the matching topics. So a change reaches
  subscribers 0–1 s after it is persisted, depending on the ticker's phase. Here
  one ticker (phase: when the hub was made) re-renders each subscribed run and
  pushes it when its snapshot differs from the last one pushed. `invalidation=0`
  pushes on every engine change instead (an idealised server, for comparisons);
  `invalidation=None` ticks only when a test calls `tick()` (no race with the ticker).
* `steplog` topics are polled by the server, adaptively between 1 s and 10 s,
  and sent when the tail-1000 snapshot changes.
* A topic whose run does not exist yet sends nothing until it does.

* `subdagrun:{root}/{rootId}/{subId}` topics (2.4.2+) are on-demand like
  `dagrun`: a sub-run's status writes wake them (`dagrun_invalidator.go`), and the
  payload is the sub-run's details (`GetSubDAGRunDetailsData`). Before 2.4.2 they
  are accepted and send nothing.

Other valid topic types (`dagrunlogs`, `dag`, `queues`, …) are accepted and never
send anything; nothing in dagu-ci uses them. Not modelled:
the 30 s slow-client drop and the 1000-client limit.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs

from . import render
from .engine import Engine
from .logs import estimate_line_count
from .transport import Incoming, Reply, go_json
from .versions import ServerVersion

MAX_TOPICS = 20  # sse.max_topics_per_connection
# How the body is delimited. Go's server chunks a body of unknown length; a reverse proxy may
# hand it on close-delimited instead (HTTP/1.1 `Connection: close`, no Transfer-Encoding).
FRAMINGS = ("chunked", "close")
STEPLOG_TAIL = 1000  # getStepLogData reads Tail: 1000
STEPLOG_MIN, STEPLOG_MAX = 1.0, 10.0  # the server's adaptive steplog poll
TOPIC_TYPES = {
    "dagrun": 2,
    "subdagrun": 3,
    "steplog": 3,
    "dagrunlogs": 2,  # identifier parts; 0 = any
    "dag": 0,
    "daghistory": 0,
    "dagruns": 0,
    "queues": 0,
    "queueitems": 0,
    "dagslist": 0,
    "doc": 0,
    "doctree": 0,
}

Authorize = Callable[[Dict[str, str]], Optional[Reply]]  # None when allowed, else the 401
Record = Callable[[int, int, bytes, bool], Any]  # (status, bytes, response, stream) -> a RequestRecord


def supported(version: ServerVersion) -> bool:
    return version.flavor == "v2x" and version.at_least(2, 3, 0)


def frame_json(value: Any) -> str:
    return go_json(value).decode("utf-8").rstrip("\n")  # json.Marshal: no trailing newline


@dataclass
class Snapshot:
    """A topic's latest payload and the event id of its last change."""

    data: str
    event_id: int


@dataclass
class Session:
    session_id: str
    topics: List[str]
    frames: "queue.Queue[Optional[bytes]]" = field(default_factory=queue.Queue)
    sent: Dict[str, int] = field(default_factory=dict)  # topic -> event id last sent
    connection: Optional[socket.socket] = None
    closed: bool = False

    def close(self) -> None:
        self.closed = True
        self.frames.put(None)
        if self.connection is not None:
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@dataclass
class StepLogPoll:
    due: float = 0.0
    interval: float = STEPLOG_MIN


class EventHub:
    def __init__(
        self,
        version: ServerVersion,
        engine: Engine,
        api_prefix: str,
        invalidation: Optional[float],
        heartbeat: float,
        framing: str = "chunked",
    ):
        if framing not in FRAMINGS:
            raise ValueError(f"framing is one of {FRAMINGS}")
        self.v = version
        self.framing = framing
        self.engine = engine
        self.stream_path = api_prefix + "/events/stream"
        self.invalidation = invalidation
        self.heartbeat = heartbeat
        self.pushes = 0  # message frames queued, all sessions
        self._sessions: Dict[str, Session] = {}
        self._snapshots: Dict[str, Snapshot] = {}
        self._steplog_polls: Dict[str, StepLogPoll] = {}
        self._event_id = 0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._epoch = time.monotonic()  # the ticker's phase
        self._ticker: Optional[threading.Thread] = None
        self._frames_free = threading.Event()  # cleared by hold_frames(): frames wait, in order
        self._frames_free.set()

    # -- routing ------------------------------------------------------------------
    def handles(self, method: str, path: str) -> bool:
        return (method, path) in (("GET", self.stream_path), ("POST", self.stream_path + "/topics"))

    def serve(
        self, handler: Any, incoming: Incoming, path: str, query_string: str, authorize: Authorize, record: Record
    ) -> None:
        """Answer one request on `handler` (transport._Handler), recording it via `record`."""
        query = parse_qs(query_string, keep_blank_values=True)
        headers = dict(incoming.headers)
        token = (query.get("token") or [""])[0]
        if token and "authorization" not in headers:  # auth.QueryTokenMiddleware
            headers["authorization"] = f"Bearer {token}"
        denied = authorize(headers)
        if denied is not None:
            reply = denied
        elif incoming.method == "POST":
            reply = self._change_topics(incoming.body)
        else:
            self._stream(handler, query, headers, record)
            return
        sent = handler.send(reply)
        record(reply.status, sent, reply.body, False)

    @property
    def open_sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def drop_all(self) -> None:
        """Cut every open stream mid-flight (no terminating chunk), as a crash or proxy would."""
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            session.close()

    def close(self) -> None:
        self._stop.set()
        self.drop_all()

    # -- one stream ---------------------------------------------------------------
    def _stream(self, handler: Any, query: Dict[str, List[str]], headers: Dict[str, str], record: Record) -> None:
        wanted: List[str] = list(query.get("topic", []))
        for value in query.get("topics", []):
            wanted += [t.strip() for t in value.split(",") if t.strip()]
        last_id = _int((query.get("lastEventId") or [headers.get("last-event-id", "")])[0])
        session = Session(uuid.uuid4().hex, [])
        session.connection = handler.connection
        subscribed, errors = self._validate(wanted, [])
        session.topics = subscribed
        session.frames.put(
            _frame("control", frame_json({"sessionID": session.session_id, "subscribed": subscribed, "errors": errors}))
        )
        with self._lock:
            self._sessions[session.session_id] = session
        self._ensure_ticker()
        self._initial(session, subscribed, last_id)

        handler.close_connection = True
        entry = record(200, 0, b"", True)
        began = time.monotonic()
        try:
            handler.send_response(200)
            chunked = self.framing == "chunked"
            delimiting = (
                (("Connection", "keep-alive"), ("Transfer-Encoding", "chunked"))
                if chunked
                else (("Connection", "close"),)
            )
            for name, value in (
                ("Content-Type", "text/event-stream"),
                ("Cache-Control", "no-cache"),
                ("X-Accel-Buffering", "no"),
                *delimiting,
            ):
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.flush()
            next_beat = time.monotonic() + self.heartbeat
            while not session.closed and not self._stop.is_set():
                try:
                    data = session.frames.get(timeout=max(0.0, next_beat - time.monotonic()))
                except queue.Empty:
                    data, next_beat = b": heartbeat\n\n", time.monotonic() + self.heartbeat
                if data is None:
                    break
                while not self._frames_free.wait(0.05):
                    if session.closed or self._stop.is_set():
                        break
                # Go's ResponseWriter chunks a body of unknown length; each flush is one chunk.
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                handler.wfile.flush()
                entry.bytes_out += len(data)
                entry.response += data
                entry.duration = time.monotonic() - began
        except OSError:
            pass
        finally:
            with self._lock:
                self._sessions.pop(session.session_id, None)
            entry.duration = time.monotonic() - began

    def _initial(self, session: Session, topics: List[str], last_id: Optional[int]) -> None:
        """On subscribe: each topic's current snapshot (a topic with no data sends nothing)."""
        for topic in topics:
            payload = self._fetch(topic)
            if payload is None:
                continue
            snap = self._store(topic, payload)
            if last_id is not None and snap.event_id <= last_id:
                session.sent[topic] = snap.event_id  # resume: unchanged since the client's last id
                continue
            self._deliver(topic, snap, [session])

    def _validate(self, add: List[str], current: List[str]) -> Tuple[List[str], List[Dict[str, str]]]:
        subscribed = list(current)
        errors: List[Dict[str, str]] = []
        for topic in add:
            kind, _, ident = topic.partition(":")
            parts = TOPIC_TYPES.get(kind)
            if parts is None or not ident or (parts and len(ident.split("?")[0].split("/")) != parts):
                errors.append({"topic": topic, "code": "invalid_topic", "message": f"invalid topic: {topic}"})
            elif topic in subscribed:
                continue
            elif len(subscribed) >= MAX_TOPICS:
                errors.append(
                    {
                        "topic": topic,
                        "code": "too_many_topics",
                        "message": f"at most {MAX_TOPICS} topics per connection",
                    }
                )
            else:
                subscribed.append(topic)
        return subscribed, errors

    def _change_topics(self, body: bytes) -> Reply:
        try:
            request = json.loads(body.decode("utf-8") or "null")
            if not isinstance(request, dict):
                raise ValueError
            add = [str(t) for t in request.get("add") or []]
            remove = {str(t) for t in request.get("remove") or []}
        except (ValueError, TypeError, AttributeError):
            return Reply.json(400, {"error": "invalid_request", "message": "invalid request body"})
        with self._lock:
            session = self._sessions.get(str(request.get("sessionID") or ""))
            if session is None:
                return Reply.json(404, {"error": "unknown_session", "message": "session not found"})
            kept = [t for t in session.topics if t not in remove]
            subscribed, errors = self._validate(add, kept)
            new = [t for t in subscribed if t not in session.topics]
            session.topics = subscribed
        self._initial(session, new, None)
        return Reply.json(200, {"subscribed": subscribed, "errors": errors})

    # -- the invalidation ticker --------------------------------------------------
    def _ensure_ticker(self) -> None:
        with self._lock:
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick_loop, name="fakedagu-sse", daemon=True)
                self._ticker.start()

    def hold_frames(self) -> None:
        """Frames queue up unsent until release_frames(): a slow proxy or a client's busy
        reader, so a push can arrive after the client has polled something newer."""
        self._frames_free.clear()

    def release_frames(self) -> None:
        self._frames_free.set()

    def tick(self) -> None:
        """One invalidation tick now: push what changed since the last one."""
        self._tick(time.monotonic())

    def _tick_loop(self) -> None:
        while not self._stop.is_set():
            if self.invalidation is None:
                return  # ticks come from tick() only
            if self.invalidation > 0:
                # A fixed-phase ticker, like time.NewTicker in StartDAGRunEventInvalidation.
                elapsed = time.monotonic() - self._epoch
                wait = self.invalidation - (elapsed % self.invalidation)
                if self._stop.wait(wait):
                    return
            else:
                with self.engine.changed:
                    self.engine.changed.wait(0.05)
            try:
                self._tick(time.monotonic())
            except Exception:  # noqa: BLE001 - a bug here must not kill the ticker
                pass

    def _tick(self, now: float) -> None:
        with self._lock:
            sessions = [s for s in self._sessions.values() if not s.closed]
        topics = {t for s in sessions for t in s.topics}
        for topic in sorted(topics):
            kind = topic.partition(":")[0]
            if kind == "steplog":
                poll = self._steplog_polls.setdefault(topic, StepLogPoll())
                if poll.due > now:
                    continue
            elif kind not in ("dagrun", "subdagrun"):
                continue
            payload = self._fetch(topic)
            if payload is None:
                continue
            before = self._snapshots.get(topic)
            snap = self._store(topic, payload)
            if kind == "steplog":
                changed = before is None or before.event_id != snap.event_id
                poll.interval = STEPLOG_MIN if changed else min(poll.interval * 2, STEPLOG_MAX)
                poll.due = now + poll.interval
            self._deliver(topic, snap, [s for s in sessions if topic in s.topics])

    # -- snapshots ----------------------------------------------------------------
    def _store(self, topic: str, payload: Dict[str, Any]) -> Snapshot:
        data = frame_json({"topic": topic, "payload": payload})
        with self._lock:
            snap = self._snapshots.get(topic)
            if snap is None or snap.data != data:
                self._event_id += 1  # a global counter per server process
                snap = self._snapshots[topic] = Snapshot(data, self._event_id)
            return snap

    def _deliver(self, topic: str, snap: Snapshot, sessions: List[Session]) -> None:
        for session in sessions:
            with self._lock:
                if session.closed or session.sent.get(topic, 0) >= snap.event_id:
                    continue
                session.sent[topic] = snap.event_id
                self.pushes += 1
            session.frames.put(f"id: {snap.event_id}\nevent: message\ndata: {snap.data}\n\n".encode())

    def _fetch(self, topic: str) -> Optional[Dict[str, Any]]:
        kind, _, ident = topic.partition(":")
        parts = ident.split("/")
        if kind == "dagrun":
            with self.engine.lock:
                run = self.engine.find(parts[0], parts[1])
                if run is None:
                    return None  # a failed fetch sends nothing yet
                return {"dagRunDetails": render.run_details(self.v, run)}
        if kind == "subdagrun" and self.v.at_least(2, 4, 2):
            with self.engine.lock:
                root = self.engine.find(parts[0], parts[1])
                child = root.sub_runs.get(parts[2]) if root is not None else None
                if child is None:
                    return None  # no record yet: nothing sent until there is
                return {"dagRunDetails": render.run_details(self.v, child)}
        if kind == "steplog":
            with self.engine.lock:
                run = self.engine.find(parts[0], parts[1])
                node = run.attempt.node(parts[2]) if run is not None else None
                paths = (node.stdout, node.stderr) if node is not None else ("", "")
            if not paths[0]:
                return None
            try:
                out, count, total, more = _tail(paths[0], STEPLOG_TAIL)
                err = _tail(paths[1], STEPLOG_TAIL)[0] if paths[1] and paths[1] != paths[0] else ""
            except OSError:
                return None
            return {
                "stdoutContent": out,
                "stderrContent": err,
                "lineCount": count,
                "totalLines": total,
                "hasMore": more,
            }
        return None


def _frame(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()


def _int(text: str) -> Optional[int]:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _tail(path: str, n: int) -> Tuple[str, int, int, bool]:
    """The last `n` lines, like ReadLogLines(tail=n), but read from the end of the file
    (the Go server scans fast; a Python scan of an 80 MB log would skew benchmarks)."""
    size = os.stat(path).st_size
    if size == 0:
        return "", 0, 0, False
    total, _ = estimate_line_count(path, size)
    block = 64 * 1024
    with open(path, "rb") as handle:
        while True:
            start = max(0, size - block)
            handle.seek(start)
            data = handle.read(size - start)
            if start == 0 or data.count(b"\n") > n:
                break
            block *= 4
    lines = data.decode("utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if start > 0:
        lines = lines[1:]  # the first piece may be the end of a longer line
    lines = [line[:-1] if line.endswith("\r") else line for line in lines[-n:]]
    total = max(total, len(lines))
    return "\n".join(lines), len(lines), total, len(lines) < total
