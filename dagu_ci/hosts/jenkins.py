"""Jenkins: plain text (the console is no terminal), `docker.image(...).inside` in the image.

`BUILD_TAG` (`jenkins-<job>-<build>`) names the build: a stage retried within it (`retry`)
attaches to its run; a rebuild is a new build, so a new run. `WORKSPACE_TMP` (the
workspace's `@tmp` sibling, which `.inside` mounts) keeps the state file out of the checkout.
"""

from __future__ import annotations

from typing import Mapping, Optional

from dagu_ci.hosts.base import Host
from dagu_ci.hosts.provenance import Provenance


class Jenkins(Host):
    name = "jenkins"

    @classmethod
    def runs_here(cls, env: Mapping[str, str]) -> bool:
        return bool(env.get("JENKINS_URL") or env.get("BUILD_TAG"))

    def job(self) -> Optional[str]:
        return self.env.get("BUILD_TAG") or None

    def provenance(self) -> Optional[Provenance]:
        env = self.env
        ref = env.get("BRANCH_NAME") or env.get("GIT_BRANCH", "")
        return Provenance(self.name, env.get("BUILD_URL", ""), env.get("GIT_COMMIT", ""), ref)

    def temp_dir(self) -> Optional[str]:
        return self.env.get("WORKSPACE_TMP") or None

    def workspace(self) -> Optional[str]:
        return self.env.get("WORKSPACE") or None


HOST = Jenkins
