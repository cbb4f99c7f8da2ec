"""Where a run came from: labels that point from the Dagu run back to the CI run.

Each CI host says where (Host.provenance); this module makes it labels Dagu accepts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List

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
    ci: str  # the host (Host.name)
    run_url: str = ""
    sha: str = ""
    ref: str = ""

    def labels(self) -> List[str]:
        pairs = [("ci", self.ci), ("ci-url", self.run_url), ("sha", self.sha), ("ref", self.ref)]
        fitted = [(key, label_value(value)) for key, value in pairs]
        return [f"{key}={value}" for key, value in fitted if value]


def label(key: str, value: str) -> str:
    return f"{key}={label_value(value)}"


def label_value(text: str) -> str:
    """`text` as a value Dagu accepts and keeps unchanged (see _NOT_ALLOWED)."""
    value = _SCHEME.sub("", text.strip().lower())
    return _LEADING.sub("", _NOT_ALLOWED.sub("-", value))[:MAX_VALUE]
