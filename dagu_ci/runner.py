"""`dagu-ci run`, start to finish: detect, resolve, start (or attach), follow, settle, report.

Cancellation and timeouts always end in a stop request for the remote run,
so a CI job never leaves an orphaned run behind.
"""
from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Mapping, Optional

from dagu_ci.client import LITERAL_PARAMS_SINCE, DaguClient, Retry, backoff_delay, error_fields
from dagu_ci.errors import Cancelled, DaguCIError, ExitCode, ServerError, TimedOut, UsageError
from dagu_ci.events import Level, Notice, RunAccepted, RunFinished, ServerDetected
from dagu_ci.follower import FollowOptions, Follower
from dagu_ci.models import RunSnapshot, RunStatus, StepStatus
from dagu_ci.params import Params, encode_params, expanding_values
from dagu_ci.reporters import Reporter
from dagu_ci.result import Ending, RunResult, exit_code_for
from dagu_ci.runid import derive_run_id, validate_run_id

SETTLE_SECONDS = 15.0  # how long to watch a stopped run reach "aborted"
MAX_START_500S = 3  # a 500 with a Dagu error body is rarely a blip (API.md §3.5)


@dataclass
class RunRequest:
    dag: str
    params: Params = field(default_factory=dict)
    run_id: Optional[str] = None
    enqueue: bool = False
    singleton: bool = False
    timeout: float = 0.0
    poll_interval: float = 0.5
    push: bool = True
    logs: bool = True
    stop_on_cancel: bool = True
    fail_on_partial: bool = False
    result_file: Optional[str] = None


@dataclass
class _Accepted:
    dag_name: str
    run_id: str
    attached: bool


class Runner:
    def __init__(self, client: DaguClient, reporter: Reporter, request: RunRequest, env: Mapping[str, str] = os.environ):
        self.client = client
        self.reporter = reporter
        self.request = request
        self.env = env
        self._began = time.monotonic()
        self._follower: Optional[Follower] = None

    def run(self) -> int:
        request = self.request
        server = self.client.detect()
        self.reporter.handle(ServerDetected(self.client.display_url, server))
        dag_name = self._resolve_name()
        params = encode_params(request.params, server.json_params) if request.params else ""
        self._warn_expansion()
        run_id = validate_run_id(request.run_id) if request.run_id else derive_run_id(self.env, request.dag, params)
        deadline = self._began + request.timeout if request.timeout > 0 else None

        with _signals_raise_cancelled():
            accepted: Optional[_Accepted] = None
            try:
                accepted = self._start(dag_name, run_id, params)
                self.reporter.handle(
                    RunAccepted(
                        dag_file=request.dag,
                        dag_name=dag_name,
                        run_id=run_id,
                        url=self.client.ui_url(dag_name, run_id),
                        attached=accepted.attached,
                        queued=request.enqueue,
                        params=params,
                    )
                )
                self._follower = Follower(
                    self.client,
                    dag_name,
                    run_id,
                    self.reporter.handle,
                    FollowOptions(request.poll_interval, request.logs, deadline, push=request.push),
                )
                snapshot = self._follower.follow()
                return self._finish(dag_name, run_id, snapshot, Ending.FINISHED, exit_code_for(snapshot.status, request.fail_on_partial))
            except TimedOut:
                self._say(f"timed out after {request.timeout:g}s; stopping the run", Level.ERROR)
                snapshot = self._stop(dag_name, run_id)
                return self._finish(dag_name, run_id, snapshot, Ending.TIMEOUT, ExitCode.TIMEOUT)
            except Cancelled as cancel:
                code = ExitCode.SIGINT if cancel.signum == signal.SIGINT else ExitCode.SIGTERM
                if not request.stop_on_cancel:
                    self._say("cancelled; the run was left running (--no-stop-on-cancel)", Level.WARNING)
                    snapshot = self.client.find_run(dag_name, run_id) if accepted else None
                else:
                    snapshot = self._stop(dag_name, run_id)  # stop first, explain after
                    self._say("cancelled by the CI job; the run was stopped", Level.WARNING)
                return self._finish(dag_name, run_id, snapshot, Ending.CANCELLED, code)

    # -- steps ----------------------------------------------------------------

    def _resolve_name(self) -> str:
        """Run endpoints key on the DAG's name, which may differ from its file name."""
        body = self.client.get_dag(self.request.dag)
        name = (body.get("dag") or {}).get("name")
        return str(name or self.request.dag)

    def _warn_expansion(self) -> None:
        server = self.client.api
        if server.at_least(LITERAL_PARAMS_SINCE):
            return
        keys = expanding_values(self.request.params)
        if keys:
            self._say(
                f"params {', '.join(keys)} hold $ or backticks, which Dagu before 2.3 expands on the server",
                Level.WARNING,
            )

    def _start(self, dag_name: str, run_id: str, params: str) -> _Accepted:
        """POST start (or enqueue) until the run exists. Safe to repeat: the id is fixed."""
        request = self.request
        body: Dict[str, Any] = {"dagRunId": run_id}  # always a JSON body: none is a 500
        if params:
            body["params"] = params
        if request.singleton:
            body["singleton"] = True
        retry = Retry.for_seconds(self.client.retry_for)
        attempt = 0
        server_errors = 0
        reason = ""
        while True:
            attempt += 1
            try:
                response = self.client.post_start(request.dag, body, request.enqueue)
            except ServerError as exc:  # transport error or a retryable status
                reason = exc.message
            else:
                status = response.status_code
                code, message = error_fields(response)
                if status == 200:
                    return _Accepted(dag_name, run_id, attached=False)
                if status == 409:
                    if "dag-run id" in message.lower():
                        return _Accepted(dag_name, run_id, attached=True)
                    raise ServerError(
                        f"{request.dag} was not started: {message or 'conflict'} (HTTP 409"
                        f"{' ' + code if code else ''}); another run is active and --singleton is set"
                        if request.singleton
                        else f"{request.dag} was not started: {message or 'conflict'} (HTTP 409{' ' + code if code else ''})"
                    )
                if status in (400, 404):
                    if status == 404:
                        raise UsageError(f"DAG {request.dag!r} not found on {self.client.display_url}")
                    raise UsageError(f"the server refused to start {request.dag}: {message or 'bad request'}")
                server_errors += 1
                reason = f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
                if server_errors >= MAX_START_500S:
                    raise ServerError(
                        f"Dagu at {self.client.display_url} could not start {request.dag}: {reason}"
                        + ("" if self.client.api.at_least((2, 0, 0)) else " (on Dagu 1.x this often means the params were rejected)")
                    )
            # Uncertain: the server may have created the run anyway.
            if self._exists(dag_name, run_id):
                return _Accepted(dag_name, run_id, attached=False)
            delay = backoff_delay(attempt, None)
            if delay > retry.remaining():
                raise ServerError(f"could not start {request.dag} on {self.client.display_url}: {reason}")
            time.sleep(delay)

    def _exists(self, dag_name: str, run_id: str) -> bool:
        try:
            return self.client.get_run(dag_name, run_id, Retry(None)) is not None
        except DaguCIError:
            return False

    def _stop(self, dag_name: str, run_id: str) -> Optional[RunSnapshot]:
        """Stop (or dequeue, or reject) the run, then watch it settle briefly."""
        try:
            snapshot = self.client.find_run(dag_name, run_id)
        except DaguCIError:
            snapshot = None
        try:
            if snapshot is None or snapshot.is_over:
                return snapshot
            if snapshot.status == RunStatus.QUEUED:
                self.client.dequeue(dag_name, run_id)
            elif snapshot.status == RunStatus.WAITING:
                self._reject_waiting(dag_name, run_id, snapshot)
            else:
                self.client.stop(dag_name, run_id)
        except DaguCIError as exc:
            self._say(f"could not stop run {run_id}: {exc.message}", Level.ERROR)
            return snapshot
        # Keep the same follower, so log cursors carry on and nothing shows twice.
        follower = self._follower or Follower(
            self.client, dag_name, run_id, self.reporter.handle, FollowOptions(logs=self.request.logs)
        )
        return follower.settle(SETTLE_SECONDS)

    def _reject_waiting(self, dag_name: str, run_id: str, snapshot: RunSnapshot) -> None:
        """A waiting run has no process to stop; rejecting its approval ends it (status 8)."""
        for step in snapshot.steps:
            if step.status == StepStatus.WAITING:
                self.client.reject(dag_name, run_id, step.name, "CI job cancelled or timed out")

    def _finish(self, dag_name: str, run_id: str, snapshot: Optional[RunSnapshot], ending: Ending, code: int) -> int:
        result = RunResult(
            dag_file=self.request.dag,
            dag_name=dag_name,
            run_id=run_id,
            url=self.client.ui_url(dag_name, run_id),
            snapshot=snapshot,
            exit_code=int(code),
            ending=ending,
            duration=snapshot.duration if snapshot and snapshot.duration is not None else time.monotonic() - self._began,
            outputs=self._outputs(dag_name, run_id, snapshot),
        )
        if self.request.result_file:
            result.write(self.request.result_file)
        self.reporter.handle(RunFinished(result))
        return int(code)

    def _outputs(self, dag_name: str, run_id: str, snapshot: Optional[RunSnapshot]) -> Dict[str, Any]:
        if snapshot is None or not snapshot.is_over:
            return {}
        try:
            return self.client.get_outputs(dag_name, run_id)
        except DaguCIError as exc:
            self._say(f"could not read the run's outputs: {exc.message}", Level.WARNING)
            return {}

    def _say(self, text: str, level: Level = Level.INFO) -> None:
        self.reporter.handle(Notice(text, level))


@contextmanager
def _signals_raise_cancelled() -> Iterator[None]:
    """SIGINT/SIGTERM (CI cancellation) raise Cancelled once; later signals are ignored
    so the stop request and summary can finish."""
    fired = []

    def handler(signum: int, _frame: Any) -> None:
        if not fired:
            fired.append(signum)
            raise Cancelled(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
