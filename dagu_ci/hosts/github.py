"""GitHub Actions: the Docker action, workflow commands, GITHUB_OUTPUT and the job summary.

The host (GitHub), what act_runner shares with it (ActionsRunner, also Forgejo's and
Gitea's: hosts/forgejo.py) and the console (GitHubReporter): a log group per step,
annotations, step outputs and a job summary.

Security: every line that did not come from dagu-ci itself (remote logs, step
names, server messages) is either escaped as command data or printed between
`::stop-commands::<random token>` and `::<token>::`, so a DAG cannot run a
workflow command (`::add-mask::`, `::set-output`, ...) in the job.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import IO, Dict, Iterable, List, Mapping, Optional

from dagu_ci.controls import one_line
from dagu_ci.files import ENCODING_ERRORS, Target
from dagu_ci.follow.events import Event, Failed, Level, Notice, RunAccepted, RunFinished, RunStatusChanged
from dagu_ci.hosts.base import Host
from dagu_ci.hosts.provenance import Provenance
from dagu_ci.redaction import line_masks, redact
from dagu_ci.remotetext import EnvFormat, env_entry, fitted
from dagu_ci.reporters.grouped import GroupedReporter
from dagu_ci.reporters.plain import waiting_steps
from dagu_ci.reporters.summary import failure_summary, job_summary
from dagu_ci.reporters.tails import StepTails
from dagu_ci.run.result import Ending, RunResult
from dagu_ci.server.models import RunStatus, StepSnapshot, StepStatus
from dagu_ci.term import Style


def escape_data(text: str) -> str:
    """Workflow command data: the runner unescapes these, so a value cannot end the line."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def could_be_command(line: str) -> bool:
    """The runner trims a line and runs `::cmd::`; it finds the legacy `##[cmd]` anywhere,
    and splits lines on a bare CR too. Anything with either marker is held inert."""
    return "::" in line or "##[" in line


class GitHubReporter(GroupedReporter):
    """Workflow commands, as GitHub's runner and act_runner (Forgejo, Gitea) read them.

    `output_path` and `summary_path` are the host's GITHUB_OUTPUT and GITHUB_STEP_SUMMARY
    files (hosts/github.py, hosts/forgejo.py); None: not written.
    """

    def __init__(
        self,
        out: Optional[IO[str]] = None,
        style: Optional[Style] = None,
        output_path: Optional[str] = None,
        summary_path: Optional[str] = None,
        secrets_to_mask: Iterable[Optional[str]] = (),
    ):
        super().__init__(out, style)
        self.output_path = output_path or None
        self.summary_path = summary_path or None
        self.tails = StepTails()
        self._accepted: Optional[RunAccepted] = None
        self._outputs: Dict[str, str] = {}
        for value in line_masks(secrets_to_mask):  # each line too: the runner masks line by line
            # Straight out: write() would redact the very value to mask.
            self.out.write(f"::add-mask::{escape_data(value)}\n")
        self.out.flush()

    def handle(self, event: Event) -> None:
        self.tails.handle(event)
        super().handle(event)

    # -- output ---------------------------------------------------------------

    def command(self, name: str, data: str = "", **properties: str) -> None:
        props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
        self.emit([f"::{name}{' ' + props if props else ''}::{escape_data(data)}"])

    def cell(self, text: str) -> str:
        return text  # shown verbatim: write() fences the line

    def write(self, lines: List[str]) -> None:
        """Verbatim: lines that could hold a command are fenced, not altered."""
        if any(could_be_command(line) for line in lines):
            self.write_log(lines)
        else:
            self.emit(lines)

    def write_log(self, lines: List[str]) -> None:
        """A fresh token each time: nothing printed earlier can predict it."""
        if not lines:
            return
        token = secrets.token_hex(16)
        self.emit([f"::stop-commands::{token}", *lines, f"::{token}::"])

    def open_group(self, step: StepSnapshot, finished: Optional[StepSnapshot]) -> None:
        self.command("group", one_line(step.name))

    def close_group(self, step: StepSnapshot) -> None:
        self.command("endgroup")

    # -- events ---------------------------------------------------------------

    def on_accepted(self, event: RunAccepted) -> None:
        super().on_accepted(event)
        self._accepted = event
        # Early, so a job killed mid-run still tells later steps which run it was.
        self.set_outputs({"run-id": event.run_id, "url": event.url})

    def on_status(self, event: RunStatusChanged) -> None:
        super().on_status(event)
        if event.snapshot.status == RunStatus.WAITING:
            self.command(
                "notice",
                f"{waiting_steps(event.snapshot)} waits for approval: {self.run_url}",
                title="Dagu run waits for approval",
            )

    def on_notice(self, event: Notice) -> None:
        if event.step is None and event.level is not Level.INFO:
            self.command(event.level.value, event.text, title="dagu-ci")
        else:
            super().on_notice(event)

    def on_finished(self, event: RunFinished) -> None:
        super().on_finished(event)
        result = event.result
        self._annotate(result)
        self.set_outputs(
            {
                "run-id": result.run_id,
                "status": result.status.label,
                "exit-code": str(result.exit_code),
                "url": result.url,
                "outputs": json.dumps(result.outputs, sort_keys=True),
                "duration": f"{result.duration:.3f}" if result.duration is not None else "",
            }
        )
        self._summarize(job_summary(result, self._accepted.params if self._accepted else ""))

    def on_failed(self, event: Failed) -> None:
        """dagu-ci ends on an error: the annotation, the outputs it can give, a summary."""
        self.flush_groups()
        self.command("error", event.message, title="dagu-ci")
        self.set_outputs({"status": "error", "exit-code": str(event.exit_code)})
        self._summarize(failure_summary(event, self._accepted))

    # -- GitHub's files and annotations ---------------------------------------

    def targets(self) -> List[Target]:
        return [Target("GITHUB_OUTPUT", self.output_path), Target("GITHUB_STEP_SUMMARY", self.summary_path)]

    def _summarize(self, markdown: str) -> None:
        if self.summary_path:
            with open(self.summary_path, "a", encoding="utf-8", errors=ENCODING_ERRORS) as handle:
                handle.write(redact(markdown))

    def set_outputs(self, values: Dict[str, str]) -> None:
        """Append to GITHUB_OUTPUT what is new or changed (the last value of a name wins)."""
        path = self.output_path
        changed = {key: value for key, value in values.items() if self._outputs.get(key) != value}
        if not path or not changed:
            return
        self._outputs.update(changed)
        with open(path, "a", encoding="utf-8", errors=ENCODING_ERRORS) as handle:
            for key, value in changed.items():
                handle.write(env_entry(EnvFormat.GITHUB_ENV, key, fitted(value, EnvFormat.GITHUB_ENV)))

    def _annotate(self, result: RunResult) -> None:
        steps = result.snapshot.all_steps() if result.snapshot else ()  # a sub-run's steps too, by path
        failed = [step for step in steps if step.status == StepStatus.FAILED]
        for step in failed:
            lines = self.tails.last_lines(step)
            text = "\n".join(lines) if lines else f"step {step.name} failed"
            self.command("error", text, title=f"Dagu step {step.name} failed ({result.dag_name})")
        status = result.status
        label = status.label.replace("_", " ")
        if status == RunStatus.PARTIALLY_SUCCEEDED:
            names = ", ".join(step.name for step in failed) or "some steps"
            self.command(
                "warning",
                f"{result.dag_name} run {result.run_id} partially succeeded: {names} failed; exit code {result.exit_code}",
                title="Dagu run partially succeeded",
            )
        elif result.exit_code != 0 and not failed:
            why = {Ending.TIMEOUT: " (timed out)", Ending.CANCELLED: " (cancelled)", Ending.ERROR: " (error)"}.get(
                result.ending, ""
            )
            self.command(
                "error",
                f"{result.dag_name} run {result.run_id} {label}{why}; exit code {result.exit_code}",
                title=f"Dagu run {label}",
            )


# The main step appends `dagu_ci_key=…` to $GITHUB_STATE; the runner hands it to the action's
# post step (and no other step) as $STATE_dagu_ci_key.
ACTION_STATE_KEY = "dagu_ci_key"


class ActionsRunner(Host):
    """What GitHub's runner and act_runner (Forgejo, Gitea) share: the Docker action from
    `uses:`, GITHUB_STATE for the post step, GITHUB_OUTPUT and the workflow commands."""

    def workspace(self) -> Optional[str]:
        return self.env.get("GITHUB_WORKSPACE") or None

    def post_step_key(self) -> Optional[str]:
        return self.env.get(f"STATE_{ACTION_STATE_KEY}")

    def hand_key_to_post_step(self, key: str) -> None:
        """`key` is hex, so the line cannot carry anything else."""
        if self.env.get("GITHUB_STATE"):
            with open(self.env["GITHUB_STATE"], "a", encoding="utf-8") as handle:
                handle.write(f"{ACTION_STATE_KEY}={key}\n")

    def console(self, out: IO[str], secrets: Iterable[Optional[str]]) -> "GitHubReporter":
        env = self.env
        return GitHubReporter(
            out,
            output_path=env.get("GITHUB_OUTPUT"),
            summary_path=env.get("GITHUB_STEP_SUMMARY"),
            secrets_to_mask=secrets,
        )

    def is_action(self) -> bool:
        return True  # the Docker action from `uses:`: the image runs with no arguments


CONTAINER_WORKSPACE = "/github/workspace"  # where a Docker action sees the checkout


class GitHub(ActionsRunner):
    name = "github"

    @classmethod
    def runs_here(cls, env: Mapping[str, str]) -> bool:
        return env.get("GITHUB_ACTIONS") == "true"

    def job(self) -> Optional[str]:
        """The run, its attempt (a re-run is a new attempt) and the job's key in the workflow."""
        env = self.env
        if not env.get("GITHUB_RUN_ID"):
            return None
        parts = ["gh", env["GITHUB_RUN_ID"], env.get("GITHUB_RUN_ATTEMPT", "1"), env.get("GITHUB_JOB", "")]
        return "-".join(part for part in parts if part)

    def provenance(self) -> Optional[Provenance]:
        env = self.env
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        url = ""
        if env.get("GITHUB_REPOSITORY") and env.get("GITHUB_RUN_ID"):
            url = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
            if env.get("GITHUB_RUN_ATTEMPT"):
                url += f"/attempts/{env['GITHUB_RUN_ATTEMPT']}"
        return Provenance(
            self.name, url, env.get("GITHUB_SHA", ""), env.get("GITHUB_REF_NAME") or env.get("GITHUB_REF", "")
        )

    def temp_dir(self) -> Optional[str]:
        env = self.env
        if env.get("RUNNER_TEMP") and os.path.isdir(env["RUNNER_TEMP"]):
            return env["RUNNER_TEMP"]
        # A Docker container action on a runner that does not mount RUNNER_TEMP: HOME is
        # the job's temp home (/github/home), mounted into the main and the post step alike.
        if env.get("GITHUB_WORKSPACE") == CONTAINER_WORKSPACE and env.get("HOME") and os.path.isdir(env["HOME"]):
            return env["HOME"]
        return None


HOST = GitHub
