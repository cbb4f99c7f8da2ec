"""`--junit PATH`: a JUnit XML report with one testcase per DAG step, for any CI host.

GitLab's merge-request test widget, Jenkins' `junit` step and GitHub test-report
actions all read it. A failed step's testcase carries its last log lines.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from typing import List, Optional

from dagu_ci.files import Target, write_atomic
from dagu_ci.follow.events import Event, RunFinished
from dagu_ci.reporters import Reporter
from dagu_ci.reporters.tails import StepTails
from dagu_ci.run.result import RunResult
from dagu_ci.server.models import TREE_SEP, StepStatus

_FAILURES = {StepStatus.FAILED, StepStatus.ABORTED, StepStatus.REJECTED}
_NOT_RUN = {StepStatus.SKIPPED, StepStatus.NOT_STARTED}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(text: str) -> str:
    return _NOT_XML.sub("", _ANSI.sub("", text))


class JUnitReporter(Reporter):
    def __init__(self, path: str):
        self.path = path
        self.tails = StepTails()

    def handle(self, event: Event) -> None:
        self.tails.handle(event)
        super().handle(event)

    def on_finished(self, event: RunFinished) -> None:
        write_atomic(self.path, junit_xml(event.result, self.tails))

    def targets(self) -> List[Target]:
        return [Target("--junit", self.path)]


def junit_xml(result: RunResult, tails: StepTails) -> str:
    # Every step of the tree; a sub-run's step is named by its path (its classname: the run's path).
    steps = result.snapshot.all_steps() if result.snapshot else ()
    suite = ET.Element(
        "testsuite",
        name=xml_text(result.dag_name),
        tests=str(len(steps)),
        failures=str(sum(step.status in _FAILURES for step in steps)),
        errors="0",
        skipped=str(sum(step.status in _NOT_RUN for step in steps)),
        time=_seconds(result.duration),
        hostname=xml_text(socket.gethostname() or "localhost"),
    )
    started = result.snapshot.started_at if result.snapshot else None
    if started is not None:
        suite.set("timestamp", started.strftime("%Y-%m-%dT%H:%M:%S"))
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("dagu.run_id", result.run_id),
        ("dagu.url", result.url),
        ("dagu.status", result.status.label),
        ("dagu.exit_code", str(result.exit_code)),
    ):
        ET.SubElement(properties, "property", name=name, value=xml_text(value))
    for step in steps:
        parent, _, leaf = step.name.rpartition(TREE_SEP) if step.depth else ("", "", step.name)
        classname = f"{result.dag_name}{TREE_SEP}{parent}" if parent else result.dag_name
        case = ET.SubElement(
            suite,
            "testcase",
            name=xml_text(leaf),
            classname=xml_text(f"{classname}.handlers" if step.handler else classname),
            time=_seconds(step.duration),
        )
        if step.status in _FAILURES:
            lines: List[str] = tails.last_lines(step)
            failure = ET.SubElement(
                case, "failure", message=f"step {xml_text(step.name)} {step.status.label}", type=step.status.label
            )
            failure.text = xml_text("\n".join(lines))
        elif step.status in _NOT_RUN:
            ET.SubElement(case, "skipped", message="skipped" if step.status == StepStatus.SKIPPED else "did not run")
    suites = ET.Element(
        "testsuites",
        name=xml_text(f"dagu {result.dag_name}"),
        tests=suite.get("tests", "0"),
        failures=suite.get("failures", "0"),
        errors="0",
        time=suite.get("time", "0"),
    )
    suites.append(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _seconds(value: Optional[float]) -> str:
    return f"{value or 0:.3f}"
