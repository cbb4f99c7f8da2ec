"""What a CI host provides: one subclass per host, detected once from the environment.

A host answers every question that depends on where dagu-ci runs: which job this is
(run ids derive from it, so a retried job attaches to its run instead of starting a
second one), the labels that point from the Dagu run back to the CI run, the job's own
directory for state files, the console reporter with its log groups, outputs and summary,
and how the container image's action inputs arrive (GitHub's `INPUT_*`, Woodpecker's
`PLUGIN_*`). Only the modules of this package read CI variables (a test checks).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, ClassVar, Iterable, Mapping, Optional

from dagu_ci.hosts.provenance import Provenance

if TYPE_CHECKING:
    from dagu_ci.reporters.plain import PlainReporter


STATE_DIR = ".dagu-ci"  # the state files' folder, in the directory the host gives (Host.state_dir)


@dataclass(frozen=True)
class Host:
    """A CI host as seen from inside one of its jobs; `env` is the job's environment."""

    env: Mapping[str, str]
    name: ClassVar[str] = ""  # the registry's key, and the `--reporter` choice
    input_prefix: ClassVar[str] = "INPUT_"  # how a container step's inputs arrive

    @classmethod
    def runs_here(cls, env: Mapping[str, str]) -> bool:
        """True inside one of this host's jobs (the variable the host sets in every job)."""
        raise NotImplementedError

    # -- identity ---------------------------------------------------------------

    def job(self) -> Optional[str]:
        """This job, the same each time the job runs this step again (a retry, a restarted
        container) and different for a re-run; None outside CI: run ids are random then."""
        return None

    def provenance(self) -> Optional[Provenance]:
        """Where the run comes from: host, run URL, commit, ref."""
        return None

    # -- files ------------------------------------------------------------------

    def temp_dir(self) -> Optional[str]:
        """A directory of this job, kept between its steps, that a checkout cannot write into."""
        return None

    def workspace(self) -> Optional[str]:
        """The checkout."""
        return None

    def state_dir(self, cwd: Optional[str] = None) -> str:
        """Where the run's state file goes: the job's temp directory where the host has one."""
        return os.path.join(self.temp_dir() or self.workspace() or cwd or os.getcwd(), STATE_DIR)

    def post_step_key(self) -> Optional[str]:
        """In a post step the host runs for this step alone: the secret the main step left."""
        return None

    def hand_key_to_post_step(self, key: str) -> None:
        """Leave `key` (hex) to this step's own post step, where the host has one."""

    # -- output -----------------------------------------------------------------

    def console(self, out: IO[str], secrets: Iterable[Optional[str]]) -> "PlainReporter":
        """The reporter for this host's job log (and its outputs and summary)."""
        from dagu_ci.reporters.plain import PlainReporter

        return PlainReporter(out)

    # -- the container image as a step ------------------------------------------

    def action_input(self, name: str) -> str:
        """A step input by its kebab-case name (`poll-interval`); "" when not given.
        GitHub's convention: upper case, hyphens kept (`INPUT_POLL-INTERVAL`)."""
        return self.env.get(f"{self.input_prefix}{name.upper()}", "").strip()

    def is_action(self) -> bool:
        """Does an image started with no arguments run as this host's step (inputs as variables)?"""
        return f"{self.input_prefix}DAG" in self.env
