"""Where a command other than `run` writes: stdout, as text for people or a JSON document."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import IO, Any, Sequence

from dagu_ci.redaction import redact, redact_value
from dagu_ci.remotetext import inert, json_text
from dagu_ci.server.models import RunStatus
from dagu_ci.term import Style


@dataclass
class Output:
    """Where a command writes: stdout, styled by the same rules as `run`'s output."""

    out: IO[str] = field(default_factory=lambda: sys.stdout)
    as_json: bool = False

    def __post_init__(self) -> None:
        self.style = Style.for_stream(self.out)

    def lines(self, lines: Sequence[str]) -> None:
        """Text for people; what came from the server may be in it, so no CI runner
        reading it as a log may take a line for a command."""
        self.text("".join(inert(line) + "\n" for line in lines))

    def document(self, value: Any) -> None:
        self.text(json_text(redact_value(value), indent=2) + "\n")  # stays valid JSON

    def text(self, text: str) -> None:
        if text:
            self.out.write(redact(text))
            self.out.flush()

    def status(self, status: RunStatus) -> str:
        return self.style.paint(status.label.replace("_", " "), self.style.status_color(status))
