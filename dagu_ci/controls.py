"""Remote text made safe to show: terminal control sequences and control characters.

A DAG's log lines, and the names and messages a server sends, reach a terminal or a
CI host's log viewer. Neither may move the cursor, clear the screen, hide text, set
a link or retitle a window there. So:

- colour and style escapes (SGR) of a log line are kept, except conceal (8), and a
  line that set any ends with a reset, so nothing leaks into the next line;
- every other escape sequence (cursor moves, clears, OSC 8 links, titles, DCS ...)
  is removed;
- a carriage return inside a line starts a new line (as GitHub's runner does),
  so text it would have overwritten stays visible;
- other control characters show as caret notation (NUL as ^@, BEL as ^G), C1
  controls as U+FFFD; tabs stay in log lines.

Remote text inside dagu-ci's own lines (step and DAG names, server messages) keeps
no escapes at all and stays on one line.
"""

from __future__ import annotations

import re
from typing import List

RESET = "\033[0m"

# ECMA-48: CSI sequences; string sequences (OSC, DCS, SOS, PM, APC) up to their
# terminator (or the end of the line); any other ESC sequence. 7-bit and 8-bit forms.
_ESCAPE = re.compile(
    r"(?P<csi>(?:\x1b\[|\x9b)(?P<params>[0-?]*)[ -/]*(?P<final>[@-~]))"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|$)"
    r"|\x1b[ -/]*[0-~]",
    re.S,
)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x80-\x9f]")
_SGR_PARAM = re.compile(r"\d*(?::\d*)*")
_EXTENDED_COLOR = ("38", "48", "58")  # followed by 5;n or 2;r;g;b
_CONCEAL = "8"


def log_lines(line: str, keep_color: bool = True) -> List[str]:
    """One remote log line as the lines to print (more than one where it held a lone CR)."""
    if line.endswith("\r"):  # a CRLF file's line end
        line = line[:-1]
    parts = [part for part in line.split("\r") if part] or [""]
    return [_clean_line(part, keep_color) for part in parts]


def one_line(text: str) -> str:
    """Remote text inside one of dagu-ci's own lines: no escapes, no line breaks, no controls."""
    text = _ESCAPE.sub("", text).replace("\t", " ")
    return _CONTROL.sub(_visible, text)


def _clean_line(line: str, keep_color: bool) -> str:
    pieces: List[str] = []
    styled = False
    at = 0
    for match in _ESCAPE.finditer(line):
        pieces.append(_CONTROL.sub(_visible, line[at : match.start()]))
        at = match.end()
        if keep_color and match.group("csi") and match.group("final") == "m":
            sgr = _safe_sgr(match.group("params"))
            styled = styled or bool(sgr)
            pieces.append(sgr)
    pieces.append(_CONTROL.sub(_visible, line[at:]))
    if styled:
        pieces.append(RESET)
    return "".join(pieces)


def _safe_sgr(params: str) -> str:
    """The SGR sequence without conceal; "" if it is not plain SGR or only concealed."""
    if params == "":
        return RESET
    parts = params.split(";")
    if not all(_SGR_PARAM.fullmatch(part) for part in parts):
        return ""  # private or malformed: not a colour
    kept: List[str] = []
    index = 0
    while index < len(parts):
        part = parts[index]
        if part in _EXTENDED_COLOR and index + 1 < len(parts):
            size = {"5": 3, "2": 5}.get(parts[index + 1], 2)
            kept += parts[index : index + size]
            index += size
            continue
        if part.lstrip("0") != _CONCEAL or part == "":
            kept.append(part)
        index += 1
    return f"\033[{';'.join(kept)}m" if kept else ""


def _visible(match: "re.Match[str]") -> str:
    code = ord(match.group())
    if code >= 0x80:
        return "\ufffd"
    return "^" + chr(code ^ 0x40)  # caret notation: NUL ^@, BEL ^G, ESC ^[, DEL ^?
