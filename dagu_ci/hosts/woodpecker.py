"""Woodpecker CI, and Drone whose plugin convention it shares: the image as a plugin step.

A plugin is a container step without `commands:`; the runner starts the image with no
arguments and hands it the step's `settings:` as PLUGIN_* variables, the key upper-cased
with `-` and `.` turned into `_` (`poll-interval` is PLUGIN_POLL_INTERVAL). The entrypoint
maps them as it maps the GitHub action's inputs. Output is plain text (the log viewer has
no groups); both hosts mask the values of secrets given with `from_secret:` by themselves.

The job is the workflow (Drone: the stage) of a pipeline of a repository, as a GitHub job
holds steps: a restarted pipeline gets a new number, so a new run; the same step run again
within the pipeline attaches. Steps share only the workspace, so the state file is kept
there, for a later step of the same workflow with `commands: [dagu-ci stop --from-state]`
and `when: status: [failure]`.
"""

from __future__ import annotations

from typing import Mapping, Optional

from dagu_ci.hosts.base import Host
from dagu_ci.hosts.provenance import Provenance


class Woodpecker(Host):
    name = "woodpecker"
    input_prefix = "PLUGIN_"

    @classmethod
    def runs_here(cls, env: Mapping[str, str]) -> bool:
        return env.get("CI") == "woodpecker" or env.get("DRONE") == "true"

    @property
    def is_drone(self) -> bool:
        return self.env.get("CI") != "woodpecker"

    def _get(self, woodpecker: str, drone: str) -> str:
        return self.env.get(drone if self.is_drone else woodpecker, "")

    def job(self) -> Optional[str]:
        number = self._get("CI_PIPELINE_NUMBER", "DRONE_BUILD_NUMBER")
        if not number:
            return None
        parts = [
            "dr" if self.is_drone else "wp",
            self._get("CI_REPO", "DRONE_REPO"),
            number,
            self._get("CI_WORKFLOW_NAME", "DRONE_STAGE_NAME"),
        ]
        return "-".join(part for part in parts if part)

    def provenance(self) -> Optional[Provenance]:
        return Provenance(
            "drone" if self.is_drone else "woodpecker",
            self._get("CI_PIPELINE_URL", "DRONE_BUILD_LINK"),
            self._get("CI_COMMIT_SHA", "DRONE_COMMIT_SHA"),
            self._get("CI_COMMIT_BRANCH", "DRONE_COMMIT_BRANCH") or self._get("CI_COMMIT_TAG", "DRONE_TAG"),
        )

    def workspace(self) -> Optional[str]:
        return self._get("CI_WORKSPACE", "DRONE_WORKSPACE") or None

    def action_input(self, name: str) -> str:
        key = name.upper().replace("-", "_").replace(".", "_")
        return self.env.get(f"{self.input_prefix}{key}", "").strip()

    def is_action(self) -> bool:
        return True  # a plugin step: the image runs with no arguments


HOST = Woodpecker
