"""Azure Pipelines: `##[group]` per step, `##vso[...]` logging commands for issues, output
variables, secrets and the Markdown summary.

The agent runs a `##vso[` command found anywhere in a line, and formats `##[...]` lines. So
every line with remote text goes through remotetext.inert (a backslash before the `[` of
any `##word[`), and the data of our own commands is escaped as the agent unescapes it
(`%AZP25`, `%0D`, `%0A`; in properties `%3B` and `%5D` too), so nothing a DAG prints or
names can start, end or extend a command; issue texts, which the agent shows again in the
log, are inert too.

Run ids: the build, the job's attempt (re-running failed jobs is a new attempt, so a new
run) and the job's id; a task retried within the attempt (`retryCountOnTaskFailure`)
attaches. State files go to the agent's temp directory, cleaned after each job and outside
the checkout, where a later step with `condition: or(failed(), canceled())` finds them.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import IO, Dict, Iterable, List, Mapping, Optional
from urllib.parse import quote

from dagu_ci.controls import one_line
from dagu_ci.files import Target, write_atomic
from dagu_ci.follow.events import Event, Failed, Level, Notice, RunAccepted, RunFinished
from dagu_ci.hosts.base import Host
from dagu_ci.hosts.provenance import Provenance
from dagu_ci.redaction import line_masks, redact
from dagu_ci.remotetext import inert
from dagu_ci.reporters.grouped import GroupedReporter
from dagu_ci.reporters.summary import failure_summary, job_summary
from dagu_ci.reporters.tails import StepTails
from dagu_ci.server.models import StepSnapshot, StepStatus
from dagu_ci.term import Style


def escape_data(text: str) -> str:
    """A command's data on one line, read back by the agent exactly as given."""
    return text.replace("%", "%AZP25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(";", "%3B").replace("]", "%5D")


class AzureReporter(GroupedReporter):
    """`summary_dir`: where the Markdown summary is written for the agent to upload."""

    def __init__(
        self,
        out: Optional[IO[str]] = None,
        style: Optional[Style] = None,
        summary_dir: Optional[str] = None,
        secrets_to_mask: Iterable[Optional[str]] = (),
    ):
        super().__init__(out, style)
        self.summary_dir = summary_dir
        self.tails = StepTails()
        self._accepted: Optional[RunAccepted] = None
        self._outputs: Dict[str, str] = {}
        for value in line_masks(secrets_to_mask):
            self.out.write(f"##vso[task.setsecret]{escape_data(value)}\n")  # not through redact()
        self.out.flush()

    def handle(self, event: Event) -> None:
        self.tails.handle(event)
        super().handle(event)

    def command(self, name: str, data: str = "", **properties: str) -> None:
        props = ";".join(f"{key}={escape_property(value)}" for key, value in properties.items())
        self.emit([f"##vso[{name}{' ' + props if props else ''}]{escape_data(data)}"])

    def issue(self, level: str, text: str) -> None:
        """An error or warning of the run: its text is shown in the log and the build summary."""
        self.command("task.logissue", inert(text), type=level)

    def open_group(self, step: StepSnapshot, finished: Optional[StepSnapshot]) -> None:
        self.emit([f"##[group]{inert(one_line(step.name))}"])

    def close_group(self, step: StepSnapshot) -> None:
        self.emit(["##[endgroup]"])

    # -- events ---------------------------------------------------------------

    def on_accepted(self, event: RunAccepted) -> None:
        super().on_accepted(event)
        self._accepted = event
        self.set_outputs({"DAGU_RUN_ID": event.run_id, "DAGU_RUN_URL": event.url})

    def on_notice(self, event: Notice) -> None:
        if event.step is None and event.level is not Level.INFO:
            self.issue(event.level.value, event.text)
        else:
            super().on_notice(event)

    def on_finished(self, event: RunFinished) -> None:
        super().on_finished(event)
        result = event.result
        steps = result.snapshot.steps if result.snapshot else ()
        for step in steps:
            if step.status == StepStatus.FAILED:
                lines = self.tails.last_lines(step)
                text = "\n".join(lines) if lines else f"step {step.name} failed"
                self.issue("error", f"Dagu step {step.name} failed ({result.dag_name}):\n{text}")
        if result.exit_code != 0 and not any(step.status == StepStatus.FAILED for step in steps):
            label = result.status.label.replace("_", " ")
            self.issue("error", f"{result.dag_name} run {result.run_id} {label}; exit code {result.exit_code}")
        self.set_outputs(
            {
                "DAGU_RUN_ID": result.run_id,
                "DAGU_RUN_URL": result.url,
                "DAGU_STATUS": result.status.label,
                "DAGU_EXIT_CODE": str(result.exit_code),
                "DAGU_OUTPUTS": json.dumps(result.outputs, sort_keys=True, separators=(",", ":")),
                "DAGU_DURATION": f"{result.duration:.3f}" if result.duration is not None else "",
            }
        )
        self._upload_summary(job_summary(result, self._accepted.params if self._accepted else ""))

    def on_failed(self, event: Failed) -> None:
        self.flush_groups()
        self.issue("error", event.message)
        self.set_outputs({"DAGU_STATUS": "error", "DAGU_EXIT_CODE": str(event.exit_code)})
        self._upload_summary(failure_summary(event, self._accepted))

    # -- variables and the summary --------------------------------------------

    def targets(self) -> List[Target]:
        return [Target("AGENT_TEMPDIRECTORY", self.summary_dir, folder=True)]

    def set_outputs(self, values: Dict[str, str]) -> None:
        """Output variables of this step (and variables of the job's later steps)."""
        for name, value in values.items():
            if self._outputs.get(name) != value:
                self._outputs[name] = value
                self.command("task.setvariable", value, variable=name, isoutput="true")

    def _upload_summary(self, markdown: str) -> None:
        if not self.summary_dir:
            return
        path = os.path.join(self.summary_dir, f"dagu-ci-summary-{secrets.token_hex(8)}.md")
        write_atomic(path, redact(markdown))
        self.command("task.uploadsummary", path)


class Azure(Host):
    name = "azure"

    @classmethod
    def runs_here(cls, env: Mapping[str, str]) -> bool:
        return env.get("TF_BUILD", "").lower() == "true"

    def job(self) -> Optional[str]:
        env = self.env
        if not env.get("BUILD_BUILDID"):
            return None
        parts = ["az", env["BUILD_BUILDID"], env.get("SYSTEM_JOBATTEMPT", "1"), env.get("SYSTEM_JOBID", "")]
        return "-".join(part for part in parts if part)

    def provenance(self) -> Optional[Provenance]:
        env = self.env
        url = ""
        if env.get("SYSTEM_COLLECTIONURI") and env.get("SYSTEM_TEAMPROJECT") and env.get("BUILD_BUILDID"):
            collection = env["SYSTEM_COLLECTIONURI"].rstrip("/")
            url = f"{collection}/{quote(env['SYSTEM_TEAMPROJECT'])}/_build/results?buildId={env['BUILD_BUILDID']}"
        ref = env.get("BUILD_SOURCEBRANCH", "")
        ref = ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else ref
        return Provenance(self.name, url, env.get("BUILD_SOURCEVERSION", ""), ref)

    def temp_dir(self) -> Optional[str]:
        return self.env.get("AGENT_TEMPDIRECTORY") or None

    def workspace(self) -> Optional[str]:
        return self.env.get("BUILD_SOURCESDIRECTORY") or None

    def console(self, out: IO[str], secrets: Iterable[Optional[str]]) -> AzureReporter:
        return AzureReporter(out, summary_dir=self.temp_dir(), secrets_to_mask=secrets)


HOST = Azure
