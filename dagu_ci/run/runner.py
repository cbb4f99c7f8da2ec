"""`dagu-ci run`, start to finish: detect, resolve, check, start (or attach), follow, report.

Cancellation, timeouts and policies always end in a stop request for the remote
run where one is due, so a CI job never leaves an orphaned run behind. From the
moment the run exists until it ends, a state file names it, so a later CI step
(`dagu-ci stop --from-state`) can stop it even if this process is killed.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Tuple

from dagu_ci import cancel, files, stdio
from dagu_ci.errors import Cancelled, DaguCIError, ExitCode, OutputClosed, PolicyEnd, ServerError, TimedOut, UsageError
from dagu_ci.follow.events import Event, Failed, Level, Notice, RunAccepted, RunFinished, ServerDetected
from dagu_ci.follow.follower import Follower, FollowOptions
from dagu_ci.follow.subruns import read_tree
from dagu_ci.hosts import provenance
from dagu_ci.hosts.runid import derive_run_id, validate_run_id
from dagu_ci.redaction import debug_traceback, redact_value
from dagu_ci.remotetext import json_text
from dagu_ci.reporters import Reporter
from dagu_ci.run import artifacts, state
from dagu_ci.run.backstop import end_run
from dagu_ci.run.result import Ending, RunResult, exit_code_for
from dagu_ci.server.api import AlreadyRunning, DaguClient, LabelsRefused, RunStart, Started, StartFailed
from dagu_ci.server.capabilities import Capabilities
from dagu_ci.server.client import ApiError, Retry, backoff_delay
from dagu_ci.server.dagyaml import load_dag_file
from dagu_ci.server.models import RunSnapshot, RunStatus, StepSnapshot, StepStatus, dag_name_of
from dagu_ci.server.params import Params, encode_params, expanding_values, typed_problems

if TYPE_CHECKING:
    from dagu_ci.hosts.base import Host

SETTLE_SECONDS = 15.0  # how long to watch a stopped run reach "aborted"
MAX_START_500S = 3  # a 500 with a Dagu error body is rarely a blip (API.md §3.5)
ACTIVE = (RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.WAITING)
RETRY_VISIBLE_WITHIN = 15.0  # how long a retried run may take to show its new attempt
QueuePosition = Tuple[str, int, int]  # the queue's name, the run's place, the queue's length


class OnWaiting:
    WAIT = "wait"
    FAIL = "fail"


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
    sub_run_logs: str = "all"  # all | failed | none: sub-DAG runs' step logs (issue 13)
    stop_on_cancel: bool = True
    fail_on_partial: bool = False
    result_file: Optional[str] = None
    on_waiting: str = OnWaiting.WAIT
    queue_timeout: float = 0.0
    wait_auto_retry: bool = True
    cancel_superseded: Optional[str] = None
    dry_run: bool = False
    state_dir: Optional[str] = None  # None: derived from the CI host's workspace
    spec: Optional[str] = None  # a DAG file from the repository, run inline (Capabilities.spec_runs)
    download_artifacts: Optional[str] = None  # folder for the run's artifacts (Capabilities.artifacts)
    print_json: bool = False  # --json: the result document on stdout at the end


@dataclass
class Plan:
    """Everything decided before the start request."""

    dag_name: str
    run_id: str
    params: str
    labels: List[str]
    label_field: Optional[str]
    declared_params: List[str]
    spec_text: str = ""
    param_defs: List[Dict[str, Any]] = field(default_factory=list)  # typed params (Dagu 2.5+)


class Runner:
    def __init__(self, client: DaguClient, reporter: Reporter, request: RunRequest, host: "Host"):
        self.client = client
        self.reporter = reporter
        self.request = request
        self.host = host  # the CI host, detected once (cli.Session)
        self._began = time.monotonic()
        self._follower: Optional[Follower] = None
        self._state: Optional[state.RunState] = None
        self._ended_before: "tuple[StepSnapshot, ...]" = ()  # a retry's earlier attempt
        self._following = False  # the run exists and is ours: any way out stops it first
        self._ended = False  # the last stop (or dequeue, or reject) went through
        self._failure = ""  # the error that ended the follow, if one did
        self._state_dir = request.state_dir or host.state_dir()
        self._state_key = secrets.token_hex(16)  # binds our state files to this step (Host.hand_key_to_post_step)

    def run(self) -> int:
        self.check_output_paths()
        plan = self._prepare()
        if self.request.dry_run:
            return self._dry_run(plan)
        stdio.raise_if_reader_gone()  # nobody reads what we would show: start nothing
        return self._guarded(plan.dag_name, plan.run_id, lambda: self._launch(plan))

    def check_output_paths(self) -> None:
        """Every file and folder this run will write, checked before anything starts
        (and before the server is asked): a bad path is a usage error, not a lost report."""
        request = self.request
        targets = [
            files.Target("--result-file", request.result_file),
            files.Target("--download-artifacts", request.download_artifacts, folder=True),
            files.Target("--state-dir", request.state_dir, folder=True),
            *self.reporter.targets(),
        ]
        for target in targets:
            if target.path:
                files.check_writable(target)

    def start(self) -> "tuple[str, str]":
        """`dagu-ci start`: the same checks and start request as `run`, then return the run id.

        No state file: the run is meant to outlive this process (a later job follows it).
        """
        plan = self._prepare()
        if self.request.cancel_superseded:
            self._cancel_superseded(plan)
        attached = self._start(plan)
        verb = "already existed:" if attached else ("queued" if self.request.enqueue else "started")
        self._say(
            f"{verb} run {plan.run_id} of {plan.dag_name}; view: {self.client.ui_url(plan.dag_name, plan.run_id)}"
        )
        return plan.dag_name, plan.run_id

    def follow(self, run_id: str, retry: bool = False, retry_step: Optional[str] = None) -> int:
        """`follow` (and `retry --follow`): attach to an existing run (`latest` allowed) and
        go on exactly as `run` does once its run exists."""
        self.check_output_paths()
        dag_name, snapshot = self._existing(run_id)

        def begin() -> None:
            if retry:
                # As the earlier attempt left them, its sub-runs too: what the retry does not
                # run again is not news, and a child's earlier end is not the retry's.
                before = (
                    snapshot
                    if snapshot.status in ACTIVE
                    else read_tree(self.client, snapshot, self.client.retry_window)
                )
                self._retry(dag_name, snapshot, retry_step)
                self._ended_before = before.all_steps()
            self._accepted(dag_name, snapshot.run_id, attached=True)

        return self._guarded(dag_name, snapshot.run_id, begin)

    def retry_only(self, run_id: str, step: Optional[str] = None) -> int:
        """`retry` without --follow: ask for the new attempt, see it begin, and leave it."""
        dag_name, snapshot = self._existing(run_id)
        self._retry(dag_name, snapshot, step)
        url = self.client.ui_url(dag_name, snapshot.run_id)
        self._say(f"view: {url}")
        if self.request.print_json:
            document = {"dag": self.request.dag, "name": dag_name, "run_id": snapshot.run_id, "step": step, "url": url}
            print(json_text(redact_value(document), indent=2), flush=True)
        return int(ExitCode.SUCCEEDED)

    def _existing(self, run_id: str) -> "tuple[str, RunSnapshot]":
        server = self.client.detect()
        self.reporter.handle(ServerDetected(self.client.display_url, server))
        dag_name, snapshot = self.client.run_of(self.request.dag, run_id)
        if snapshot is None:
            what = "no runs" if run_id == "latest" else f"no run {run_id!r}"
            raise UsageError(f"{self.request.dag} has {what} on {self.client.display_url}")
        return dag_name, snapshot

    def _retry(self, dag_name: str, before: RunSnapshot, step: Optional[str]) -> None:
        """Ask for a new attempt, then wait until the server shows it: right after the 200 it
        may still show the old attempt's end (API.md §3.5), which must not end our follow."""
        if before.status in ACTIVE:
            raise UsageError(f"run {before.run_id} is still {before.status.label}; only an ended run can be retried")
        if step and before.step(step) is None:
            raise UsageError(
                f"run {before.run_id} has no step {step!r} (steps: {', '.join(s.name for s in before.steps)})"
            )
        self.client.retry(dag_name, before.run_id, step)
        self._say(f"retry requested for run {before.run_id}" + (f", step {step} only" if step else ""))
        deadline = time.monotonic() + RETRY_VISIBLE_WITHIN
        while time.monotonic() < deadline:
            now = self.client.get_run(dag_name, before.run_id)
            if now.status in ACTIVE or _attempt_key(now) != _attempt_key(before):
                return
            time.sleep(min(0.2, self.request.poll_interval))
        raise ServerError(
            f"the server accepted the retry of run {before.run_id} but did not start it within {RETRY_VISIBLE_WITHIN:g}s"
        )

    # -- before the start -----------------------------------------------------

    def _prepare(self) -> Plan:
        request = self.request
        server = self.client.detect()
        self.reporter.handle(ServerDetected(self.client.display_url, server))
        spec_text = ""
        if request.spec:
            spec_text, dag = self._inline_spec(request.spec)
        else:
            dag = self.client.get_dag(request.dag)
        if dag.get("suspended"):
            raise UsageError(
                f"DAG {request.dag!r} is suspended on {self.client.display_url}: resume it in the Dagu UI first"
            )
        params = encode_params(request.params, server.features.json_params) if request.params else ""
        self._warn_expansion()
        run_id = (
            validate_run_id(request.run_id) if request.run_id else derive_run_id(self.host.job(), request.dag, params)
        )
        labels = self._labels()
        return Plan(
            dag_name=dag_name_of(dag, request.dag),
            run_id=run_id,
            params=params,
            labels=labels,
            label_field=server.features.label_field,
            declared_params=_declared_params(dag),
            spec_text=spec_text,
            param_defs=[d for d in (dag.get("dag") or {}).get("paramDefs") or [] if isinstance(d, dict)],
        )

    def _inline_spec(self, path: str) -> "tuple[str, Dict[str, Any]]":
        """A DAG from the repository: checked here first, then sent whole (API.md: POST /dag-runs)."""
        needed, what = ("spec_enqueue", "--spec with --enqueue") if self.request.enqueue else ("spec_runs", "--spec")
        if not getattr(self.client.api.features, needed):
            raise UsageError(
                f"{what} needs Dagu {Capabilities.needs(needed)} or newer; "
                f"{self.client.display_url} runs {self.client.api.version_text or 'an older version'}"
            )
        text, spec = load_dag_file(path)
        name = str(spec.get("name") or self.request.dag)
        return text, {"dag": {"name": name, "params": spec.get("params") or []}}

    def _labels(self) -> List[str]:
        origin = self.host.provenance()
        labels = origin.labels() if origin else []
        group = self.request.cancel_superseded
        if group is not None:
            if not provenance.label_value(group):
                raise UsageError(f"--cancel-superseded {group!r}: the key needs a letter or a digit")
            labels.append(provenance.label(provenance.GROUP_KEY, group))
        return labels

    def _warn_expansion(self) -> None:
        if self.client.api.features.literal_params:
            return
        keys = expanding_values(self.request.params)
        if keys:
            self._say(
                f"params {', '.join(keys)} hold $ or backticks, which Dagu before 2.3 expands on the server",
                Level.WARNING,
            )

    def _dry_run(self, plan: Plan) -> int:
        """Everything up to the start has been checked (server, auth, DAG); say what would run."""
        undeclared = [
            key
            for key in self.request.params
            if plan.declared_params and not key.isdigit() and key not in plan.declared_params
        ]
        if undeclared:
            problem = (
                f"params {', '.join(undeclared)} are not declared by {self.request.dag} "
                f"(it declares {', '.join(plan.declared_params)})"
            )
            if self.client.api.features.refuses_unknown_params:  # the start would be refused
                raise UsageError(f"{problem}; Dagu {self.client.api.version_text} refuses them")
            self._say(f"{problem}; this Dagu passes them on", Level.WARNING)
        refused = typed_problems(self.request.params, plan.param_defs)
        if refused:  # what the server's own check at the start would refuse
            raise UsageError(f"{'; '.join(refused)} ({self.request.dag} declares typed params)")
        verb = "enqueue" if self.request.enqueue else "start"
        self._say(f"dry run: would {verb} {plan.dag_name} (file {self.request.dag}) as run {plan.run_id}")
        if plan.params:
            self._say(f"dry run: params {plan.params}")
        if plan.labels and plan.label_field:
            self._say(f"dry run: {plan.label_field} {', '.join(plan.labels)}")
        self._say("dry run: nothing was started")
        return int(ExitCode.SUCCEEDED)

    # -- start ----------------------------------------------------------------

    def _launch(self, plan: Plan) -> None:
        if self.request.cancel_superseded:
            self._cancel_superseded(plan)
        attached = self._start(plan)
        self._accepted(plan.dag_name, plan.run_id, attached, plan.params)

    def _accepted(self, dag_name: str, run_id: str, attached: bool, params: str = "") -> None:
        """The run exists: name it on disk, then announce it."""
        self._following = True
        self._remember(dag_name, run_id)
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

    def _cancel_superseded(self, plan: Plan) -> None:
        """Stop the older active runs of this DAG in the same group (a CI concurrency group)."""
        group = provenance.label(provenance.GROUP_KEY, self.request.cancel_superseded or "")
        param = "labels" if plan.label_field != "tags" else "tags"
        if plan.label_field is None:
            self._say("--cancel-superseded needs Dagu 2.2 or newer (run labels); skipped", Level.WARNING)
            return
        runs = self.client.list_runs(plan.dag_name, [int(s) for s in ACTIVE], [group], label_param=param)
        for run in runs:
            run_id = str(run.get("dagRunId") or "")
            carried = list(run.get("labels") or []) + list(run.get("tags") or [])
            # Check the labels ourselves too: a server that ignores the filter must not make us stop strangers.
            if not run_id or run_id == plan.run_id or group not in carried:
                continue
            if RunStatus.parse(run.get("status")) not in ACTIVE:
                continue
            self._say(f"superseded: stopping run {run_id} of {plan.dag_name} ({group})")
            self._end_run(plan.dag_name, run_id, RunStatus.parse(run.get("status")))

    def _start(self, plan: Plan) -> bool:
        """POST start (or enqueue) until the run exists; True if it existed already (attach).

        Safe to repeat: the run id is fixed, so a second POST gets 409 for our own run.
        """
        request = self.request
        start = RunStart(plan.run_id, plan.params, request.singleton, tuple(plan.labels), plan.spec_text, plan.dag_name)
        retry = self.client.retry_window()
        attempt = server_errors = 0
        reason = ""
        while True:
            attempt += 1
            try:
                return (
                    self.client.start_run(request.dag, start, request.enqueue, until=retry.deadline) is Started.EXISTING
                )
            except LabelsRefused as exc:
                self._say(
                    f"the server refused the provenance labels ({exc.server_message}); starting without them",
                    Level.WARNING,
                )
                start = replace(start, labels=())
                continue
            except AlreadyRunning:  # a refusal, not a doubt: nothing to retry
                raise
            except StartFailed as exc:  # a 500: rarely a blip (API.md §3.5)
                server_errors += 1
                if server_errors >= MAX_START_500S:
                    raise
                reason = exc.reason
            except ServerError as exc:  # transport error, a cut answer, or a retryable status
                reason = exc.message
            # Uncertain: the server may have created the run anyway.
            exists = self._exists(plan.dag_name, plan.run_id, retry)
            if exists:
                return False
            delay = backoff_delay(attempt, None)
            if delay > retry.remaining():
                if exists is None:  # we cannot tell: name the run on disk, for the backstop
                    self._remember(plan.dag_name, plan.run_id)
                    self._say(
                        f"the server may have created run {plan.run_id} anyway: "
                        "`dagu-ci stop --from-state` stops it if so",
                        Level.WARNING,
                    )
                raise ServerError(f"could not start {request.dag} on {self.client.display_url}: {reason}")
            time.sleep(delay)

    def _exists(self, dag_name: str, run_id: str, retry: Retry) -> Optional[bool]:
        """Does the run exist? None when the server would not say."""
        try:
            return self.client.get_run(dag_name, run_id, Retry.single(retry.deadline)) is not None
        except ApiError as exc:
            return False if exc.status == 404 else None
        except DaguCIError:
            return None

    def _remember(self, dag_name: str, run_id: str) -> None:
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

    # -- follow and end -------------------------------------------------------

    def _guarded(self, dag_name: str, run_id: str, begin: Callable[[], None]) -> int:
        with cancel.signals_raise_cancelled():
            snapshot, ending, code = self._to_the_end(dag_name, run_id, begin)
            code = self._finish(dag_name, run_id, snapshot, ending, code)
            if self._failure:  # the host hears of the error too: annotation, outputs, summary
                self._report(Failed(self._failure, code, self.request.dag))
            return code

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
                check=_checks(
                    cancel.raise_if_lost,
                    stdio.raise_if_reader_gone,
                    _Policies(
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
        if not self._end_run(dag_name, run_id, last.status if last else None):
            return last
        # Keep the same follower, so log cursors carry on and nothing shows twice.
        follower = self._follower or Follower(
            self.client, dag_name, run_id, self.reporter.handle, FollowOptions(logs=self.request.logs)
        )
        return follower.settle(SETTLE_SECONDS)

    def _end_run(self, dag_name: str, run_id: str, status: Optional[RunStatus]) -> bool:
        try:
            self._ended = bool(end_run(self.client, dag_name, run_id, status))
            return self._ended
        except DaguCIError as exc:
            self._say(f"could not stop run {run_id}: {exc.message}", Level.ERROR)
            return False

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


class _Policies:
    """Checked on every snapshot: --on-waiting and --queue-timeout, and where a queued run stands."""

    QUEUE_LOOK_EVERY = 10.0

    def __init__(
        self, request: RunRequest, url: str, position: Callable[[], Optional[QueuePosition]], say: Callable[[str], None]
    ):
        self.request = request
        self.url = url
        self.ran = False
        self.queued_since: Optional[float] = None
        self._position = position
        self._say = say
        self._last_look = 0.0
        self._last_position: Optional[QueuePosition] = None

    def check(self, snapshot: RunSnapshot) -> None:
        status = snapshot.status
        if status == RunStatus.QUEUED:
            self._show_position()
        if status not in (RunStatus.QUEUED, RunStatus.NOT_STARTED) or any(s.status.has_started for s in snapshot.steps):
            self.ran = True
        if status == RunStatus.WAITING and self.request.on_waiting == OnWaiting.FAIL:
            steps = ", ".join(s.name for s in snapshot.steps if s.status == StepStatus.WAITING) or "a step"
            raise PolicyEnd(
                f"run waits for approval of {steps}; it was left waiting (--on-waiting fail). Approve it at {self.url}",
                ExitCode.ABORTED,
                stop_run=False,
                ending=Ending.LEFT_WAITING.value,
            )
        if status == RunStatus.QUEUED and not self.ran and self.request.queue_timeout > 0:
            now = time.monotonic()
            self.queued_since = self.queued_since or now
            if now - self.queued_since >= self.request.queue_timeout:
                raise PolicyEnd(
                    f"the run never started: still queued after {self.request.queue_timeout:g}s; it was dequeued",
                    ExitCode.TIMEOUT,
                    stop_run=True,
                    ending=Ending.QUEUE_TIMEOUT.value,
                )

    def _show_position(self) -> None:
        now = time.monotonic()
        if now - self._last_look < self.QUEUE_LOOK_EVERY:
            return
        self._last_look = now
        position = self._position()
        if position and position != self._last_position:
            queue, place, total = position
            self._say(f"queue {queue}: position {place} of {total}")
        self._last_position = position


def _attempt_key(snapshot: RunSnapshot) -> Tuple[Any, ...]:
    """What changes with a new attempt. Dagu 1.30 keeps the run's log file and whole-second
    start time on a retry, and a short retry may end before any poll sees it running: then
    only the steps it ran again tell, by their new log files (and the status may differ)."""
    return snapshot.raw.get("log"), snapshot.started_at, snapshot.status, tuple(s.stdout for s in snapshot.steps)


def _declared_params(dag: Mapping[str, Any]) -> List[str]:
    """Names the DAG declares: `params` entries like "KEY=default" (API.md §4.1)."""
    names = []
    for item in (dag.get("dag") or {}).get("params") or []:
        text = str(item.get("name") if isinstance(item, dict) else item)
        name = text.split("=", 1)[0].strip()
        if name and not name.isdigit():
            names.append(name)
    return names


def _checks(*checks: Callable[[RunSnapshot], None]) -> Callable[[RunSnapshot], None]:
    def check(snapshot: RunSnapshot) -> None:
        for each in checks:
            each(snapshot)

    return check
