"""GitLab CI: a collapsible log section per step and a dotenv report for later jobs.

The job id (`CI_JOB_ID`) is new for each retry of a job, as for a re-run elsewhere; the
state file goes to the job's temp directory beside the checkout, `$CI_PROJECT_DIR.tmp`.

Sections use the escape format GitLab documents
(`\\e[0Ksection_start:<unix time>:<name>[collapsed=true]\\r\\e[0K<header>`).
The dotenv file (path in DAGU_DOTENV, which the template sets) holds
DAGU_RUN_ID, DAGU_RUN_URL, DAGU_RUN_DAG, DAGU_STATUS, DAGU_EXIT_CODE,
DAGU_DURATION and DAGU_OUTPUTS. It never holds DAGU_DAG, DAGU_PARAMS or DAGU_URL:
dotenv variables outrank a later job's own `variables:`, and the template reads those.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import IO, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from dagu_ci.controls import one_line
from dagu_ci.files import Target, write_atomic
from dagu_ci.follow.events import Failed, Level, Notice, RunAccepted, RunFinished
from dagu_ci.hosts.base import Host
from dagu_ci.hosts.provenance import Provenance
from dagu_ci.remotetext import EnvFormat, env_entry, fitted
from dagu_ci.reporters.grouped import GroupedReporter
from dagu_ci.server.models import StepSnapshot, StepStatus
from dagu_ci.term import Style

DOTENV_LIMIT = 5 * 1024  # GitLab rejects a bigger dotenv report (and so fails the job)
_SLUG = re.compile(r"[^a-zA-Z0-9_.-]+")
_MARKER = re.compile(r"section_(start|end):")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def section_start(name: str, header: str, at: float, collapsed: bool = False) -> str:
    option = "[collapsed=true]" if collapsed else ""
    return f"\033[0Ksection_start:{int(at)}:{name}{option}\r\033[0K{header}"


def section_end(name: str, at: float) -> str:
    return f"\033[0Ksection_end:{int(at)}:{name}\r\033[0K"


class GitLabReporter(GroupedReporter):
    def __init__(
        self,
        out: Optional[IO[str]] = None,
        style: Optional[Style] = None,
        env: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(out, style)
        self.dotenv_path = env.get("DAGU_DOTENV") or None
        self.clock = clock
        self._sections: Dict[str, Tuple[str, bool]] = {}  # step name -> (section, shown whole)
        self._count = 0
        self._dotenv: Dict[str, str] = {}

    # -- sections -------------------------------------------------------------

    def open_group(self, step: StepSnapshot, finished: Optional[StepSnapshot]) -> None:
        self._count += 1
        name = f"dagu_step_{self._count}_{_SLUG.sub('_', step.name)[:40]}"
        # A step shown whole after the fact keeps its own (server) times, so GitLab shows its
        # duration; a live one uses ours at both ends, never a mix of two clocks.
        started = finished.started_at if finished is not None and finished.finished_at is not None else None
        whole = started is not None
        self._sections[step.name] = (name, whole)
        at = started.timestamp() if started is not None else self.clock()
        collapsed = finished is not None and finished.status == StepStatus.SUCCEEDED
        header = self.style.paint(f"{self.arrow} {one_line(step.name)}", "bold")
        self.write([section_start(name, header, at, collapsed)])

    def close_group(self, step: StepSnapshot) -> None:
        name, whole = self._sections.pop(step.name, ("", False))
        if not name:
            return
        at = step.finished_at.timestamp() if whole and step.finished_at else self.clock()
        self.write([section_end(name, at)])

    def write_log(self, lines: List[str]) -> None:
        # A remote line must not close or open our sections.
        self.write([_MARKER.sub(lambda m: f"section_{m.group(1)}\u200b:", line) for line in lines])

    # -- dotenv ---------------------------------------------------------------

    def on_accepted(self, event: RunAccepted) -> None:
        super().on_accepted(event)
        self._update({"DAGU_RUN_ID": event.run_id, "DAGU_RUN_URL": event.url, "DAGU_RUN_DAG": event.dag_file})

    def on_finished(self, event: RunFinished) -> None:
        super().on_finished(event)
        result = event.result
        values = {
            "DAGU_RUN_ID": result.run_id,
            "DAGU_RUN_URL": result.url,
            "DAGU_RUN_DAG": result.dag_file,
            "DAGU_STATUS": result.status.label,
            "DAGU_EXIT_CODE": str(result.exit_code),
            "DAGU_DURATION": f"{result.duration:.3f}" if result.duration is not None else "",
            "DAGU_OUTPUTS": json.dumps(result.outputs, sort_keys=True, separators=(",", ":")),
        }
        if len(_dotenv_text({**self._dotenv, **values})) > DOTENV_LIMIT:
            values["DAGU_OUTPUTS"] = ""
            self.handle(
                Notice("the run's outputs are too big for GitLab's dotenv report; DAGU_OUTPUTS is empty", Level.WARNING)
            )
        self._update(values)

    def on_failed(self, event: Failed) -> None:
        """dagu-ci ends on an error: later jobs still learn how it ended."""
        self.flush_groups()
        values = {"DAGU_RUN_DAG": event.dag} if event.dag and "DAGU_RUN_DAG" not in self._dotenv else {}
        self._update({**values, "DAGU_STATUS": "error", "DAGU_EXIT_CODE": str(event.exit_code)})

    def targets(self) -> List[Target]:
        return [Target("DAGU_DOTENV", self.dotenv_path)]

    def _update(self, values: Dict[str, str]) -> None:
        if not self.dotenv_path:
            return
        self._dotenv.update(values)
        write_atomic(self.dotenv_path, _dotenv_text(self._dotenv))


def _dotenv_text(values: Dict[str, str]) -> str:
    # dagu-ci's own variables: what GitLab's dotenv cannot carry (line breaks) is made blank.
    return "".join(env_entry(EnvFormat.DOTENV, key, fitted(value, EnvFormat.DOTENV)) for key, value in values.items())


class GitLab(Host):
    name = "gitlab"

    @classmethod
    def runs_here(cls, env: Mapping[str, str]) -> bool:
        return env.get("GITLAB_CI") == "true"

    def job(self) -> Optional[str]:
        return f"gl-{self.env['CI_JOB_ID']}" if self.env.get("CI_JOB_ID") else None

    def provenance(self) -> Optional[Provenance]:
        env = self.env
        return Provenance(
            self.name, env.get("CI_JOB_URL", ""), env.get("CI_COMMIT_SHA", ""), env.get("CI_COMMIT_REF_NAME", "")
        )

    def temp_dir(self) -> Optional[str]:
        """GitLab Runner's $CI_PROJECT_DIR.tmp, on the builds volume (RUNNER_TEMP_PROJECT_DIR)."""
        if self.env.get("RUNNER_TEMP_PROJECT_DIR"):
            return self.env["RUNNER_TEMP_PROJECT_DIR"]
        project = self.env.get("CI_PROJECT_DIR")
        return project.rstrip("/") + ".tmp" if project else None

    def workspace(self) -> Optional[str]:
        return self.env.get("CI_PROJECT_DIR") or None

    def console(self, out: IO[str], secrets: Iterable[Optional[str]]) -> GitLabReporter:
        return GitLabReporter(out, env=self.env)


HOST = GitLab
