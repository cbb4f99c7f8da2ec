"""Remote text is data: the one place that makes server text safe for what a CI host reads.

Whatever the server sends (log lines, step and DAG names, error messages, outputs) must
never become a command, a variable or markup on the host. Three kinds of sink:

- A log that a CI runner scans for commands: GitHub runs `::name::data` at the start of
  a line (after spaces) and the legacy `##[name]data` anywhere in it; Azure Pipelines runs
  `##vso[...]` anywhere; both also start a new line at a bare CR. `inert()` puts a
  backslash in front of such a `::` and before the `[` of any `##word[`: the line reads
  the same and no parser matches it. (GitHub mode of `run` fences logs between
  `::stop-commands::` markers instead, which keeps them verbatim: hosts/github.py.)
- JSON a script reads, which may be printed into a log too: `json_text()` writes the `[`
  of `##word[` as `\\u005b`, which every JSON parser reads back as `[`.
- Files a host reads variables from: GitHub's GITHUB_ENV and GITHUB_OUTPUT, GitLab's
  dotenv report. `env_file()` writes each in its host's own syntax and refuses a name or
  value the host would not read back as exactly that one variable.
"""

from __future__ import annotations

import json
import re
import secrets
from enum import Enum
from typing import Any, Mapping, Optional

from dagu_ci.errors import DaguCIError, ExitCode

# `##[`, `##vso[`, `##teamcity[`, ...: parsed anywhere in a line.
_MARKER = re.compile(r"(##\w*)\[")
# `::` at a line start, after what runners trim or skip: spaces, control characters,
# escape sequences, zero-width characters. A bare CR starts a new line for them.
_LINE_COMMAND = re.compile(
    r"(?:^|(?<=[\r\n]))((?:\x1b\[[0-9;?]*[ -/]*[@-~]|[^\S\r\n]|[\x00-\x09\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2060\ufeff])*)(?=::)"
)


def inert(text: str) -> str:
    """Text for a log: no CI runner takes any part of it as a command."""
    text = _MARKER.sub(r"\1\\[", text)
    return _LINE_COMMAND.sub(lambda m: m.group(1) + "\\", text)


def json_text(value: Any, indent: Optional[int] = None) -> str:
    """JSON (ASCII, so no raw line breaks) that reads back exactly and runs nothing in a log."""
    text = json.dumps(value, indent=indent, default=str)
    return _MARKER.sub(lambda m: m.group(1) + "\\u005b", text)


# -- variable files ---------------------------------------------------------------


class EnvFormat(Enum):
    ENV = "env"  # KEY=value lines: people, and GITHUB_ENV for one-line values
    GITHUB_ENV = "github-env"  # GITHUB_ENV / GITHUB_OUTPUT: NAME<<DELIMITER for many lines
    DOTENV = "dotenv"  # GitLab's artifacts:reports:dotenv


class UnsafeOutput(DaguCIError):
    """A DAG output that a format cannot carry as exactly that one variable."""

    exit_code = ExitCode.FAILED


VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Names that make programs load code, change where they connect, or steer the CI host and
# dagu-ci itself. Compared case-insensitively: Windows runners ignore case.
RESERVED_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "SHELL",
        "IFS",
        "ENV",
        "BASH_ENV",
        "CDPATH",
        "PS4",
        "PROMPT_COMMAND",
        "SHELLOPTS",
        "BASHOPTS",
        "GLOBIGNORE",
        "TMPDIR",
        "NODE_OPTIONS",
        "NODE_PATH",
        "PERL5OPT",
        "PERL5LIB",
        "PERLLIB",
        "RUBYOPT",
        "RUBYLIB",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "CLASSPATH",
        "MAVEN_OPTS",
        "GRADLE_OPTS",
        "DOTNET_STARTUP_HOOKS",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    }
)
RESERVED_PREFIXES = (
    "LD_",
    "DYLD_",
    "PYTHON",
    "GIT_",
    "BASH_FUNC_",
    "NPM_CONFIG_",
    "PIP_",
    "GITHUB_",
    "RUNNER_",
    "ACTIONS_",
    "CI_",
    "GITLAB_",
    "DAGU_",
)

_CONTROL = {
    # What each file cannot hold in a value (CR: GitHub drops one before a line break).
    EnvFormat.ENV: re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]"),
    EnvFormat.GITHUB_ENV: re.compile("[\x00-\x08\x0b-\x1f\x7f]"),
    EnvFormat.DOTENV: re.compile("[\x00-\x08\x0a-\x1f\x7f]"),
}
_RUBY_STRIP = "\x00\t\n\v\f\r "  # GitLab strips these from both ends of a dotenv value


def name_problem(name: str) -> Optional[str]:
    """Why NAME cannot be set as a variable from a DAG's outputs, or None."""
    if not VARIABLE_NAME.match(name):
        return "is not a variable name (letters, digits and _, not starting with a digit)"
    upper = name.upper()
    if upper in RESERVED_NAMES or upper.startswith(RESERVED_PREFIXES):
        return "is reserved: dagu-ci never sets it from a DAG's outputs"
    return None


def value_problem(value: str, fmt: EnvFormat) -> Optional[str]:
    """Why FMT cannot carry VALUE intact, or None."""
    if fmt is not EnvFormat.GITHUB_ENV and ("\n" in value or "\r" in value):
        return "holds a line break, which this format cannot carry"
    if _CONTROL[fmt].search(value):
        return "holds a control character, which this format cannot carry"
    if fmt is EnvFormat.DOTENV and value != value.strip(_RUBY_STRIP):
        return "starts or ends with white space, which GitLab's dotenv drops"
    return None


def log_problem(entry: str) -> Optional[str]:
    """Why ENTRY, printed into a job log, would run a CI command there, or None."""
    marker = _MARKER.search(entry)
    if marker:
        return f"holds {marker.group(0)!r}, which a CI log runs as a command"
    if inert(entry) != entry:
        return "holds a line starting with '::', which a CI log runs as a command"
    return None


def env_entry(fmt: EnvFormat, name: str, value: str) -> str:
    """One variable in FMT's syntax; the caller has checked NAME and VALUE."""
    if fmt is EnvFormat.DOTENV:
        # No quoting exists (GitLab keeps quotes as part of the value), but later jobs
        # expand `$NAME` in it: `$$` is how GitLab writes a literal `$`.
        return f"{name}={value.replace('$', '$$')}\n"
    if fmt is EnvFormat.GITHUB_ENV and "\n" in value:
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        while delimiter in value:  # astronomically unlikely; never ambiguous
            delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"
    return f"{name}={value}\n"


def env_file(values: Mapping[str, Any], fmt: EnvFormat) -> str:
    """VALUES in FMT, or UnsafeOutput naming the first name or value it cannot carry safely
    (then nothing is written). Safe in a job log too: people print outputs to look at them."""
    entries = []
    for name, raw in values.items():
        value = raw if isinstance(raw, str) else json.dumps(raw)
        problem = name_problem(name)
        if problem:
            raise UnsafeOutput(f"output name {name!r} {problem}; use --format json")
        problem = value_problem(value, fmt)
        if problem:
            multi_line = fmt is EnvFormat.ENV and value_problem(value, EnvFormat.GITHUB_ENV) is None
            instead = "--format github-env (for GITHUB_ENV) or --format json" if multi_line else "--format json"
            raise UnsafeOutput(f"output {name!r} {problem}; use {instead}")
        entry = env_entry(fmt, name, value)
        problem = log_problem(entry)
        if problem:
            raise UnsafeOutput(f"output {name!r} {problem}; use --format json")
        entries.append(entry)
    return "".join(entries)


def fitted(value: str, fmt: EnvFormat) -> str:
    """For dagu-ci's own variables: VALUE with what FMT cannot carry made blank."""
    value = _CONTROL[fmt].sub(" ", value)
    return value.strip(_RUBY_STRIP) if fmt is EnvFormat.DOTENV else value
