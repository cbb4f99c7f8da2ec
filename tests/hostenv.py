"""The environment dagu-ci runs in under test and benchmark: this machine's, without the
CI host variables that would change its behaviour (run ids, reporters, credentials)."""

from __future__ import annotations

import os
from typing import Dict, Optional

_HOST_PREFIXES = (
    "GITHUB_",
    "GITLAB_",
    "CI_",
    "INPUT_",
    "DAGU_",
    "RUNNER_",
    "GITEA_",
    "FORGEJO_",
    "PLUGIN_",
    "DRONE",
    "BUILDKITE",
    "SYSTEM_",
    "AGENT_",
    "BUILD_",
)
_HOST_NAMES = {"CI", "JENKINS_URL", "TF_BUILD", "NO_COLOR", "FORCE_COLOR", "TERM"}


def host_free_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(_HOST_PREFIXES) and key not in _HOST_NAMES
    }
    env.update(extra or {})
    return env
