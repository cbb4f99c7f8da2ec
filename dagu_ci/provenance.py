"""Where a run came from: labels that point from the Dagu run back to the CI run."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Mapping, Optional

GROUP_KEY = "dagu-ci-group"

# Dagu (2.2+) refuses a run whose label value is not [a-zA-Z0-9][a-zA-Z0-9_./-]* (<= 255
# chars), and lower-cases what it keeps. So a value is made to fit: a URL loses its scheme
# and any other character becomes "-". Lower-casing here too lets a label we send be
# compared with the one the server gives back.
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")
_NOT_ALLOWED = re.compile(r"[^a-z0-9_./-]+")
_LEADING = re.compile(r"^[^a-z0-9]+")
MAX_VALUE = 255


@dataclass(frozen=True)
class Provenance:
    ci: str  # github, gitlab, jenkins
    run_url: str = ""
    sha: str = ""
    ref: str = ""

    def labels(self) -> List[str]:
        pairs = [("ci", self.ci), ("ci-url", self.run_url), ("sha", self.sha), ("ref", self.ref)]
        fitted = [(key, label_value(value)) for key, value in pairs]
        return [f"{key}={value}" for key, value in fitted if value]


def detect(env: Mapping[str, str]) -> Optional[Provenance]:
    if env.get("GITHUB_ACTIONS") == "true" or env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        url = ""
        if env.get("GITHUB_REPOSITORY") and env.get("GITHUB_RUN_ID"):
            url = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
            if env.get("GITHUB_RUN_ATTEMPT"):
                url += f"/attempts/{env['GITHUB_RUN_ATTEMPT']}"
        return Provenance("github", url, env.get("GITHUB_SHA", ""), env.get("GITHUB_REF_NAME") or env.get("GITHUB_REF", ""))
    if env.get("GITLAB_CI") == "true" or env.get("CI_JOB_ID"):
        return Provenance("gitlab", env.get("CI_JOB_URL", ""), env.get("CI_COMMIT_SHA", ""), env.get("CI_COMMIT_REF_NAME", ""))
    if env.get("JENKINS_URL") or env.get("BUILD_TAG"):
        ref = env.get("BRANCH_NAME") or env.get("GIT_BRANCH", "")
        return Provenance("jenkins", env.get("BUILD_URL", ""), env.get("GIT_COMMIT", ""), ref)
    return None


def label(key: str, value: str) -> str:
    return f"{key}={label_value(value)}"


def label_value(text: str) -> str:
    """`text` as a value Dagu accepts and keeps unchanged (see _NOT_ALLOWED)."""
    value = _SCHEME.sub("", text.strip().lower())
    return _LEADING.sub("", _NOT_ALLOWED.sub("-", value))[:MAX_VALUE]

