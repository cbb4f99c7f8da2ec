"""Which reporters a run gets: the CI host's console format, signs of life, JUnit if asked."""
from __future__ import annotations

import os
import sys
from enum import Enum
from typing import IO, Iterable, List, Mapping, Optional

from dagu_ci.reporters import Fanout, Reporter


class Host(Enum):
    PLAIN = "plain"  # terminals, Jenkins and any other CI
    GITHUB = "github"
    GITLAB = "gitlab"


REPORTER_CHOICES = ["auto"] + [host.value for host in Host]


def detect_host(env: Mapping[str, str] = os.environ) -> Host:
    """Both hosts set these to "true" in every job (and in a Docker action's container)."""
    if env.get("GITHUB_ACTIONS") == "true":
        return Host.GITHUB
    if env.get("GITLAB_CI") == "true":
        return Host.GITLAB
    return Host.PLAIN


def make_reporter(
    choice: str = "auto",
    junit: Optional[str] = None,
    secrets: Iterable[Optional[str]] = (),
    env: Mapping[str, str] = os.environ,
    out: Optional[IO[str]] = None,
) -> Reporter:
    from dagu_ci.reporters.progress import Progress, Screen

    host = detect_host(env) if choice == "auto" else Host(choice)
    screen = Screen(out or sys.stdout)
    console = _console(host, screen, env, secrets)
    reporters: List[Reporter] = [console, Progress(screen, console.say)]
    if junit:
        from dagu_ci.reporters.junit import JUnitReporter

        reporters.append(JUnitReporter(junit))
    return Fanout(*reporters)


def _console(host: Host, screen: IO[str], env: Mapping[str, str], secrets: Iterable[Optional[str]]):
    if host is Host.GITHUB:
        from dagu_ci.reporters.github import GitHubReporter

        return GitHubReporter(screen, env=env, secrets_to_mask=secrets)
    if host is Host.GITLAB:
        from dagu_ci.reporters.gitlab import GitLabReporter

        return GitLabReporter(screen, env=env)
    from dagu_ci.reporters.plain import PlainReporter

    return PlainReporter(screen)
