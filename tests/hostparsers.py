"""Models of what CI hosts parse out of dagu-ci's output, to check remote text stays data.

- `ci_commands(text)`: every command GitHub's runner (tests.reporting.Runner: `::name::`,
  the legacy `##[name]` anywhere, stop-commands) or Azure Pipelines' agent (`##vso[...]`
  anywhere in a line, `##[group]`-style formatting at its start) would take from a log.
- `github_env_file(text)`: how the runner reads GITHUB_ENV / GITHUB_OUTPUT (`NAME=value`,
  `NAME<<DELIMITER` ... `DELIMITER`), raising where it would fail the step.
- `gitlab_dotenv(text)`: how GitLab reads a dotenv report (one `KEY=value` per line, both
  stripped, no quoting) and how the runner then expands `$NAME` and `$$` in each value.
"""

from __future__ import annotations

import re
from typing import Dict, List, Mapping, Optional, Tuple

from tests.reporting import Runner


def ci_commands(text: str) -> List[str]:
    """'github:<name>' / 'azure:<text>' for each command a runner would execute."""
    found = [f"github:{command.name}" for command in Runner.read(text).commands]
    for line in re.split(r"\r\n|\r|\n", text):
        if re.search(r"##vso\[", line, re.IGNORECASE) or re.match(r"\s*##\[\w+\]", line):
            found.append(f"azure:{line}")
    return found


class HostFileError(Exception):
    """The host would refuse the file (and fail the step or job)."""


def _read_line(text: str, index: int) -> Tuple[Optional[str], int, str]:
    """(line, next index, newline) as the runner reads GITHUB_ENV: lines end at LF or CRLF."""
    if index >= len(text):
        return None, index, ""
    end = text.find("\n", index)
    if end < 0:
        return text[index:], len(text), ""
    newline = "\r\n" if end > index and text[end - 1] == "\r" else "\n"
    return text[index : end - len(newline) + 1], end + 1, newline


def github_env_file(text: str) -> Dict[str, str]:
    values: Dict[str, str] = {}
    index = 0
    line, index, _ = _read_line(text, index)
    while line is not None:
        if line:
            equals, heredoc = line.find("="), line.find("<<")
            if equals >= 0 and (heredoc < 0 or equals < heredoc):
                key, value = line[:equals], line[equals + 1 :]
            elif heredoc >= 0:
                key, delimiter = line[:heredoc], line[heredoc + 2 :]
                if not key or not delimiter:
                    raise HostFileError(f"invalid heredoc line {line!r}")
                start = end = index
                inner, index, newline = _read_line(text, index)
                while inner != delimiter:
                    if inner is None:
                        raise HostFileError(f"delimiter {delimiter!r} not found")
                    if not newline:
                        raise HostFileError("EOF marker missing new line")
                    end = index - len(newline)
                    inner, index, newline = _read_line(text, index)
                value = text[start:end] if end > start else ""
            else:
                raise HostFileError(f"invalid line {line!r}")
            if not key:
                raise HostFileError(f"empty name in {line!r}")
            values[key] = value
        line, index, _ = _read_line(text, index)
    return values


def gitlab_dotenv(text: str, env: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    values: Dict[str, str] = {}
    for line in _ruby_lines(text):
        matches = list(re.finditer(r"^(.*?)=(.*)$", line, re.M))  # Ruby: line.scan(...).last
        if not matches:
            raise HostFileError("Invalid Format")
        key, value = (part.strip("\x00\t\n\v\f\r ") for part in matches[-1].groups())
        if not re.fullmatch(r"[a-zA-Z0-9_]+", key):
            raise HostFileError("Key can contain only letters, digits and '_'.")
        values[key] = value
    return {key: runner_expand(value, env or {}) for key, value in values.items()}


def _ruby_lines(text: str) -> List[str]:
    """Ruby's String#each_line: split after each LF, keeping it."""
    return re.findall(r"[^\n]*\n|[^\n]+\Z", text)


def runner_expand(value: str, env: Mapping[str, str]) -> str:
    """The runner's expansion of a variable's value (Go's os.Expand; `$$` is a literal `$`)."""
    out: List[str] = []
    i = j = 0
    while j < len(value):
        if value[j] == "$" and j + 1 < len(value):
            out.append(value[i:j])
            name, width = _shell_name(value[j + 1 :])
            if name == "" and width > 0:
                pass  # bad syntax: eaten
            elif name == "":
                out.append("$")
            else:
                out.append("$" if name == "$" else env.get(name, ""))
            j += width
            i = j + 1
        j += 1
    out.append(value[i:])
    return "".join(out)


def _shell_name(text: str) -> Tuple[str, int]:
    special = "*#$@!?-0123456789"
    if text[0] == "{":
        if len(text) > 2 and text[1] in special and text[2] == "}":
            return text[1:2], 3
        for i in range(1, len(text)):
            if text[i] == "}":
                return ("", 2) if i == 1 else (text[1:i], i + 1)
        return "", 1
    if text[0] in special:
        return text[0:1], 1
    i = 0
    while i < len(text) and (text[i] == "_" or (text[i].isascii() and text[i].isalnum())):
        i += 1
    return text[:i], i
