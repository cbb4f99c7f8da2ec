"""`dagu-ci run`, `start`, `follow` and `retry`: detect, resolve, check, start (or attach), follow, report.

The Runner only wires the parts together: the start, or the way to an existing run
(start.Starter), and what happens once the run exists, to the exit code (lifecycle.Lifecycle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from dagu_ci import files, stdio
from dagu_ci.errors import ExitCode
from dagu_ci.follow.events import Notice
from dagu_ci.follow.subruns import read_tree
from dagu_ci.redaction import redact_value
from dagu_ci.remotetext import json_text
from dagu_ci.reporters import Reporter
from dagu_ci.run.lifecycle import Lifecycle
from dagu_ci.run.request import Plan, RunRequest
from dagu_ci.run.start import ACTIVE, Starter
from dagu_ci.server.api import DaguClient
from dagu_ci.server.models import StepSnapshot

if TYPE_CHECKING:
    from dagu_ci.hosts.base import Host


class Runner:
    def __init__(self, client: DaguClient, reporter: Reporter, request: RunRequest, host: "Host"):
        self.client = client
        self.reporter = reporter
        self.request = request
        self.host = host  # the CI host, detected once (cli.Session)
        self._lifecycle = Lifecycle(client, reporter, request, host)
        self._starter = Starter(client, reporter, request, host, remember=self._lifecycle.remember)

    def run(self) -> int:
        self.check_output_paths()
        plan = self._starter.prepare()
        if self.request.dry_run:
            return self._starter.dry_run(plan)
        stdio.raise_if_reader_gone()  # nobody reads what we would show: start nothing
        return self._lifecycle.guarded(plan.dag_name, plan.run_id, lambda: self._launch(plan))

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
        plan = self._starter.prepare()
        attached = self._starter.launch(plan)
        verb = "already existed:" if attached else ("queued" if self.request.enqueue else "started")
        self.reporter.handle(
            Notice(
                f"{verb} run {plan.run_id} of {plan.dag_name}; view: {self.client.ui_url(plan.dag_name, plan.run_id)}"
            )
        )
        return plan.dag_name, plan.run_id

    def follow(self, run_id: str, retry: bool = False, retry_step: Optional[str] = None) -> int:
        """`follow` (and `retry --follow`): attach to an existing run (`latest` allowed) and
        go on exactly as `run` does once its run exists."""
        self.check_output_paths()
        dag_name, snapshot = self._starter.existing(run_id)

        def begin() -> None:
            ended_before: "tuple[StepSnapshot, ...]" = ()
            if retry:
                # As the earlier attempt left them, its sub-runs too: what the retry does not
                # run again is not news, and a child's earlier end is not the retry's.
                before = (
                    snapshot
                    if snapshot.status in ACTIVE
                    else read_tree(self.client, snapshot, self.client.retry_window)
                )
                self._starter.retry(dag_name, snapshot, retry_step)
                ended_before = before.all_steps()
            self._lifecycle.accepted(dag_name, snapshot.run_id, attached=True, ended_before=ended_before)

        return self._lifecycle.guarded(dag_name, snapshot.run_id, begin)

    def retry_only(self, run_id: str, step: Optional[str] = None) -> int:
        """`retry` without --follow: ask for the new attempt, see it begin, and leave it."""
        dag_name, snapshot = self._starter.existing(run_id)
        self._starter.retry(dag_name, snapshot, step)
        url = self.client.ui_url(dag_name, snapshot.run_id)
        self.reporter.handle(Notice(f"view: {url}"))
        if self.request.print_json:
            document = {"dag": self.request.dag, "name": dag_name, "run_id": snapshot.run_id, "step": step, "url": url}
            print(json_text(redact_value(document), indent=2), flush=True)
        return int(ExitCode.SUCCEEDED)

    def _launch(self, plan: Plan) -> None:
        attached = self._starter.launch(plan)
        self._lifecycle.accepted(plan.dag_name, plan.run_id, attached, plan.params)
