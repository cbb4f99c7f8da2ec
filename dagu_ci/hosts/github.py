"""GitHub Actions: the Docker action, workflow commands, GITHUB_OUTPUT and the job summary.

The console is reporters/github.py (act_runner speaks the same commands: hosts/forgejo.py).
"""
from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING, Iterable, Mapping, Optional

from dagu_ci.hosts.base import Host
from dagu_ci.provenance import Provenance

if TYPE_CHECKING:
    from dagu_ci.reporters.plain import PlainReporter

# The main step appends `dagu_ci_key=…` to $GITHUB_STATE; GitHub hands it to this
# action's post step (and no other step) as $STATE_dagu_ci_key.
STATE_KEY = "dagu_ci_key"
CONTAINER_WORKSPACE = "/github/workspace"  # where a Docker action sees the checkout


class GitHub(Host):
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
        return Provenance(self.name, url, env.get("GITHUB_SHA", ""), env.get("GITHUB_REF_NAME") or env.get("GITHUB_REF", ""))

    def temp_dir(self) -> Optional[str]:
        env = self.env
        if env.get("RUNNER_TEMP") and os.path.isdir(env["RUNNER_TEMP"]):
            return env["RUNNER_TEMP"]
        # A Docker container action on a runner that does not mount RUNNER_TEMP: HOME is
        # the job's temp home (/github/home), mounted into the main and the post step alike.
        if env.get("GITHUB_WORKSPACE") == CONTAINER_WORKSPACE and env.get("HOME") and os.path.isdir(env["HOME"]):
            return env["HOME"]
        return None

    def workspace(self) -> Optional[str]:
        return self.env.get("GITHUB_WORKSPACE") or None

    def post_step_key(self) -> Optional[str]:
        return self.env.get(f"STATE_{STATE_KEY}")

    def hand_key_to_post_step(self, key: str) -> None:
        """`key` is hex, so the line cannot carry anything else."""
        if self.env.get("GITHUB_STATE"):
            with open(self.env["GITHUB_STATE"], "a", encoding="utf-8") as handle:
                handle.write(f"{STATE_KEY}={key}\n")

    def console(self, out: IO[str], secrets: Iterable[Optional[str]]) -> "PlainReporter":
        from dagu_ci.reporters.github import GitHubReporter

        env = self.env
        return GitHubReporter(out, output_path=env.get("GITHUB_OUTPUT"), summary_path=env.get("GITHUB_STEP_SUMMARY"),
                              secrets_to_mask=secrets)

    def is_action(self) -> bool:
        return True  # the Docker action: the image runs with no arguments


HOST = GitHub
