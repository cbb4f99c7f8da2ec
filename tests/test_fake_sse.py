"""The fake's events stream (API.md §8.2): frames, auth, version gating, pushes, drops."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional

import pytest
import requests

from tests.conftest import WAIT_LIMIT, eventually
from tests.fakedagu import Dag, FakeDagu, Step, out, sleep


@dataclass
class Frame:
    event: str = "message"
    id: Optional[str] = None
    data: str = ""
    comment: str = ""

    @property
    def json(self) -> Dict:
        return json.loads(self.data)


def frames(response: requests.Response) -> Iterator[Frame]:
    frame = Frame()
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            yield frame
            frame = Frame()
        elif line.startswith(":"):
            frame.comment = line[1:].strip()
        elif line.startswith("event: "):
            frame.event = line[7:]
        elif line.startswith("id: "):
            frame.id = line[4:]
        elif line.startswith("data: "):
            frame.data = line[6:]


@dataclass
class Reader:
    """Collects a stream's frames in a thread, so a test can wait for one."""

    response: requests.Response
    seen: List[Frame] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        try:
            for frame in frames(self.response):
                self.seen.append(frame)
        except Exception:  # noqa: BLE001 - a cut stream ends the reader
            pass
        self.ended.set()

    def wait_for(self, predicate, timeout: float = WAIT_LIMIT) -> Frame:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for frame in list(self.seen):
                if predicate(frame):
                    return frame
            time.sleep(0.01)
        raise AssertionError(f"no such frame in {self.seen}")

    def messages(self) -> List[Dict]:
        return [f.json for f in list(self.seen) if f.event == "message"]


def open_stream(srv: FakeDagu, topics, **kw) -> requests.Response:
    return requests.get(
        f"{srv.api_url}/events/stream", params=[("topic", t) for t in topics], stream=True, timeout=5, **kw
    )


def start(srv: FakeDagu, dag: str, run_id: str) -> None:
    r = requests.post(f"{srv.api_url}/dags/{dag}/start", json={"dagRunId": run_id}, timeout=5)
    assert r.status_code == 200, r.text


SLOW = Dag(file="slow", steps=[Step("a", [out("one"), sleep(0.6), out("two")]), Step("b", [out("b")], depends=["a"])])


def test_control_frame_then_snapshot_then_push_on_change():
    with FakeDagu(version="2.6.5", sse_invalidation=0.2) as srv:
        srv.add_dag(SLOW)
        start(srv, "slow", "r1")
        response = open_stream(srv, ["dagrun:slow/r1", "nope", "steplog:slow/r1/a"])
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        reader = Reader(response)
        control = reader.wait_for(lambda f: f.event == "control")
        assert reader.seen[0] is control and control.id is None
        body = control.json
        assert body["subscribed"] == ["dagrun:slow/r1", "steplog:slow/r1/a"]
        assert [e["code"] for e in body["errors"]] == ["invalid_topic"] and body["sessionID"]
        first = reader.wait_for(lambda f: f.event == "message")
        assert first.json["topic"] == "dagrun:slow/r1" and int(first.id) > 0
        assert first.json["payload"]["dagRunDetails"]["dagRunId"] == "r1"
        rest = requests.get(f"{srv.api_url}/dag-runs/slow/r1", timeout=5).json()
        assert set(first.json["payload"]["dagRunDetails"]) == set(rest["dagRunDetails"])
        final = reader.wait_for(
            lambda f: f.event == "message" and f.json["payload"].get("dagRunDetails", {}).get("status") == 4
        )
        details = final.json["payload"]["dagRunDetails"]
        assert [n["status"] for n in details["nodes"]] == [4, 4]
        ids = [int(f.id) for f in reader.seen if f.id]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        log = reader.wait_for(lambda f: f.event == "message" and f.json["topic"].startswith("steplog:"))
        assert set(log.json["payload"]) == {"stdoutContent", "stderrContent", "lineCount", "totalLines", "hasMore"}
        streams = [r for r in srv.requests if r.stream]
        assert len(streams) == 1 and streams[0].path == "/api/v1/events/stream" and streams[0].bytes_out > 0
        response.close()


def test_push_waits_for_the_invalidation_tick():
    # Dagu pushes a change at its event store's next 1 s tick; here the test is the ticker.
    with FakeDagu(version="2.3.0", sse_invalidation=None) as srv:
        srv.add_dag(Dag(file="quick", steps=[Step("a", [out("a")])]))
        reader = Reader(open_stream(srv, ["dagrun:quick/r2"]))
        reader.wait_for(lambda f: f.event == "control")
        assert srv.sse is not None
        srv.sse.tick()
        assert srv.sse.pushes == 0  # no run yet: nothing is sent
        start(srv, "quick", "r2")
        srv.wait_for_status("quick", "r2", 4)
        assert srv.sse.pushes == 0  # the run ended, but no tick has come yet
        srv.sse.tick()
        done = reader.wait_for(lambda f: f.event == "message")
        assert done.json["payload"]["dagRunDetails"]["status"] == 4
        assert srv.sse.pushes == 1


def test_heartbeat_topics_param_and_token_auth():
    with FakeDagu(version="2.6.5", auth=("token", "s3cret"), sse_heartbeat=0.2) as srv:
        srv.add_dag(SLOW)
        url = f"{srv.api_url}/events/stream"
        refused = requests.get(url, params={"topic": "dagrun:slow/x"}, timeout=5)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = requests.get(url, params={"topic": "dagrun:slow/x", "token": "nope"}, timeout=5)
        assert wrong.status_code == 401
        by_query = requests.get(
            url, params={"topics": "dagrun:slow/x,dagrun:slow/y", "token": "s3cret"}, stream=True, timeout=5
        )
        reader = Reader(by_query)
        assert reader.wait_for(lambda f: f.event == "control").json["subscribed"] == ["dagrun:slow/x", "dagrun:slow/y"]
        reader.wait_for(lambda f: f.comment == "heartbeat")
        by_query.close()
        by_header = open_stream(srv, ["dagrun:slow/x"], headers={"Authorization": "Bearer s3cret"})
        assert by_header.status_code == 200
        by_header.close()


@pytest.mark.parametrize("version,kw", [("2.2.0", {}), ("1.30.3", {}), ("2.6.5", {"sse": False})])
def test_not_served_before_2_3_or_when_disabled(version, kw):
    with FakeDagu(version=version, **kw) as srv:
        response = requests.get(f"{srv.api_url}/events/stream", params={"topic": "dagrun:a/b"}, timeout=5)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
        (record,) = srv.wait_for_requests(1)  # the record lands just after the answer is sent
        assert record.stream is False


def test_topics_endpoint_adds_and_removes():
    with FakeDagu(version="2.6.5", sse_invalidation=0.1) as srv:
        srv.add_dag(SLOW)
        start(srv, "slow", "r3")
        reader = Reader(open_stream(srv, ["dagrun:slow/other"]))
        session = reader.wait_for(lambda f: f.event == "control").json["sessionID"]
        url = f"{srv.api_url}/events/stream/topics"
        answer = requests.post(
            url,
            json={"sessionID": session, "add": ["dagrun:slow/r3", "bad"], "remove": ["dagrun:slow/other"]},
            timeout=5,
        )
        assert answer.status_code == 200
        assert answer.json()["subscribed"] == ["dagrun:slow/r3"]
        assert answer.json()["errors"][0]["code"] == "invalid_topic"
        reader.wait_for(lambda f: f.event == "message" and f.json["topic"] == "dagrun:slow/r3")
        unknown = requests.post(url, json={"sessionID": "nope", "add": []}, timeout=5)
        assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_session"


def test_drop_streams_cuts_every_open_stream():
    with FakeDagu(version="2.6.5") as srv:
        readers = [Reader(open_stream(srv, ["dagrun:a/b"])) for _ in range(2)]
        for reader in readers:
            reader.wait_for(lambda f: f.event == "control")
        assert srv.sse is not None and srv.sse.open_sessions == 2
        srv.drop_streams()
        for reader in readers:
            assert reader.ended.wait(WAIT_LIMIT)
        eventually(lambda: srv.sse.open_sessions == 0, "every session closed")
