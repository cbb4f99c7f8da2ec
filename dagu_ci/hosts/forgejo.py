"""Forgejo and Gitea Actions: act_runner (Forgejo Runner) runs the same Docker action.

The runner speaks GitHub's workflow commands as far as dagu-ci uses them: `::add-mask::`,
`::stop-commands::` (so remote log lines stay inert behind the same fence), GITHUB_OUTPUT
and GITHUB_STATE. What it does not show degrades to plain log lines: `::group::`,
`::error::` and `::warning::` appear as text, not as folds or annotations, and the job
summary (GITHUB_STEP_SUMMARY) is shown only by Gitea 1.27 with a runner that uploads it;
the log ends with the same summary table everywhere.

Both runners set GITHUB_ACTIONS=true too, so this host is detected before GitHub. Forgejo
Runner (v7 and later) sets FORGEJO_ACTIONS beside GITEA_ACTIONS.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional

from dagu_ci.hosts.github import ActionsRunner
from dagu_ci.hosts.provenance import Provenance


class Forgejo(ActionsRunner):
    name = "forgejo"

    @classmethod
    def runs_here(cls, env: Mapping[str, str]) -> bool:
        return env.get("FORGEJO_ACTIONS") == "true" or env.get("GITEA_ACTIONS") == "true"

    @property
    def is_forgejo(self) -> bool:
        return self.env.get("FORGEJO_ACTIONS") == "true"

    def job(self) -> Optional[str]:
        """As on GitHub: the run (an id unique on the instance), its attempt (a re-run of the
        job is a new attempt) and the job's key; a step run again within the attempt attaches."""
        env = self.env
        if not env.get("GITHUB_RUN_ID"):
            return None
        prefix = "fj" if self.is_forgejo else "gt"
        parts = [prefix, env["GITHUB_RUN_ID"], env.get("GITHUB_RUN_ATTEMPT", "1"), env.get("GITHUB_JOB", "")]
        return "-".join(part for part in parts if part)

    def provenance(self) -> Optional[Provenance]:
        """Forgejo serves a run at its number in the repository; Gitea (1.26 and later) at its id."""
        env = self.env
        run = env.get("GITHUB_RUN_NUMBER") if self.is_forgejo else env.get("GITHUB_RUN_ID")
        url = ""
        if env.get("GITHUB_SERVER_URL") and env.get("GITHUB_REPOSITORY") and run:
            url = f"{env['GITHUB_SERVER_URL'].rstrip('/')}/{env['GITHUB_REPOSITORY']}/actions/runs/{run}"
        ref = env.get("GITHUB_REF_NAME") or env.get("GITHUB_REF", "")
        return Provenance("forgejo" if self.is_forgejo else "gitea", url, env.get("GITHUB_SHA", ""), ref)

    def temp_dir(self) -> Optional[str]:
        """The runner's folder of the job's command files (/var/run/act/workflow): a volume of
        the job, mounted into the action's main and post containers, outside the checkout.
        (RUNNER_TEMP is /tmp of each container, gone before the post step.)"""
        for name in ("GITHUB_STATE", "GITHUB_OUTPUT"):
            folder = os.path.dirname(self.env.get(name, ""))
            if folder and os.path.isdir(folder):
                return folder
        return None


HOST = Forgejo
