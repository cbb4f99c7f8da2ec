"""GitHub Actions: the Docker action, workflow commands, GITHUB_OUTPUT and the job summary.

The console is reporters/github.py (act_runner speaks the same commands: hosts/forgejo.py).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Mapping, Optional

from dagu_ci.hosts.base import ActionsRunner
from dagu_ci.provenance import Provenance

if TYPE_CHECKING:
    pass

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
