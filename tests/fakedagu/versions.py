"""Server version parsing, API mount points, feature gates and status labels."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

VersionTuple = Tuple[int, int, int]

_NUMBER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")

# What a dev build ("dev", "0.0.0") behaves like, per flavor: the newest of its family.
DEV_NUMBERS: Dict[str, VersionTuple] = {"v2x": (2, 6, 5), "v1x": (1, 30, 3)}
FLAVORS = ("v2x", "v1x", "legacy")


@dataclass(frozen=True)
class ServerVersion:
    """The version string a fake server reports, and what it implies (API.md §1, §2)."""

    raw: str
    number: VersionTuple  # used for feature gates; a dev build gets its family's newest
    flavor: str  # "v2x" (/api/v1), "v1x" (/api/v2 + legacy /api/v1) or "legacy" (< 1.17)
    is_dev: bool = False

    @classmethod
    def parse(cls, raw: str, flavor: Optional[str] = None) -> "ServerVersion":
        if flavor is not None and flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {FLAVORS}, not {flavor!r}")
        match = _NUMBER.match(raw.strip())
        number = (int(match.group(1)), int(match.group(2)), int(match.group(3))) if match else None
        if number is None or number == (0, 0, 0):
            # Unparseable builds report "dev" or "0.0.0": only the flavor says where the API lives.
            chosen = flavor or "v2x"
            if chosen == "legacy":
                raise ValueError("a dev build needs flavor 'v2x' or 'v1x'")
            return cls(raw=raw, number=DEV_NUMBERS[chosen], flavor=chosen, is_dev=True)
        return cls(raw=raw, number=number, flavor=_flavor_of(number))

    def at_least(self, major: int, minor: int = 0, patch: int = 0) -> bool:
        return self.number >= (major, minor, patch)

    @property
    def api_prefix(self) -> str:
        """Where the modern (or, before 1.17, the legacy) API is mounted, before basePath."""
        return "/api/v2" if self.flavor == "v1x" else "/api/v1"

    @property
    def health_is_public(self) -> bool:
        return self.flavor != "legacy" and self.at_least(1, 24, 5)

    # Feature gates (API.md §1, §2.3, §4.2).
    @property
    def validates_run_id(self) -> bool:
        return self.at_least(2, 2, 0)

    @property
    def json_params(self) -> bool:
        return self.at_least(1, 30, 0)

    @property
    def literal_params(self) -> bool:
        return self.at_least(2, 3, 0)

    @property
    def has_latest_alias(self) -> bool:
        return self.at_least(1, 22, 10)

    @property
    def has_outputs(self) -> bool:
        return self.at_least(1, 29, 0)

    @property
    def has_download(self) -> bool:
        return self.at_least(2, 0, 0)

    @property
    def has_auto_retry(self) -> bool:
        return self.at_least(2, 3, 0)

    @property
    def has_approval(self) -> bool:
        return self.at_least(1, 30, 0)

    @property
    def log_not_found_is_404(self) -> bool:
        return self.flavor == "v2x"

    # DAG definitions (definitions.py has the facts and their sources).
    @property
    def has_validate(self) -> bool:
        """POST /dags/validate, and a `spec` in POST /dags, from 1.23.0."""
        return self.at_least(1, 23, 0)

    @property
    def checks_dag_names(self) -> bool:
        """POST /dags refuses names outside [a-zA-Z0-9_.-] or over 40 characters from 2.0.0."""
        return self.at_least(2, 0, 0)

    @property
    def checks_write_role(self) -> bool:
        """Writes check the user's role (requireWrite) from 1.26.0; before, only the server's
        writeDAGs permission."""
        return self.at_least(1, 26, 0)

    @property
    def start_timeout(self) -> float:
        """How long the real handler waits for the run record (API.md §3.5)."""
        if self.at_least(2, 5, 0):
            return 10.0
        if self.at_least(1, 23, 0):
            return 5.0
        return 3.0


def _flavor_of(number: VersionTuple) -> str:
    if number >= (2, 0, 0):
        return "v2x"
    if number >= (1, 17, 0):
        return "v1x"
    return "legacy"


# statusLabel spellings (API.md §4.3). The ints never changed; the words did.
_MODERN = {
    0: "not_started",
    1: "running",
    2: "failed",
    3: "aborted",
    4: "succeeded",
    5: "queued",
    6: "partially_succeeded",
    7: "waiting",
    8: "rejected",
}
_V1_23 = {**_MODERN, 3: "canceled"}
_V1_19_1 = {**_MODERN, 0: "not started", 3: "cancelled", 4: "finished", 6: "partial success"}
_V1_17 = {**_MODERN, 0: "not started", 3: "canceled", 4: "finished", 6: "partial success"}
_NODE_EXTRA = {5: "skipped", 9: "retrying"}


def _label_table(version: ServerVersion) -> Dict[int, str]:
    if version.flavor == "legacy":
        return _V1_17
    if version.at_least(1, 24, 5):
        return _MODERN
    if version.at_least(1, 23, 0):
        return _V1_23
    if version.at_least(1, 19, 1):
        return _V1_19_1
    return _V1_17


def status_label(version: ServerVersion, status: int) -> str:
    return _label_table(version).get(status, str(status))


def node_status_label(version: ServerVersion, status: int) -> str:
    if status in _NODE_EXTRA:
        return _NODE_EXTRA[status]
    return _label_table(version).get(status, str(status))


TERMINAL_STATUSES = frozenset({2, 3, 4, 6, 8})
ACTIVE_STATUSES = frozenset({1, 5, 7})
