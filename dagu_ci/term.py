"""Terminal facts: colour rules, symbols the output encoding can carry, durations."""
from __future__ import annotations

import os
from typing import IO, Mapping, Optional

from dagu_ci.models import RunStatus, StepStatus

_CODES = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "dim": "2", "bold": "1"}


def wants_color(stream: IO[str], env: Mapping[str, str] = os.environ) -> bool:
    """NO_COLOR wins; then FORCE_COLOR; else only on a TTY (https://no-color.org)."""
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR") not in (None, "", "0"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def can_encode(stream: IO[str], text: str) -> bool:
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class Style:
    def __init__(self, color: bool, unicode: bool):
        self.color = color
        self.unicode = unicode

    @classmethod
    def for_stream(cls, stream: IO[str], env: Mapping[str, str] = os.environ) -> "Style":
        return cls(wants_color(stream, env), can_encode(stream, "▶✔✖⚠…─"))

    def paint(self, text: str, color: str) -> str:
        if not self.color or not text:
            return text
        return f"\033[{_CODES[color]}m{text}\033[0m"

    def symbol(self, status: "RunStatus | StepStatus") -> str:
        table = _UNICODE if self.unicode else _ASCII
        return table.get(status.name, table["OTHER"])

    def status_color(self, status: "RunStatus | StepStatus") -> str:
        return _COLORS.get(status.name, "yellow")


_UNICODE = {
    "SUCCEEDED": "✔",
    "FAILED": "✖",
    "ABORTED": "■",
    "REJECTED": "✖",
    "PARTIALLY_SUCCEEDED": "◐",
    "SKIPPED": "↷",
    "RUNNING": "▶",
    "QUEUED": "…",
    "WAITING": "⏸",
    "NOT_STARTED": "·",
    "OTHER": "?",
}
_ASCII = {
    "SUCCEEDED": "ok",
    "FAILED": "XX",
    "ABORTED": "--",
    "REJECTED": "XX",
    "PARTIALLY_SUCCEEDED": "~~",
    "SKIPPED": "..",
    "RUNNING": ">>",
    "QUEUED": "..",
    "WAITING": "||",
    "NOT_STARTED": "  ",
    "OTHER": "??",
}
_COLORS = {
    "SUCCEEDED": "green",
    "FAILED": "red",
    "REJECTED": "red",
    "ABORTED": "red",
    "NOT_STARTED": "dim",
    "SKIPPED": "dim",
    "RUNNING": "blue",
}


def format_duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
