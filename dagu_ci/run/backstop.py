"""Ending a run from outside the follow loop: the one stop procedure, and the
`stop --from-state` backstop that CI hosts run after a job was cancelled."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

from dagu_ci.errors import DaguCIError, UsageError
from dagu_ci.run import state
from dagu_ci.server.api import DaguClient
from dagu_ci.server.client import ApiError
from dagu_ci.server.models import RunStatus, StepStatus

if TYPE_CHECKING:
    from dagu_ci.hosts.base import Host

REJECT_REASON = "CI job cancelled or timed out"
SETTLE_POLL = 0.25  # how often `stop --wait` looks whether the run has ended


def end_run(client: DaguClient, dag_name: str, run_id: str, status: Optional[RunStatus] = None) -> str:
    """Stop, dequeue or reject the run, by its last known status (API.md §5.1).

    The stop request goes out first when the status is unknown or running; only
    a refusal (400 not_running) makes us look closer. What was done: "stopped",
    "dequeued", "rejected", or "" (nothing to end).
    """
    if status == RunStatus.QUEUED:
        client.dequeue(dag_name, run_id)
        return "dequeued"
    if status == RunStatus.WAITING:
        return _reject_waiting(client, dag_name, run_id)
    try:
        client.stop(dag_name, run_id)
        return "stopped"
    except ApiError as exc:
        if exc.status == 404:
            return ""
        if exc.status != 400:
            raise
    snapshot = client.find_run(dag_name, run_id)
    if snapshot is None or snapshot.is_over:
        return ""
    if snapshot.status == RunStatus.QUEUED:
        client.dequeue(dag_name, run_id)
        return "dequeued"
    if snapshot.status == RunStatus.WAITING:
        return _reject_waiting(client, dag_name, run_id)
    raise DaguCIError(f"the server would not stop run {run_id} (status {snapshot.status.label})")


def end_run_or_say(
    client: DaguClient, dag_name: str, run_id: str, status: Optional[RunStatus], say: Callable[[str], None]
) -> bool:
    """end_run where dagu-ci goes on either way: a refusal is said, not raised. True if it ended something."""
    try:
        return bool(end_run(client, dag_name, run_id, status))
    except DaguCIError as exc:
        say(f"could not stop run {run_id}: {exc.message}")
        return False


def _reject_waiting(client: DaguClient, dag_name: str, run_id: str) -> str:
    """A waiting run has no process to stop; rejecting its approval ends it (status 8)."""
    snapshot = client.find_run(dag_name, run_id)
    waiting = [s.name for s in snapshot.steps if s.status == StepStatus.WAITING] if snapshot else []
    for step in waiting:
        client.reject(dag_name, run_id, step, REJECT_REASON)
    return "rejected" if waiting else ""


def stop_run(
    client: DaguClient, dag_file: str, run_id: str, wait_seconds: float, say: Callable[[str], None]
) -> Dict[str, Optional[str]]:
    """`stop DAG RUN_ID`: end the run (`latest`: the newest), then wait up to `wait_seconds`
    for it to show its end. Its stop record."""
    name, snapshot = client.run_of(dag_file, run_id)
    if snapshot is None:
        what = "no runs" if run_id == "latest" else f"no run {run_id!r}"
        raise UsageError(f"{what} of {dag_file!r} on {client.display_url}")
    run_id = snapshot.run_id  # `latest` resolved: say which run
    if snapshot.is_over:
        say(f"run {run_id} of {name} already ended ({snapshot.status.label}); nothing to stop")
        return stop_record(dag_file, name, run_id, "", snapshot.status)
    action = end_run(client, name, run_id, snapshot.status)
    say(f"stop requested for run {run_id} of {name} ({snapshot.status.label} until now)")
    deadline = time.monotonic() + wait_seconds
    while wait_seconds and time.monotonic() < deadline:
        snapshot = client.get_run(name, run_id)
        if snapshot.is_over:
            say(f"run {run_id} is {snapshot.status.label}")
            break
        time.sleep(SETTLE_POLL)
    return stop_record(dag_file, name, run_id, action, snapshot.status)


def stop_record(dag: str, name: str, run_id: str, action: str, status: Optional[RunStatus]) -> Dict[str, Optional[str]]:
    """One stopped (or left alone) run, as `stop --json` prints it."""
    return {
        "dag": dag,
        "name": name,
        "run_id": run_id,
        "action": action or "none",
        "status": status.label if status else None,
    }


@dataclass(frozen=True)
class Binding:
    """What a state file must match for this job's backstop to act on it."""

    job: str  # the current CI job (Host.job)
    server: Optional[Tuple[str, str, int]]  # origin of the configured --url
    key: Optional[str] = None  # in the GitHub action's post step: its main step's secret

    @classmethod
    def current(cls, host: "Host", url: str) -> "Binding":
        return cls(host.job() or "", state.origin(url), host.post_step_key())

    def refusal(self, run: state.RunState) -> str:
        """Why the backstop must leave `run` alone, or "" when it may stop it."""
        if run.job != self.job:
            return f"written by another CI job ({state.shown(run.job) or 'none'}), not this one ({self.job or 'none'})"
        if self.key is not None and run.key != self.key:
            return "written by another step of this job, not by this action's main step"
        named = state.origin(run.url)
        if named != self.server:
            return (
                f"it names {state.show_origin(named)}, not the configured {state.show_origin(self.server)}"
                " (--url); nothing was sent there"
            )
        return ""


def stop_from_state(
    directory: str,
    client: DaguClient,
    binding: Binding,
    say: Callable[[str], None],
    warn: Callable[[str], None],
) -> List[Dict[str, Optional[str]]]:
    """Stop every still-active run this job's state files name, on the configured server
    with its credentials; a stop_record for each. Other files are left as they are."""
    found = state.load_all(directory)
    if not found:
        say(f"no run state in {directory}: nothing to stop")
        return []
    records = []
    for entry in found:
        run = entry.run
        reason = "not a state file dagu-ci can read" if run is None else binding.refusal(run)
        if reason or run is None:
            warn(f"left alone {state.shown(entry.path)}: {reason}")
            continue
        snapshot = client.find_run(run.name, run.run_id)
        action = ""
        which = f"run {state.shown(run.run_id)} of {state.shown(run.name)}"
        if snapshot is None or snapshot.is_over:
            label = snapshot.status.label if snapshot else "unknown to the server"
            say(f"{which} already ended ({label}); nothing to stop")
        else:
            action = end_run(client, run.name, run.run_id, snapshot.status)
            if action:
                say(f"{action} {which} ({snapshot.status.label} until now)")
        records.append(stop_record(run.dag, run.name, run.run_id, action, snapshot.status if snapshot else None))
        state.remove(entry.path)
    if not records:
        say("no run of this job to stop")
    return records
