"""Terminal facts: colour rules, symbols the output encoding can carry, durations."""

from __future__ import annotations

import os
import unicodedata
from datetime import datetime, timezone
from typing import IO, List, Mapping, Optional, Sequence

from dagu_ci.server.models import RunStatus, StepStatus

_CODES = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "dim": "2", "bold": "1"}


def wants_color(stream: IO[str], env: Mapping[str, str] = os.environ) -> bool:
    """NO_COLOR wins; then FORCE_COLOR; else only on a TTY (https://no-color.org)."""
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR") not in (None, "", "0"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def can_encode(stream: object, text: str) -> bool:  # a stream, or what stands in for one
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class Style:
    def __init__(self, color: bool, unicode: bool, remote_color: bool = True):
        self.color = color  # dagu-ci's own colours
        self.unicode = unicode
        # A DAG's own colour escapes in its log: kept unless NO_COLOR (the DAG chose to print
        # them, and terminals, GitHub and GitLab render them).
        self.remote_color = remote_color

    @classmethod
    def for_stream(cls, stream: IO[str], env: Mapping[str, str] = os.environ) -> "Style":
        return cls(wants_color(stream, env), can_encode(stream, "▶✔✖⚠…─│"), not env.get("NO_COLOR"))

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


def display_width(text: str) -> int:
    """Columns a terminal gives `text`: wide characters (CJK, most emoji) take two,
    combining marks none. `text` must hold no escape sequences."""
    return sum(_char_width(char) for char in text)


def fit(text: str, columns: int, ellipsis: str = "…") -> str:
    """`text` cut to at most `columns` display columns, ending in `ellipsis` when cut."""
    if display_width(text) <= columns:
        return text
    room = columns - display_width(ellipsis)
    if room < 0:
        return ""
    used, kept = 0, []
    for char in text:
        width = _char_width(char)
        if used + width > room:
            break
        used += width
        kept.append(char)
    return "".join(kept) + ellipsis


def _char_width(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def format_duration(seconds: Optional[float]) -> str:
    """Whole seconds, cut down like a clock's: Dagu's timestamps have no finer grain, so a
    step that started and ended within one second shows "<1s"."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return "<1s"
    if seconds < 60:
        return f"{int(seconds)}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_ago(moment: Optional[datetime], now: Optional[datetime] = None) -> str:
    """ "3 min ago", "just now", "in 2 h": how people read times in a table."""
    if moment is None:
        return "-"
    seconds = ((now or datetime.now(timezone.utc)) - moment).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 10:
        return "just now"
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size:
            count = int(seconds // size)
            text = f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''}"
            return f"in {text}" if future else f"{text} ago"
    return "just now"  # unreachable: seconds >= 10 here


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    style: Style,
    colors: Sequence[str] = (),
    color_column: int = 1,
    indent: str = "  ",
) -> List[str]:
    """Aligned columns; `colors[i]` paints row i's `color_column` (after padding, so
    escape codes never skew the widths)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [(indent + "  ".join(h.ljust(w) for h, w in zip(header, widths))).rstrip()]
    for index, row in enumerate(rows):
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths)]
        if index < len(colors) and colors[index]:
            cells[color_column] = style.paint(cells[color_column], colors[index])
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines
