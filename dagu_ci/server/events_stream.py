"""The server's events stream (where Capabilities.events_stream says it has one): the
multiplexed SSE stream, read as wake-ups (API.md §8).

A `dagrun` message carries a full run snapshot, the same as the REST answer, so
it replaces a poll; a `subdagrun` message does the same for one sub-DAG run. A `steplog` message is only a tail snapshot with no offsets,
so it just says "read this step's log now"; the offset reads stay the source of
truth. Any trouble (no endpoint, auth, a drop) ends the stream quietly and the
follower goes back to polling.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import requests

from dagu_ci.server.client import ServerConnection
from dagu_ci.server.models import RunSnapshot
from dagu_ci.server.transport import THREAD_PREFIX, socket_of

READ_TIMEOUT = 35.0  # the server sends a heartbeat every 10 s by default
MAX_TOPICS = 20  # the server's default per connection


@dataclass(frozen=True)
class PushedSnapshot:
    """A run snapshot pushed by the server."""

    snapshot: RunSnapshot


@dataclass(frozen=True)
class PushedSubRun:
    """A sub-DAG run's snapshot pushed by the server (`subdagrun` topics)."""

    sub_id: str
    snapshot: RunSnapshot


@dataclass(frozen=True)
class LogTouched:
    """A step's log changed: read it."""

    step: str


@dataclass(frozen=True)
class Closed:
    """The stream ended; poll from now on."""

    reason: str


Message = Union[PushedSnapshot, PushedSubRun, LogTouched, Closed]


class EventsStream:
    """One SSE connection, read by a daemon thread into a queue."""

    def __init__(
        self, client: ServerConnection, dag_name: str, run_id: str, steps: Iterable[str], sub_runs: Sequence[str] = ()
    ):
        """The run and its steps' logs; or, given `sub_runs`, only those sub-runs of it
        (at most MAX_TOPICS)."""
        self.client = client
        self.dag_name = dag_name
        self.run_id = run_id
        self.messages: "queue.Queue[Message]" = queue.Queue()
        self.subscribed: List[str] = []
        self.live = False
        self._sock: Optional[socket.socket] = None
        self._session = client.new_session()
        if sub_runs:
            self._topics = [f"subdagrun:{dag_name}/{run_id}/{sub_id}" for sub_id in sub_runs][:MAX_TOPICS]
        else:
            self._topics = [f"dagrun:{dag_name}/{run_id}"] + [f"steplog:{dag_name}/{run_id}/{step}" for step in steps][
                : MAX_TOPICS - 1
            ]
        self._thread = threading.Thread(target=self._read, name=f"{THREAD_PREFIX}push", daemon=True)

    @classmethod
    def available(cls, client: ServerConnection) -> bool:
        return client.api.features.events_stream

    def open(self) -> "EventsStream":
        self.live = True
        self._thread.start()
        return self

    def close(self) -> None:
        """At once, never waiting on the reader thread.

        The reader may be blocked in a read until the next frame, holding the response's
        buffer lock, so `response.close()` here could wait that long (minutes on a quiet,
        close-delimited stream). Shutting the socket down ends that read; the reader then
        closes the response and the session itself.
        """
        self.live = False
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed by the other side
                pass

    def log_topics(self) -> bool:
        """Did the server accept steplog topics? Then logs need no periodic reads."""
        return any(topic.startswith("steplog:") for topic in self.subscribed)

    # -- the reader thread ----------------------------------------------------

    def _read(self) -> None:
        reason = "stream ended"
        response: Optional[requests.Response] = None
        try:
            response = self._session.get(
                f"{self.client.api.api_root}/events/stream",
                params=[("topic", topic) for topic in self._topics],
                headers={"Accept": "text/event-stream"},
                stream=True,
                timeout=(5.0, READ_TIMEOUT),
                verify=self._session.verify,  # see ServerConnection._send
            )
            self._sock = socket_of(response)
            if not self.live:  # closed while the request was under way
                return
            if response.status_code != 200 or "text/event-stream" not in response.headers.get("Content-Type", ""):
                reason = f"no events stream (HTTP {response.status_code})"
                return
            for event, data in _frames(response.iter_lines(decode_unicode=True)):
                if not self.live:
                    return
                self._dispatch(event, data)
        except Exception as exc:  # noqa: BLE001 - any failure means: fall back to polling
            reason = f"events stream failed ({type(exc).__name__})"
        finally:
            self.live = False
            self.messages.put(Closed(reason))
            if response is not None:
                response.close()
            self._session.close()

    def _dispatch(self, event: str, data: str) -> None:
        try:
            body = json.loads(data)
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        if event == "control":
            self.subscribed = [str(t) for t in body.get("subscribed") or []]
            return
        if event != "message":
            return
        topic = str(body.get("topic") or "")
        payload = body.get("payload") or {}
        if topic.startswith("dagrun:") and isinstance(payload, dict) and payload.get("dagRunDetails"):
            self.messages.put(PushedSnapshot(RunSnapshot.from_api(payload["dagRunDetails"])))
        elif topic.startswith("subdagrun:") and isinstance(payload, dict) and payload.get("dagRunDetails"):
            self.messages.put(PushedSubRun(topic.rsplit("/", 1)[-1], RunSnapshot.from_api(payload["dagRunDetails"])))
        elif topic.startswith("steplog:"):
            self.messages.put(LogTouched(topic.rsplit("/", 1)[-1]))


def _frames(lines: Iterable[str]) -> Iterator[Tuple[str, str]]:
    """(event, data) per SSE frame; comments (heartbeats) and ids are skipped."""
    event = "message"
    data: List[str] = []
    for line in lines:
        if line is None:
            continue
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" ") if line[5:6] == " " else line[5:])
