"""GitHub Actions: a log group per step, annotations, step outputs and a job summary.

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
from dagu_ci.events import Event, Failed, Level, Notice, RunAccepted, RunFinished, RunStatusChanged
from dagu_ci.files import ENCODING_ERRORS, Target
from dagu_ci.models import RunStatus, StepSnapshot, StepStatus
from dagu_ci.redaction import redact
from dagu_ci.remotetext import EnvFormat, env_entry, fitted
from dagu_ci.reporters.grouped import GroupedReporter, StepTails
from dagu_ci.reporters.plain import waiting_steps
from dagu_ci.result import Ending, RunResult
from dagu_ci.term import Style, format_duration

ICONS = {
    "SUCCEEDED": "✅",
    "FAILED": "❌",
    "ABORTED": "⏹️",
    "REJECTED": "⛔",
    "PARTIALLY_SUCCEEDED": "⚠️",
    "SKIPPED": "⏭️",
    "RUNNING": "🔄",
    "RETRYING": "🔄",
    "QUEUED": "⏳",
    "WAITING": "⏸️",
    "NOT_STARTED": "⚪",
}


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
    def __init__(
        self,
        out: Optional[IO[str]] = None,
        style: Optional[Style] = None,
        env: Mapping[str, str] = os.environ,
        secrets_to_mask: Iterable[Optional[str]] = (),
    ):
        super().__init__(out, style)
        self.env = env
        self.tails = StepTails()
        self._accepted: Optional[RunAccepted] = None
        self._outputs: Dict[str, str] = {}
        for secret in secrets_to_mask:
            # Each line too: the runner masks line by line.
            for value in {secret, *(secret or "").splitlines()}:
                if value and value.strip():
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
        path = self.env.get("GITHUB_STEP_SUMMARY")
        if path:
            with open(path, "a", encoding="utf-8", errors=ENCODING_ERRORS) as handle:
                handle.write(redact(job_summary(result, self._accepted.params if self._accepted else "")))

    def on_failed(self, event: Failed) -> None:
        """dagu-ci ends on an error: the annotation, the outputs it can give, a summary."""
        self.flush_groups()
        self.command("error", event.message, title="dagu-ci")
        self.set_outputs({"status": "error", "exit-code": str(event.exit_code)})
        path = self.env.get("GITHUB_STEP_SUMMARY")
        if path:
            with open(path, "a", encoding="utf-8", errors=ENCODING_ERRORS) as handle:
                handle.write(redact(failure_summary(event, self._accepted)))

    # -- GitHub's files and annotations ---------------------------------------

    def targets(self) -> List[Target]:
        return [Target(name, self.env.get(name)) for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")]

    def set_outputs(self, values: Dict[str, str]) -> None:
        """Append to GITHUB_OUTPUT what is new or changed (the last value of a name wins)."""
        path = self.env.get("GITHUB_OUTPUT")
        changed = {key: value for key, value in values.items() if self._outputs.get(key) != value}
        if not path or not changed:
            return
        self._outputs.update(changed)
        with open(path, "a", encoding="utf-8", errors=ENCODING_ERRORS) as handle:
            for key, value in changed.items():
                handle.write(env_entry(EnvFormat.GITHUB_ENV, key, fitted(value, EnvFormat.GITHUB_ENV)))

    def _annotate(self, result: RunResult) -> None:
        steps = result.snapshot.steps if result.snapshot else ()
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
            why = {Ending.TIMEOUT: " (timed out)", Ending.CANCELLED: " (cancelled)", Ending.ERROR: " (error)"}.get(result.ending, "")
            self.command(
                "error",
                f"{result.dag_name} run {result.run_id} {label}{why}; exit code {result.exit_code}",
                title=f"Dagu run {label}",
            )


def job_summary(result: RunResult, params: str) -> str:
    """Markdown for GITHUB_STEP_SUMMARY: headline, steps table, link, params."""
    status = result.status
    icon = ICONS.get(status.name, "❔")
    label = status.label.replace("_", " ")
    ending = {Ending.TIMEOUT: " (timed out)", Ending.CANCELLED: " (cancelled)", Ending.ERROR: " (error)"}.get(result.ending, "")
    parts = [f"### {icon} Dagu run of `{_code(result.dag_name)}` {label}{ending}", ""]
    steps = result.snapshot.steps if result.snapshot else ()
    if steps:
        parts += ["| Step | Status | Duration |", "| --- | --- | --- |"]
        for step in steps:
            name = _md(step.name) + (" *(handler)*" if step.handler else "")
            step_label = step.status.label.replace("_", " ")
            parts.append(f"| {name} | {ICONS.get(step.status.name, '❔')} {step_label} | {format_duration(step.duration)} |")
        parts.append("")
    parts.append(
        f"Run [{_md(result.run_id)}]({_link_target(result.url)}) in the Dagu UI · exit code {result.exit_code}"
        f" · {format_duration(result.duration)}"
    )
    parts.append("")
    if params:
        fence = "```" + "`" * _longest_backtick_run(params)
        parts += ["**Params**", "", fence, params, fence, ""]
    return "\n".join(parts) + "\n"


def failure_summary(event: Failed, accepted: Optional[RunAccepted]) -> str:
    """Markdown for GITHUB_STEP_SUMMARY when dagu-ci ends on an error; the error is data."""
    what = f" `{_code(event.dag)}`" if event.dag else ""
    headline = f"dagu-ci: the run of{what} ended on an error" if accepted else f"dagu-ci could not run{what or ' the DAG'}"
    fence = "```" + "`" * _longest_backtick_run(event.message)
    parts = [f"### ❌ {headline}", "", fence, event.message, fence, ""]
    if accepted:
        parts.append(f"Run [{_md(accepted.run_id)}]({accepted.url}) in the Dagu UI · exit code {event.exit_code}")
    else:
        parts.append(f"exit code {event.exit_code}")
    return "\n".join(parts) + "\n\n"


def _md(text: str) -> str:
    """Inline Markdown text: remote names must not become links, HTML or table cells."""
    text = " ".join(text.split())
    for char in "\\`*_[]<>|#!~&":
        text = text.replace(char, "\\" + char)
    return text


def _link_target(url: str) -> str:
    """A URL inside `(...)`: a space, parenthesis or angle bracket would end the link early."""
    for char in " ()<>":
        url = url.replace(char, f"%{ord(char):02X}")
    return url


def _code(text: str) -> str:
    return " ".join(text.split()).replace("`", "'")


def _longest_backtick_run(text: str) -> int:
    longest = current = 0
    for char in text:
        current = current + 1 if char == "`" else 0
        longest = max(longest, current)
    return max(0, longest - 2)
