"""Buildkite: `---` groups, the summary as an annotation, run facts as meta-data.

A line starting with `---` (collapsed) or `+++` (expanded) opens a group in Buildkite's log,
and `^^^ +++` expands the group before it: dagu-ci opens one per step and expands a failed
step's. Remote log lines sit behind the gutter, so none starts a group; escape sequences
(Buildkite's own timestamps and links among them) are removed as everywhere.

With `buildkite-agent` on the PATH (it is in every job on an agent, and in a container where
the Docker plugin mounts it): the summary becomes an annotation of the build (one per run,
`--context dagu-ci-<run id>`), `dagu-run-id`, `dagu-run-url`, `dagu-status` and
`dagu-exit-code` are set as meta-data for later steps, and the token and password are added
to the agent's redactor (the agent also redacts variables named *_TOKEN and *_PASSWORD by
itself). Without it, the log alone.

Run ids: the build and the step (and the parallel job's index). Buildkite runs a retry,
automatic (a lost agent) or manual, as a new job of the same step: it attaches to the run
the first job started, so a retried job never starts a second run (start a new build to run
the DAG again). Buildkite gives a job no private directory: the state file goes to
`.dagu-ci/` in the checkout, and names the build's id, which no commit can know beforehand.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import IO, Dict, Iterable, List, Mapping, Optional

from dagu_ci.controls import one_line
from dagu_ci.follow.events import Failed, Level, Notice, RunAccepted, RunFinished
from dagu_ci.hosts.base import Host
from dagu_ci.hosts.provenance import Provenance
from dagu_ci.redaction import redact
from dagu_ci.remotetext import inert
from dagu_ci.reporters.grouped import GroupedReporter
from dagu_ci.reporters.summary import failure_summary, job_summary
from dagu_ci.server.models import RunStatus, StepSnapshot, StepStatus
from dagu_ci.term import Style

AGENT = "buildkite-agent"
AGENT_TIMEOUT = 30.0  # seconds for one agent call; the run's result never waits longer
STYLES = {RunStatus.SUCCEEDED: "success", RunStatus.PARTIALLY_SUCCEEDED: "warning"}


class BuildkiteReporter(GroupedReporter):
    """`agent`: the path of buildkite-agent, or None."""

    def __init__(
        self,
        out: Optional[IO[str]] = None,
        style: Optional[Style] = None,
        agent: Optional[str] = None,
        secrets_to_mask: Iterable[Optional[str]] = (),
    ):
        super().__init__(out, style)
        self.agent = agent
        self._accepted: Optional[RunAccepted] = None
        self._meta: Dict[str, str] = {}
        for secret in secrets_to_mask:
            if secret and secret.strip():
                self._call(["redactor", "add"], secret)

    def open_group(self, step: StepSnapshot, finished: Optional[StepSnapshot]) -> None:
        self.emit([f"--- {inert(one_line(step.name))}"])

    def close_group(self, step: StepSnapshot) -> None:
        if step.status == StepStatus.FAILED:
            self.emit(["^^^ +++"])

    # -- events ---------------------------------------------------------------

    def on_accepted(self, event: RunAccepted) -> None:
        super().on_accepted(event)
        self._accepted = event
        self._set_meta({"dagu-run-id": event.run_id, "dagu-run-url": event.url})

    def on_finished(self, event: RunFinished) -> None:
        super().on_finished(event)
        result = event.result
        self._set_meta(
            {
                "dagu-run-id": result.run_id,
                "dagu-run-url": result.url,
                "dagu-status": result.status.label,
                "dagu-exit-code": str(result.exit_code),
            }
        )
        summary = job_summary(result, self._accepted.params if self._accepted else "")
        self._annotate(summary, STYLES.get(result.status, "error"), result.run_id)

    def on_failed(self, event: Failed) -> None:
        self.flush_groups()
        self._set_meta({"dagu-status": "error", "dagu-exit-code": str(event.exit_code)})
        self._annotate(failure_summary(event, self._accepted), "error", self._accepted.run_id if self._accepted else "")

    # -- the agent ------------------------------------------------------------

    def _set_meta(self, values: Dict[str, str]) -> None:
        for key, value in values.items():
            if value and self._meta.get(key) != value:
                self._meta[key] = value
                self._call(["meta-data", "set", key, value])

    def _annotate(self, markdown: str, style: str, run_id: str) -> None:
        context = f"dagu-ci-{run_id}" if run_id else "dagu-ci"
        self._call(["annotate", "--style", style, "--context", context], redact(markdown))

    def _call(self, args: List[str], stdin: str = "") -> None:
        """One agent command; a failure is a warning, never the run's end."""
        if not self.agent:
            return
        try:
            done = subprocess.run(
                [self.agent, *args],
                input=stdin.encode("utf-8", "backslashreplace"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=AGENT_TIMEOUT,
            )
            problem = "" if done.returncode == 0 else f"exit code {done.returncode}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            problem = str(exc)
        if problem:
            super().on_notice(Notice(f"{AGENT} {args[0]} failed ({problem})", Level.WARNING))


class Buildkite(Host):
    name = "buildkite"

    @classmethod
    def runs_here(cls, env: Mapping[str, str]) -> bool:
        return env.get("BUILDKITE") == "true"

    def job(self) -> Optional[str]:
        env = self.env
        if not env.get("BUILDKITE_BUILD_ID"):
            return None
        parts = [
            "bk",
            env["BUILDKITE_BUILD_ID"],
            env.get("BUILDKITE_STEP_ID", ""),
            env.get("BUILDKITE_PARALLEL_JOB", ""),
        ]
        return "-".join(part for part in parts if part)

    def provenance(self) -> Optional[Provenance]:
        env = self.env
        url = env.get("BUILDKITE_BUILD_URL", "")
        if url and env.get("BUILDKITE_JOB_ID"):
            url += f"#{env['BUILDKITE_JOB_ID']}"
        ref = env.get("BUILDKITE_TAG") or env.get("BUILDKITE_BRANCH", "")
        return Provenance(self.name, url, env.get("BUILDKITE_COMMIT", ""), ref)

    def workspace(self) -> Optional[str]:
        return self.env.get("BUILDKITE_BUILD_CHECKOUT_PATH") or None

    def console(self, out: IO[str], secrets: Iterable[Optional[str]]) -> BuildkiteReporter:
        return BuildkiteReporter(out, agent=shutil.which(AGENT, path=self.env.get("PATH")), secrets_to_mask=secrets)


HOST = Buildkite
