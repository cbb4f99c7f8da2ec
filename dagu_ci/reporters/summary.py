"""The Markdown summary of a run, for the hosts that show one: GitHub's job summary
(act_runner's too), Azure Pipelines' uploaded summary, Buildkite's annotation.

Remote text is data here too: step and DAG names are escaped, so they cannot add Markdown,
HTML, links or table cells; params and error messages sit in a fence longer than any run
of backticks they hold.
"""

from __future__ import annotations

from typing import Optional

from dagu_ci.follow.events import Failed, RunAccepted
from dagu_ci.run.result import Ending, RunResult
from dagu_ci.term import format_duration

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


def job_summary(result: RunResult, params: str) -> str:
    """Markdown: headline, steps table, link, params."""
    status = result.status
    icon = ICONS.get(status.name, "❔")
    label = status.label.replace("_", " ")
    ending = {Ending.TIMEOUT: " (timed out)", Ending.CANCELLED: " (cancelled)", Ending.ERROR: " (error)"}.get(
        result.ending, ""
    )
    parts = [f"### {icon} Dagu run of `{_code(result.dag_name)}` {label}{ending}", ""]
    tree = result.snapshot.tree_rows() if result.snapshot else []
    if tree:
        parts += ["| Step | Status | Duration |", "| --- | --- | --- |"]
        for depth, label, step in tree:
            # The tree, indented (non-breaking spaces: Markdown keeps them) and marked `↳`.
            indent = "\u00a0\u00a0" * (depth - 1) + "↳ " if depth else ""
            name = indent + _md(label) + (" *(handler)*" if step.handler else "")
            step_label = step.status.label.replace("_", " ")
            parts.append(
                f"| {name} | {ICONS.get(step.status.name, '❔')} {step_label} | {format_duration(step.duration)} |"
            )
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
    """Markdown for when dagu-ci ends on an error; the error is data."""
    what = f" `{_code(event.dag)}`" if event.dag else ""
    headline = (
        f"dagu-ci: the run of{what} ended on an error" if accepted else f"dagu-ci could not run{what or ' the DAG'}"
    )
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
