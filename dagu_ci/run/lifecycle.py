"""A run that exists, to its end: follow it, or end it, then report.

Cancellation, timeouts and policies always end in a stop request for the remote
run where one is due, so a CI job never leaves an orphaned run behind. From the
moment the run exists until it ends, a state file names it, so a later CI step
(`dagu-ci stop --from-state`) can stop it even if this process is killed. At the
end: the outputs, the artifacts, the result file and the summary.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

from dagu_ci import cancel, files, stdio
from dagu_ci.errors import Cancelled, DaguCIError, ExitCode, OutputClosed, PolicyEnd, TimedOut
from dagu_ci.follow.events import Event, Failed, Level, Notice, RunAccepted, RunFinished
from dagu_ci.follow.follower import Follower, FollowOptions
from dagu_ci.redaction import debug_traceback, redact_value
from dagu_ci.remotetext import json_text
from dagu_ci.reporters import Reporter
from dagu_ci.run import artifacts, state
from dagu_ci.run.backstop import end_run_or_say
from dagu_ci.run.policies import Policies, all_of
from dagu_ci.run.request import RunRequest
from dagu_ci.run.result import Ending, RunResult, exit_code_for
from dagu_ci.server.api import DaguClient
from dagu_ci.server.models import RunSnapshot, StepSnapshot

if TYPE_CHECKING:
    from dagu_ci.hosts.base import Host

SETTLE_SECONDS = 15.0  # how long to watch a stopped run reach "aborted"


class Lifecycle:
    """One run of one RunRequest, from the moment it exists (or might) to the exit code."""

    def __init__(self, client: DaguClient, reporter: Reporter, request: RunRequest, host: "Host"):
        self.client = client
        self.reporter = reporter
        self.request = request
        self.host = host
        self._began = time.monotonic()
        self._follower: Optional[Follower] = None
        self._state: Optional[state.RunState] = None
        self._ended_before: "tuple[StepSnapshot, ...]" = ()  # a retry's earlier attempt
        self._following = False  # the run exists and is ours: any way out stops it first
        self._ended = False  # the last stop (or dequeue, or reject) went through
        self._failure = ""  # the error that ended the follow, if one did
        self._state_dir = request.state_dir or host.state_dir()
        self._state_key = secrets.token_hex(16)  # binds our state files to this step (Host.hand_key_to_post_step)

    def guarded(self, dag_name: str, run_id: str, begin: Callable[[], None]) -> int:
        """`begin` (start or attach: it calls `accepted` once the run exists), follow the run to
        its end or end it, then report: the exit code. A signal cancels it all the same way."""
        with cancel.signals_raise_cancelled():
            snapshot, ending, code = self._to_the_end(dag_name, run_id, begin)
            code = self._finish(dag_name, run_id, snapshot, ending, code)
            if self._failure:  # the host hears of the error too: annotation, outputs, summary
                self._report(Failed(self._failure, code, self.request.dag))
            return code

    def accepted(
        self,
        dag_name: str,
        run_id: str,
        attached: bool,
        params: str = "",
        ended_before: "tuple[StepSnapshot, ...]" = (),
    ) -> None:
        """The run exists: name it on disk, then announce it. `ended_before`: the steps of a
        retried run's earlier attempt, whose ends are not news."""
        self._following = True
        self._ended_before = ended_before
        self.remember(dag_name, run_id)
        self._report(
            RunAccepted(
                dag_file=self.request.dag,
                dag_name=dag_name,
                run_id=run_id,
                url=self.client.ui_url(dag_name, run_id),
                attached=attached,
                queued=self.request.enqueue,
                params=params,
            )
        )

    def remember(self, dag_name: str, run_id: str) -> None:
        """Name the run on disk before anything else can go wrong."""
        self._state = state.RunState(
            url=self.client.display_url,
            dag=self.request.dag,
            name=dag_name,
            run_id=run_id,
            api_path=self.client.connection.api_path or "",
            job=self.host.job() or "",
            key=self._state_key,
        )
        try:
            self.host.hand_key_to_post_step(self._state_key)
            state.save(self._state_dir, self._state)
        except OSError as exc:
            self._say(f"could not write the run's state file in {self._state_dir}: {exc.strerror}", Level.WARNING)

    def _to_the_end(
        self, dag_name: str, run_id: str, begin: Callable[[], None]
    ) -> "tuple[Optional[RunSnapshot], Ending, int]":
        """Follow the run until it ends, or end it (stop first, explain after): the snapshot
        to report, why we stopped following, and the exit code."""
        request = self.request
        snapshot: Optional[RunSnapshot]
        try:
            with cancel.following():
                begin()
                snapshot = self._follow(dag_name, run_id)
            return snapshot, Ending.FINISHED, exit_code_for(snapshot.status, request.fail_on_partial)
        except PolicyEnd as end:
            snapshot = self._stop(dag_name, run_id) if end.stop_run else self._last()
            self._say(end.message, Level.ERROR)
            return snapshot, Ending(end.ending), end.exit_code
        except TimedOut:
            snapshot = self._stop(dag_name, run_id)
            self._say(f"timed out after {request.timeout:g}s; the run was stopped", Level.ERROR)
            return snapshot, Ending.TIMEOUT, ExitCode.TIMEOUT
        except Cancelled as cancelled:
            code = ExitCode.SIGINT if cancelled.signum == signal.SIGINT else ExitCode.SIGTERM
            # Ctrl-C or a CI host's cancel look alike from here: name the signal, not a guess.
            why = f"cancelled by {signal.Signals(cancelled.signum).name}"
            if not request.stop_on_cancel:
                self._say(f"{why}; the run was left running (--no-stop-on-cancel)", Level.WARNING)
                return self._last(), Ending.CANCELLED, code
            snapshot = self._stop(dag_name, run_id)
            self._say(f"{why}; the run was stopped", Level.WARNING)
            return snapshot, Ending.CANCELLED, code
        except OutputClosed:  # a cancellation too; what we print now reaches nobody but stderr
            if not request.stop_on_cancel:
                stdio.tell(f"stdout was closed; run {run_id} of {dag_name} was left running (--no-stop-on-cancel)")
                return self._last(), Ending.CANCELLED, ExitCode.OUTPUT_CLOSED
            snapshot = self._stop(dag_name, run_id)
            stdio.tell(f"stdout was closed; run {run_id} of {dag_name} was stopped")
            return snapshot, Ending.CANCELLED, ExitCode.OUTPUT_CLOSED
        except Exception as exc:
            if not self._following:
                raise  # no run yet: nothing to stop
            return self._failed(dag_name, run_id, exc)

    def _failed(self, dag_name: str, run_id: str, exc: Exception) -> "tuple[Optional[RunSnapshot], Ending, int]":
        """dagu-ci cannot go on: stop the run first (as on cancel), then say why; the summary follows."""
        if isinstance(exc, DaguCIError):
            message, code = exc.message, int(exc.exit_code)
        else:
            debug_traceback(os.environ)  # redacted, as in cli.main
            message, code = f"internal error: {type(exc).__name__}: {exc}", int(ExitCode.SERVER)
        self._failure = message
        if not self.request.stop_on_cancel:
            self._say(f"{message}; the run was left running (--no-stop-on-cancel)", Level.ERROR)
            return self._last(), Ending.ERROR, code
        snapshot = self._stop(dag_name, run_id)
        stopped = self._ended or (snapshot is not None and snapshot.is_over)
        self._say(f"{message}; {'the run was stopped' if stopped else 'the run could not be stopped'}", Level.ERROR)
        return snapshot, Ending.ERROR, code

    def _follow(self, dag_name: str, run_id: str) -> RunSnapshot:
        request = self.request
        deadline = self._began + request.timeout if request.timeout > 0 else None
        self._follower = Follower(
            self.client,
            dag_name,
            run_id,
            self.reporter.handle,
            FollowOptions(
                request.poll_interval,
                request.logs,
                deadline,
                push=request.push,
                wait_auto_retry=request.wait_auto_retry,
                sub_run_logs=request.sub_run_logs,
                ended_before=self._ended_before,
                check=all_of(
                    cancel.raise_if_lost,
                    stdio.raise_if_reader_gone,
                    Policies(
                        request,
                        self.client.ui_url(dag_name, run_id),
                        lambda: self.client.queue_position(dag_name, run_id),
                        self._say,
                    ).check,
                ),
            ),
        )
        return self._follower.follow()

    def _last(self) -> Optional[RunSnapshot]:
        return self._follower.last if self._follower else None

    def _stop(self, dag_name: str, run_id: str) -> Optional[RunSnapshot]:
        """End the run (stop, dequeue or reject), then watch it settle briefly."""
        last = self._last()
        if last is not None and last.is_over:
            return last
        status = last.status if last else None
        self._ended = end_run_or_say(self.client, dag_name, run_id, status, lambda text: self._say(text, Level.ERROR))
        if not self._ended:
            return last
        # Keep the same follower, so log cursors carry on and nothing shows twice.
        follower = self._follower or Follower(
            self.client, dag_name, run_id, self.reporter.handle, FollowOptions(logs=self.request.logs)
        )
        return follower.settle(SETTLE_SECONDS)

    def _finish(self, dag_name: str, run_id: str, snapshot: Optional[RunSnapshot], ending: Ending, code: int) -> int:
        result = RunResult(
            dag_file=self.request.dag,
            dag_name=dag_name,
            run_id=run_id,
            url=self.client.ui_url(dag_name, run_id),
            snapshot=snapshot,
            exit_code=int(code),
            ending=ending,
            duration=snapshot.duration
            if snapshot and snapshot.duration is not None
            else time.monotonic() - self._began,
            outputs=self._outputs(dag_name, run_id, snapshot),
        )
        if self.request.download_artifacts and snapshot is not None and snapshot.is_over:
            self._download_artifacts(dag_name, run_id, snapshot)
        # Left waiting on purpose, or ended (a pending auto-retry counts when we were told
        # not to wait for it): no backstop should stop it later.
        settled = snapshot is not None and (snapshot.status.is_terminal or ending is Ending.LEFT_WAITING)
        if self._state is not None and (settled or not self.request.stop_on_cancel):
            state.forget(self._state_dir, self._state)  # nothing left for a backstop to stop
        # A report that cannot be written is a warning: the exit code is the run's, and
        # the summary still shows.
        if self.request.result_file:
            try:
                result.write(self.request.result_file)
            except OSError as exc:
                self._say(
                    f"could not write --result-file {files.describe(exc, self.request.result_file)}", Level.WARNING
                )
        self._report(RunFinished(result))
        if self.request.print_json:
            print(json_text(redact_value(result.to_dict()), indent=2), flush=True)  # it may land in a CI log
        return int(code)

    def _report(self, event: Event) -> None:
        """Hand an event to the reporters; a host file they cannot write is only a warning."""
        try:
            self.reporter.handle(event)
        except OSError as exc:
            self._say(f"could not write {files.describe(exc)}", Level.WARNING)

    def _download_artifacts(self, dag_name: str, run_id: str, snapshot: RunSnapshot) -> None:
        directory = self.request.download_artifacts or ""
        if not self.client.api.features.artifacts or not snapshot.raw.get("artifactsAvailable"):
            self._say("the run has no artifacts to download")
            return
        try:
            written = artifacts.download_all(self.client, dag_name, run_id, directory)
        except DaguCIError as exc:
            self._say(f"artifacts not downloaded: {exc.message}", Level.ERROR)
            return
        except OSError as exc:
            self._say(f"artifacts not downloaded: could not write {files.describe(exc, directory)}", Level.ERROR)
            return
        self._say(f"downloaded {len(written)} artifact{'s' if len(written) != 1 else ''} into {directory}")

    def _outputs(self, dag_name: str, run_id: str, snapshot: Optional[RunSnapshot]) -> Dict[str, Any]:
        if snapshot is None or not snapshot.is_over or not any(s.status.has_started for s in snapshot.steps):
            return {}  # no step ran, so none wrote an output (a dequeued run is gone altogether)
        try:
            return self.client.get_outputs(dag_name, run_id)
        except DaguCIError as exc:
            self._say(f"could not read the run's outputs: {exc.message}", Level.WARNING)
            return {}

    def _say(self, text: str, level: Level = Level.INFO) -> None:
        self.reporter.handle(Notice(text, level))
