"""No CI host: a terminal, or a CI system dagu-ci does not know. Plain text, a random run
id, no labels, state files in `.dagu-ci/` of the current directory."""

from __future__ import annotations

from typing import Mapping

from dagu_ci.hosts.base import Host


class Local(Host):
    name = "local"

    @classmethod
    def runs_here(cls, env: Mapping[str, str]) -> bool:
        return True


HOST = Local
