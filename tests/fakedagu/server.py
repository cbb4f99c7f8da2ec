"""FakeDagu: the public face of the fake server (start/stop, inspection, fault injection)."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Iterable, List, Optional, Pattern, Tuple, Union
from urllib.parse import parse_qs

from .api import Config, DaguAPI
from .dags import Dag
from .engine import FINALIZE_DELAY, Engine, Run
from .sse import EventHub, supported as sse_supported
from .transport import SPA_HTML, Incoming, Listener, Reply, go_json
from .versions import TERMINAL_STATUSES, ServerVersion

Auth = Optional[Tuple[str, ...]]
WAIT_LIMIT = 60.0  # seconds: the default bound of the wait_for_* helpers


@dataclass
class RequestRecord:
    """One request as the fake saw it (kept for assertions and benchmarks)."""

    time: float  # time.monotonic() when the request arrived
    wall_time: float  # time.time() at the same moment
    method: str
    path: str  # below the base path, e.g. /api/v1/dag-runs/deploy/r1
    query: Dict[str, str]  # first value of each query parameter
    url: str  # path and query as sent, base path included
    status: int  # 0 when the connection was dropped
    bytes_out: int
    response: bytes
    body: bytes
    headers: Dict[str, str]
    duration: float
    fault: bool = False
    stream: bool = False  # an events stream: bytes_out, response and duration grow while it is open


@dataclass
class Fault:
    """Answer the next `remaining` matching requests with a canned reply."""

    path: Pattern[str]
    method: Optional[str]
    status: int
    remaining: Optional[int]  # None: every matching request, until cleared
    retry_after: Optional[Union[int, float, str]] = None
    body: Optional[Union[bytes, str]] = None
    delay: float = 0.0
    html: bool = False
    drop: bool = False
    content_type: Optional[str] = None
    hang: bool = False
    trickle: float = 0.0
    cut: Optional[str] = None
    bad_gzip: bool = False
    transform: Optional[Callable[[Any], Any]] = None
    rewrite: Optional[Tuple[bytes, bytes]] = None  # (old, new): the real answer, with old replaced
    hold: Optional[str] = None  # wait for srv.release(hold) before answering
    after: Optional[bytes] = None  # armed once a matching real answer contained this
    hits: int = 0

    @property
    def armed(self) -> bool:
        return self.after is None

    @property
    def passthrough(self) -> bool:
        """status 200 with nothing canned: the real answer, maybe held, delayed or delivered badly."""
        return self.status == 200 and self.body is None and not self.html and not self.drop and not self.hang

    def deliver(self, reply: Reply) -> Reply:
        """The answer as this fault delivers it (a real answer when passed through)."""
        if self.rewrite is not None:
            reply = replace(reply, body=reply.body.replace(*self.rewrite))
        if self.transform is not None and reply.body[:1] == b"{":
            reply = Reply(reply.status, go_json(self.transform(json.loads(reply.body))), reply.headers)
        if self.bad_gzip:  # says gzip, is not
            reply.headers = reply.headers + [("Content-Encoding", "gzip")]
        reply.trickle, reply.cut = self.trickle, self.cut
        return reply

    def applies(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path.search(path) is not None

    def matches(self, method: str, path: str) -> bool:
        if (self.remaining is not None and self.remaining <= 0) or not self.armed:
            return False
        return self.applies(method, path)

    def reply(self) -> Reply:
        if self.hang:
            return Reply(0, hang=True)
        if self.drop:
            return Reply(0, drop=True)
        if self.html:
            return Reply.html()
        headers: List[Tuple[str, str]] = []
        if self.retry_after is not None:
            headers.append(("Retry-After", str(self.retry_after)))
        if self.body is None:
            body = f"{self.status} fault injected by fakedagu\n".encode()
            headers.append(("Content-Type", self.content_type or "text/plain; charset=utf-8"))
        else:
            body = self.body.encode() if isinstance(self.body, str) else self.body
            content_type = self.content_type or ("application/json" if body[:1] in (b"{", b"[") else "text/plain")
            headers.append(("Content-Type", content_type))
        return Reply(self.status, body, headers)


class FakeDagu:
    """A fake Dagu server on real HTTP. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        version: str = "2.6.5",
        auth: Auth = None,
        base_path: str = "",
        flavor: Optional[str] = None,
        host: str = "127.0.0.1",
        port: int = 0,
        queue_delay: Optional[float] = 1.0,
        start_timeout: float = 0.5,
        start_latency: float = 0.0,
        stop_delay: Optional[float] = 0.1,  # None: a stop takes effect at deliver_stops()
        finalize_delay: Optional[float] = FINALIZE_DELAY,  # None: the last status write waits for release_finalize()
        log_dir: Optional[str] = None,
        server_env: Optional[Dict[str, str]] = None,
        tls: Optional[Any] = None,
        sse: bool = True,
        sse_invalidation: Optional[float] = 1.0,  # None: pushes wait for srv.sse.tick()
        sse_heartbeat: float = 10.0,
        sse_framing: str = "chunked",
    ):
        if auth is not None:
            if (auth[0] == "basic" and len(auth) != 3) or (auth[0] == "token" and len(auth) != 2):
                raise ValueError('auth is ("basic", user, password) or ("token", secret)')
            if auth[0] not in ("basic", "token"):
                raise ValueError(f"unknown auth kind {auth[0]!r}")
        base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.version = ServerVersion.parse(version, flavor)
        self.auth = auth
        self.base_path = base_path
        self.host = host
        self._config = Config(start_timeout, start_latency, queue_delay)
        self._own_log_dir = log_dir is None
        self.log_dir = log_dir or tempfile.mkdtemp(prefix="fakedagu-")
        self.engine = Engine(
            self.version, self.log_dir, stop_delay=stop_delay, env=server_env, finalize_delay=finalize_delay
        )
        self._dags: Dict[str, Dag] = {}
        self.engine.dags = self._dags
        self._api = DaguAPI(self.version, self.engine, self._dags, self._config, auth, time.monotonic())
        self._listener = Listener(host, port, self._handle, tls)
        # The events stream (>= 2.3.0; sse=False: not served, like an older server). The
        # 1 s default is Dagu's event-store invalidation tick: see sse.py.
        self.sse: Optional[EventHub] = (
            EventHub(self.version, self.engine, self.version.api_prefix, sse_invalidation, sse_heartbeat, sse_framing)
            if sse and sse_supported(self.version)
            else None
        )
        self._records: List[RequestRecord] = []
        self._cleared_at = float("-inf")
        self._faults: List[Fault] = []
        self._lock = threading.Lock()
        self._outage_timer: Optional[threading.Timer] = None
        self.errors: List[str] = []  # tracebacks of bugs in the fake itself (answered 500)
        self._started = False

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> "FakeDagu":
        if not self._started:
            self._listener.open()
            self._started = True
        return self

    def stop(self) -> None:
        if self._outage_timer is not None:
            self._outage_timer.cancel()
        if self.sse is not None:
            self.sse.close()
        self._listener.close()
        self.engine.shutdown()
        if self._own_log_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)
        self._started = False

    def __enter__(self) -> "FakeDagu":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._listener.port

    @property
    def url(self) -> str:
        scheme = "https" if self._listener.tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}{self.base_path}"

    @property
    def api_url(self) -> str:
        return self.url + self.version.api_prefix

    # -- DAGs and runs ------------------------------------------------------------
    def add_dag(self, dag: Dag) -> Dag:
        with self.engine.lock:
            self._dags[dag.file] = dag
        return dag

    @property
    def dags(self) -> List[Dag]:
        return list(self._dags.values())

    def dag_spec(self, file: str) -> Optional[str]:
        """The DAG file's text as GET /dags/{file}/spec serves it; None if there is none."""
        with self.engine.lock:
            return self._api.definitions.text_of(file)

    @property
    def dag_specs(self) -> Dict[str, str]:
        """Every DAG file's text, by file name: compare two of these for "unchanged"."""
        with self.engine.lock:
            return {file: self._api.definitions.text_of(file) or "" for file in sorted(self._dags)}

    @property
    def dag_writes_allowed(self) -> bool:
        """False: PUT/POST/DELETE of DAG files answer 403, as for a key whose role may only
        run DAGs (definitions.py)."""
        return self._api.definitions.writes_allowed

    @dag_writes_allowed.setter
    def dag_writes_allowed(self, value: bool) -> None:
        self._api.definitions.writes_allowed = bool(value)

    @property
    def queue_delay(self) -> Optional[float]:
        return self._config.queue_delay

    @queue_delay.setter
    def queue_delay(self, value: Optional[float]) -> None:
        self._config.queue_delay = value

    @property
    def start_timeout(self) -> float:
        return self._config.start_timeout

    @start_timeout.setter
    def start_timeout(self, value: float) -> None:
        self._config.start_timeout = value

    @property
    def runs(self) -> List[Run]:
        return self.engine.all_runs()

    def runs_of(self, name: str) -> List[Run]:
        """Runs whose DAG name or file name is `name`, oldest first."""
        return self.engine.runs_of(name)

    def find_run(self, name: str, run_id: str) -> Optional[Run]:
        return self.engine.find(name, run_id)

    def get_run(self, name: str, run_id: str) -> Run:
        run = self.engine.find(name, run_id)
        if run is None:
            known = [f"{r.name}/{r.run_id}" for r in self.engine.all_runs()]
            raise KeyError(f"no run {name}/{run_id}; runs: {known}")
        return run

    # The waits' timeouts are upper bounds for a loaded machine, not expectations.
    def wait_for_run(self, name: str, run_id: str, timeout: float = WAIT_LIMIT) -> Run:
        if not self.engine.wait_for(lambda: self.engine.find(name, run_id) is not None, timeout):
            raise TimeoutError(f"run {name}/{run_id} did not appear within {timeout}s")
        return self.get_run(name, run_id)

    def wait_for_status(
        self, name: str, run_id: str, statuses: Union[int, Iterable[int]], timeout: float = WAIT_LIMIT
    ) -> Run:
        wanted = {statuses} if isinstance(statuses, int) else set(statuses)

        def reached() -> bool:
            # A terminal status counts once the run has ended (its last status write, finishedAt).
            run = self.engine.find(name, run_id)
            if run is None or run.status not in wanted:
                return False
            return run.status not in TERMINAL_STATUSES or run.attempt.finished

        if not self.engine.wait_for(reached, timeout):
            run = self.engine.find(name, run_id)
            seen = run.status if run else "no run"
            raise TimeoutError(f"run {name}/{run_id} not in {sorted(wanted)} after {timeout}s (status: {seen})")
        return self.get_run(name, run_id)

    def approve(self, name: str, run_id: str, step: str) -> None:
        self._decide(name, run_id, step, "approve")

    def reject(self, name: str, run_id: str, step: str) -> None:
        self._decide(name, run_id, step, "reject")

    def _decide(self, name: str, run_id: str, step: str, decision: str) -> None:
        run = self.get_run(name, run_id)
        with self.engine.lock:
            node = run.attempt.nodes.get(step)
            if node is None or node.status != 7:
                raise ValueError(f"step {step} of {name}/{run_id} is not waiting for approval")
            self.engine.decide(run, step, decision)

    def stop_run(self, name: str, run_id: str) -> None:
        """What the Stop button in the UI does (no HTTP request recorded)."""
        self.engine.stop(self.get_run(name, run_id))

    def deliver_stops(self) -> None:
        """With stop_delay=None, stops wait for this: the runs abort now."""
        self.engine.deliver_stops()

    # -- holding the clock: what a test must not race, it holds -------------------
    def release(self, gate: str) -> None:
        """Let every step at `hold(gate)` (and request held by `fault(hold=gate)`) go on;
        later ones pass straight through."""
        self.engine.release(gate)

    def wait_held(self, gate: str, timeout: float = WAIT_LIMIT) -> None:
        """Until a step (or a request held by a fault) waits at `gate`."""
        if not self.engine.wait_for(lambda: self.engine.holding(gate) > 0, timeout):
            raise TimeoutError(f"no step reached hold({gate!r}) within {timeout}s")

    def midnight_passes(self) -> None:
        """Every run so far is from "yesterday" (UTC): the run list without fromDate or toDate
        leaves it out, as every Dagu version does (its default window is today)."""
        self.engine.midnight = time.time()

    def release_finalize(self) -> None:
        """Runs held before their last status write (finalize_delay=None) write it now."""
        self.engine.release_finalize()

    def release_auto_retries(self) -> None:
        """Start the pending auto-retries now (a DAG with auto_retry_delay=None waits for this)."""
        self.engine.release_auto_retries()

    def start_held_auto_retry(self, timeout: float = WAIT_LIMIT) -> None:
        """Once a failed attempt's last write has scheduled its auto-retry, start it. A client
        can see the failure (and say a retry comes) before that write: releasing then would
        release nothing, and the retry would wait for ever."""
        if not self.engine.wait_for(lambda: any(run.retry_pending for run in self.engine.all_runs()), timeout):
            raise TimeoutError(f"no auto-retry was scheduled within {timeout}s")
        self.engine.release_auto_retries()

    def pause_flushes(self) -> None:
        """Step output stays in its buffers (unless one fills) until resume_flushes()."""
        self.engine.flushes_paused.set()

    def resume_flushes(self) -> None:
        self.engine.flushes_paused.clear()

    def retry_run(self, name: str, run_id: str) -> bool:
        return self.engine.retry(self.get_run(name, run_id))

    @property
    def hostile_artifacts(self) -> Optional[List[Any]]:
        """A listing served by `.../artifacts` instead of the real tree (2.5.0+), for
        testing a client's path checks: ArtifactTreeNode dicts or path strings such as
        "../../etc/passwd" or "/abs". Downloads then answer 200 with b"pwned\\n" for any
        path. The run's DAG must have artifacts (`Dag(artifacts={...})`) for the run to
        report `artifactsAvailable`. None (the default) serves the real tree."""
        return self._api.lifecycle.hostile_artifacts

    @hostile_artifacts.setter
    def hostile_artifacts(self, listing: Optional[List[Any]]) -> None:
        self._api.lifecycle.hostile_artifacts = None if listing is None else list(listing)

    def release_queue(self) -> None:
        """Let the "scheduler" start every queued run now."""
        self.engine.release_queue()

    # -- requests ------------------------------------------------------------------
    @property
    def requests(self) -> List[RequestRecord]:
        """In order of arrival. A plain answer is recorded before it is sent; a stream, or an
        answer a fault delivers badly, once it is out (which can be later)."""
        with self._lock:
            return sorted(self._records, key=lambda record: record.time)

    def wait_for_requests(self, count: int, timeout: float = WAIT_LIMIT) -> List[RequestRecord]:
        """The records once there are `count`: a request is recorded after its reply is
        sent, so a client can be a moment ahead of the list."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.requests

    def clear_requests(self) -> None:
        """Forget every request that arrived so far, also one whose record is still to come
        (a reply is recorded after it is sent, so a client can have its answer first)."""
        with self._lock:
            self._records.clear()
            self._cleared_at = time.monotonic()

    def fault(
        self,
        path: str = r".*",
        method: Optional[str] = None,
        status: int = 503,
        count: Optional[int] = 1,
        retry_after: Optional[Union[int, float, str]] = None,
        body: Optional[Union[bytes, str]] = None,
        delay: float = 0.0,
        html: bool = False,
        drop: bool = False,
        content_type: Optional[str] = None,
        hang: bool = False,
        trickle: float = 0.0,
        cut: Optional[str] = None,
        bad_gzip: bool = False,
        transform: Optional[Callable[[Any], Any]] = None,
        rewrite: Optional[Tuple[bytes, bytes]] = None,
        hold: Optional[str] = None,
        after: Optional[str] = None,
    ) -> Fault:
        """The next `count` requests whose path (below the base path) matches the regex
        get this answer. `delay` sleeps first; status 200 with no body passes the real
        answer through, delayed or delivered badly: `hang` never answers, `trickle` sends
        a byte every so many seconds, `cut` ("length" or "chunked") breaks off the body,
        `bad_gzip` labels it gzip, `transform` rewrites its JSON (a function of the body),
        `rewrite=(old, new)` replaces bytes in it (e.g. JSON escapes real Dagu never writes).
        `hold` waits for `release(hold)` instead of a duration; `after` arms the fault only
        once a real answer to a matching request has contained that text (armed before that
        answer is sent, so the client's next request meets it)."""
        injected = Fault(
            re.compile(path),
            method,
            status,
            count,
            retry_after,
            body,
            delay,
            html,
            drop,
            content_type,
            hang,
            trickle,
            cut,
            bad_gzip,
            transform,
            rewrite,
            hold=hold,
            after=after.encode("utf-8") if after is not None else None,
        )
        with self._lock:
            self._faults.append(injected)
        return injected

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _arm_faults(self, method: str, path: str, answer: bytes) -> None:
        with self._lock:
            for waiting in self._faults:
                if waiting.after is not None and waiting.applies(method, path) and waiting.after in answer:
                    waiting.after = None

    def _take_fault(self, method: str, path: str) -> Optional[Fault]:
        with self._lock:
            for injected in self._faults:
                if injected.matches(method, path):
                    if injected.remaining is not None:
                        injected.remaining -= 1
                    injected.hits += 1
                    return injected
        return None

    def drop_streams(self) -> None:
        """Cut every open events stream (the client should fall back to polling)."""
        if self.sse is not None:
            self.sse.drop_all()

    # -- outages -------------------------------------------------------------------
    def outage(self, seconds: float) -> None:
        """Stop listening now and listen again on the same port after `seconds`.
        Returns at once; runs keep executing meanwhile."""
        self.outage_start()
        timer = threading.Timer(seconds, self.outage_end)
        timer.daemon = True
        self._outage_timer = timer
        timer.start()

    def outage_start(self) -> None:
        self._listener.close()

    def outage_end(self) -> None:
        if self._started:
            self._listener.open()

    @property
    def listening(self) -> bool:
        return self._listener.listening

    # -- the request path --------------------------------------------------------------
    def _handle(self, handler: object) -> None:
        began, wall = time.monotonic(), time.time()
        incoming: Incoming = handler.incoming()  # type: ignore[attr-defined]
        raw_path, _, query_string = incoming.target.partition("?")
        below_base = raw_path[len(self.base_path) :] if raw_path.startswith(self.base_path) else raw_path
        injected = self._take_fault(incoming.method, below_base)
        if injected is not None and injected.delay:
            time.sleep(injected.delay)
        if injected is not None and injected.hold is not None:
            self.engine.hold(injected.hold, cancel=None)

        def record(status: int, sent: int, response: bytes, stream: bool = False) -> RequestRecord:
            entry = RequestRecord(
                time=began,
                wall_time=wall,
                method=incoming.method,
                path=below_base,
                query={k: v[0] for k, v in parse_qs(query_string, keep_blank_values=True).items()},
                url=incoming.target,
                status=status,
                bytes_out=sent,
                response=response,
                body=incoming.body,
                headers=incoming.headers,
                duration=time.monotonic() - began,
                fault=injected is not None,
                stream=stream,
            )
            with self._lock:
                if began >= self._cleared_at:
                    self._records.append(entry)
            return entry

        if injected is not None and not injected.passthrough:
            reply = injected.deliver(injected.reply())
        elif (
            self.sse is not None
            and (not self.base_path or raw_path.startswith(self.base_path + "/"))
            and self.sse.handles(incoming.method, below_base)
        ):
            self.sse.serve(handler, incoming, below_base, query_string, self._refusal, record)
            return
        else:
            reply = self._answer(incoming, raw_path, query_string)
            self._arm_faults(incoming.method, below_base, reply.body)
            if injected is not None:
                reply = injected.deliver(reply)
        if not (reply.hang or reply.drop or reply.cut or reply.trickle):
            # Recorded before it is sent: a client that has its answer (and has exited) finds
            # its request listed. The bytes are known: the whole body (none for HEAD).
            entry = record(reply.status, 0 if incoming.method == "HEAD" else len(reply.body), reply.body)
            entry.bytes_out = handler.send(reply)  # type: ignore[attr-defined]
            return
        sent = handler.send(reply)  # type: ignore[attr-defined]
        record(reply.status, sent, reply.body)

    def _refusal(self, headers: Dict[str, str]) -> Optional[Reply]:
        """The API's auth middleware, for the events stream: None when allowed."""
        if self.auth and not self._api._authorized(headers):
            return self._api._unauthorized()
        return None

    def _answer(self, incoming: Incoming, raw_path: str, query_string: str) -> Reply:
        # chi's RedirectSlashes runs first, for every method (a POST loses its body).
        if len(raw_path) > 1 and raw_path.endswith("/"):
            location = raw_path.rstrip("/") or "/"
            if query_string:
                location += "?" + query_string
            return Reply(301, b"", [("Location", location)])
        if self.base_path:
            if raw_path != self.base_path and not raw_path.startswith(self.base_path + "/"):
                return Reply.text(404, "404 page not found\n")
            path = raw_path[len(self.base_path) :] or "/"
        else:
            path = raw_path
        try:
            return self._api.dispatch(incoming, path, query_string)
        except Exception:  # noqa: BLE001 - a bug in the fake: answer like a recovered panic, keep the trace
            self.errors.append(traceback.format_exc())
            return Reply.empty(500)


__all__ = ["SPA_HTML", "FakeDagu", "Fault", "RequestRecord"]
