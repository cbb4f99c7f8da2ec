"""The start, or the attach: what will be sent (the Plan) and the one start request that may be
repeated, since the run id is fixed; a run that exists already is attached to, never started twice.
Also the ways to an existing run: find it (`latest` allowed), ask for a new attempt of it.

Nothing here follows a run: once it exists, lifecycle.Lifecycle takes it on.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Tuple

from dagu_ci.errors import DaguCIError, ExitCode, ServerError, UsageError
from dagu_ci.follow.events import Level, Notice, ServerDetected
from dagu_ci.hosts import provenance
from dagu_ci.hosts.runid import derive_run_id, validate_run_id
from dagu_ci.reporters import Reporter
from dagu_ci.run.backstop import end_run_or_say
from dagu_ci.run.request import Plan, RunRequest
from dagu_ci.server.api import AlreadyRunning, DaguClient, LabelsRefused, RunStart, Started, StartFailed
from dagu_ci.server.capabilities import Capabilities
from dagu_ci.server.client import ApiError, Retry, backoff_delay
from dagu_ci.server.dagyaml import load_dag_file
from dagu_ci.server.models import RunSnapshot, RunStatus, ServerInfo, dag_name_of
from dagu_ci.server.params import encode_params, expanding_values, typed_problems

if TYPE_CHECKING:
    from dagu_ci.hosts.base import Host

MAX_START_500S = 3  # a 500 with a Dagu error body is rarely a blip (API.md §3.5)
ACTIVE = (RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.WAITING)
RETRY_VISIBLE_WITHIN = 15.0  # how long a retried run may take to show its new attempt


class Starter:
    """Plans the start and sends it (or finds the run that exists), for one RunRequest."""

    def __init__(
        self,
        client: DaguClient,
        reporter: Reporter,
        request: RunRequest,
        host: "Host",
        remember: Callable[[str, str], None],
    ):
        self.client = client
        self.reporter = reporter
        self.request = request
        self.host = host
        self._remember = remember  # names a run on disk for the backstop (Lifecycle.remember)

    # -- before the start -----------------------------------------------------

    def prepare(self) -> Plan:
        """Server, DAG and params checked; the run id, labels and params to send decided."""
        request = self.request
        server = self._detect()
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

    def dry_run(self, plan: Plan) -> int:
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

    # -- the start ------------------------------------------------------------

    def launch(self, plan: Plan) -> bool:
        """Stop the superseded runs where asked, then start ours: True if it existed already."""
        if self.request.cancel_superseded:
            self._cancel_superseded(plan)
        return self._start(plan)

    def _cancel_superseded(self, plan: Plan) -> None:
        """Stop the older active runs of this DAG in the same group (a CI concurrency group)."""
        group = provenance.label(provenance.GROUP_KEY, self.request.cancel_superseded or "")
        if plan.label_field is None:
            self._say("--cancel-superseded needs Dagu 2.2 or newer (run labels); skipped", Level.WARNING)
            return
        runs = self.client.list_runs(plan.dag_name, [int(s) for s in ACTIVE], [group])
        for run in runs:
            run_id = str(run.get("dagRunId") or "")
            carried = list(run.get("labels") or []) + list(run.get("tags") or [])
            # Check the labels ourselves too: a server that ignores the filter must not make us stop strangers.
            if not run_id or run_id == plan.run_id or group not in carried:
                continue
            status = RunStatus.parse(run.get("status"))
            if status not in ACTIVE:
                continue
            self._say(f"superseded: stopping run {run_id} of {plan.dag_name} ({group})")
            end_run_or_say(self.client, plan.dag_name, run_id, status, lambda text: self._say(text, Level.ERROR))

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

    # -- an existing run ------------------------------------------------------

    def existing(self, run_id: str) -> "tuple[str, RunSnapshot]":
        """The run to attach to, or to retry (`latest`: the newest), and its DAG's name."""
        self._detect()
        dag_name, snapshot = self.client.run_of(self.request.dag, run_id)
        if snapshot is None:
            what = "no runs" if run_id == "latest" else f"no run {run_id!r}"
            raise UsageError(f"{self.request.dag} has {what} on {self.client.display_url}")
        return dag_name, snapshot

    def retry(self, dag_name: str, before: RunSnapshot, step: Optional[str]) -> None:
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
            # None: real 1.30.3 can read 404 while it makes the new attempt (not visible yet).
            now = self.client.find_run(dag_name, before.run_id)
            if now is not None and (now.status in ACTIVE or _attempt_key(now) != _attempt_key(before)):
                return
            time.sleep(min(0.2, self.request.poll_interval))
        raise ServerError(
            f"the server accepted the retry of run {before.run_id} but did not start it within {RETRY_VISIBLE_WITHIN:g}s"
        )

    def _detect(self) -> ServerInfo:
        server = self.client.detect()
        self.reporter.handle(ServerDetected(self.client.display_url, server))
        return server

    def _say(self, text: str, level: Level = Level.INFO) -> None:
        self.reporter.handle(Notice(text, level))


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
