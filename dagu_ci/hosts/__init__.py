"""The CI hosts, in the order they are detected: the first whose marker the environment holds
is the host, detected once (cli.Session) and handed down. Forgejo and Gitea set
GITHUB_ACTIONS too, so they come before GitHub; `local` (a terminal, any other CI) matches
everywhere and comes last.

Each name is a module of this package whose `HOST` is its Host class. The modules are
imported only when a host is needed, so `dagu-ci --help` and `--version` stay cheap.
"""

from __future__ import annotations

import importlib
from typing import IO, TYPE_CHECKING, Iterable, List, Mapping, Optional, Type, cast

if TYPE_CHECKING:
    from dagu_ci.hosts.base import Host
    from dagu_ci.reporters import Reporter

REGISTRY = (
    "forgejo",
    "github",
    "gitlab",
    "azure",
    "buildkite",
    "woodpecker",
    "jenkins",
    "local",
)
PLAIN = "plain"  # the reporter choice for the local host's plain text
REPORTER_CHOICES = ["auto", PLAIN, *(name for name in REGISTRY if name != "local")]


def host_class(name: str) -> "Type[Host]":
    host: "Type[Host]" = importlib.import_module(f"{__name__}.{name}").HOST
    return host


def detect(env: Mapping[str, str]) -> "Host":
    for name in REGISTRY:
        cls = host_class(name)
        if cls.runs_here(env):
            return cls(env)
    raise AssertionError("the local host runs everywhere")  # pragma: no cover


def named(name: str, env: Mapping[str, str]) -> "Host":
    """The host of a `--reporter` choice, reading the same environment."""
    return host_class("local" if name == PLAIN else name)(env)


def make_reporter(
    host: "Host",
    choice: str = "auto",
    junit: Optional[str] = None,
    secrets: Iterable[Optional[str]] = (),
    out: "Optional[IO[str]]" = None,
) -> "Reporter":
    """The console of the host (or of the host `choice` names), signs of life, JUnit if asked."""
    import sys

    from dagu_ci.reporters import Fanout
    from dagu_ci.reporters.progress import Progress, Screen

    console_host = host if choice == "auto" else named(choice, host.env)
    screen = Screen(out or sys.stdout)
    console = console_host.console(cast("IO[str]", screen), secrets)  # it stands in for the stream it wraps
    reporters: List[Reporter] = [console, Progress(screen, console.say)]
    if junit:
        from dagu_ci.reporters.junit import JUnitReporter

        reporters.append(JUnitReporter(junit))
    return Fanout(*reporters)
