"""DAG parameters: parse what the user typed, encode what the server understands."""

from __future__ import annotations

import json
import re
import shlex
import sys
from typing import Any, Dict, Iterable, List, Optional, Tuple

import yaml

from dagu_ci.errors import UsageError

Params = Dict[str, str]

_KEY = re.compile(r"[^\s=\"'`]+")  # fullmatch: "$" would let a trailing newline through


def parse_param(item: str) -> Tuple[str, str]:
    """One `--param KEY=VALUE`."""
    key, sep, value = item.partition("=")
    if not sep or not _KEY.fullmatch(key):
        raise UsageError(f"bad --param {item!r}: expected KEY=VALUE")
    return key, value


def parse_params_text(text: str) -> Params:
    """`--params`: a JSON object, a YAML mapping, or `K=V K2="v 2"` pairs."""
    stripped = text.strip()
    if not stripped:
        return {}
    if stripped.startswith("{"):
        try:
            loaded = json.loads(stripped)
        except ValueError:
            loaded = _load_yaml(stripped)  # YAML flow mappings start with "{" too
        return _as_params(loaded, text)
    pairs = _parse_pairs(stripped)
    if pairs is not None:
        return pairs
    return _as_params(_load_yaml(stripped), text)


def merge_params(params_text: Optional[str], items: Iterable[str]) -> Params:
    """--params first, then each --param on top (the later one wins)."""
    merged = parse_params_text(read_params_source(params_text)) if params_text else {}
    for item in items:
        key, value = parse_param(item)
        merged[key] = value
    return merged


def read_params_source(text: str) -> str:
    """`--params @FILE` reads FILE and `--params -` standard input, so params of any size
    need no room on the command line (Linux caps one argument at 128 KiB)."""
    if text == "-":
        return _decoded(sys.stdin.buffer.read(), "-")
    if not text.startswith("@"):
        return text
    try:
        with open(text[1:], "rb") as handle:
            return _decoded(handle.read(), text)
    except OSError as exc:
        raise UsageError(f"--params {text}: {exc.strerror or exc}") from None


def _decoded(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"--params {source}: not UTF-8 text") from None


def encode_params(params: Params, json_params: bool) -> str:
    """The one params string of the start body (API.md §3.2).

    JSON objects are understood from 1.30.0; older servers tokenise JSON, so they get
    `K="v"` pairs (`K=v` where the quoted form cannot carry the value). What that
    tokenizer cannot read back exactly is refused (UsageError) rather than sent.
    """
    for key, value in params.items():
        _check_text(f"param {key!r}", key)
        _check_text(f"param {key}", value)
    if json_params:
        return json.dumps(params, ensure_ascii=False)
    return " ".join(_pair(key, value) for key, value in _tokenizer_order(params))


def expanding_values(params: Params) -> List[str]:
    """Keys whose values a server before 2.3.0 would expand ($VAR, backticks)."""
    return [key for key, value in params.items() if "$" in value or "`" in value]


# How Dagu 1.17-1.29 read the params string: `NAME=` then a "quoted" value, in which only
# `\"` is an escape (a backslash stays a backslash), or a bare value without spaces and
# quotes. The loader then trims every leading and trailing quote of a quoted value.
_GO_SPACE = "\t\n\f\r "  # Go's \s: ASCII only
_OLD_SERVERS = "Dagu before 1.30 cannot receive"


def _tokenizer_order(params: Params) -> List[Tuple[str, str]]:
    """The pairs in the order they can be sent: a quoted value ending in a backslash turns
    its closing quote into an escape, unless the string ends there, so it goes last."""
    pairs: List[Tuple[str, str]] = []
    last: List[Tuple[str, str]] = []
    for key, value in params.items():
        if not _KEY.fullmatch(key):
            raise UsageError(
                f"param key {key!r} cannot be sent to Dagu before 1.30: a key has no spaces, quotes or '='"
            )
        if value.endswith('"'):
            raise UsageError(
                f"param {key}: {_OLD_SERVERS} a value that ends with a double quote "
                "(its params tokenizer would change it); change the value or upgrade Dagu"
            )
        if value.endswith("\\") and not _is_bare(value):
            if last:
                raise UsageError(
                    f"param {key}: {_OLD_SERVERS} more than one value that ends with a backslash "
                    f"and holds a space, quote or backtick ({last[0][0]} is one)"
                )
            last.append((key, value))
        else:
            pairs.append((key, value))
    return pairs + last


def _is_bare(value: str) -> bool:
    return bool(value) and not any(char in _GO_SPACE or char in '"`' for char in value)


def _pair(key: str, value: str) -> str:
    if value.endswith("\\") and _is_bare(value):
        return f"{key}={value}"
    return key + '="' + value.replace('"', '\\"') + '"'


def _check_text(what: str, text: str) -> None:
    """Text the request can carry: argv may hold bytes that are not UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{what}: not valid UTF-8 text") from None


def _parse_pairs(text: str) -> Optional[Params]:
    try:
        tokens = shlex.split(text)
    except ValueError:
        return None
    pairs: Params = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or not _KEY.fullmatch(key):
            return None
        pairs[key] = value
    return pairs


def _load_yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise UsageError(f"bad --params: not JSON, YAML or K=V pairs{where}") from None


def _as_params(loaded: Any, text: str) -> Params:
    if not isinstance(loaded, dict):
        raise UsageError(f"bad --params {_clip(text)!r}: expected a JSON object, a YAML mapping or K=V pairs")
    return {str(key): _scalar(value) for key, value in loaded.items()}


def _scalar(value: Any) -> str:
    # YAML turns `true`, `1.0` and `~` into Python values; the DAG wants the text back.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _clip(text: str, width: int = 40) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


# -- typed definitions -----------------------------------------------------------

_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def typed_problems(params: Params, definitions: Iterable[Dict[str, Any]]) -> List[str]:
    """What the DAG's typed params (`paramDefs`, Dagu 2.5+) refuse in these values, as the
    server checks them at the start: the type, enum, bounds, lengths, pattern and required."""
    problems = []
    for definition in definitions:
        name = str(definition.get("name") or "")
        if not name:
            continue  # positional: matched by place, not checked here
        if name not in params:
            if definition.get("required") and definition.get("default") is None:
                problems.append(f"param {name} is required")
            continue
        problem = _typed_problem(params[name], definition)
        if problem:
            problems.append(f"param {name}: {problem}")
    return problems


def _typed_problem(text: str, definition: Dict[str, Any]) -> Optional[str]:
    kind = definition.get("type") or "string"
    value: Any = text
    if kind == "integer":
        if not _INTEGER.match(text.strip()):
            return f"{text!r} is not an integer"
        value = int(text.strip())
    elif kind == "number":
        if not _NUMBER.match(text.strip()):
            return f"{text!r} is not a number"
        value = float(text.strip())
    elif kind == "boolean":
        if text.lower() not in ("true", "false"):
            return f"{text!r} is not true or false"
        value = text.lower() == "true"
    allowed = definition.get("enum") or []
    if allowed and not any(_same(value, choice) for choice in allowed):
        return f"{text!r} is not one of {', '.join(_scalar(choice) for choice in allowed)}"
    if kind in ("integer", "number"):
        low, high = definition.get("minimum"), definition.get("maximum")
        if low is not None and value < low:
            return f"{text} is below the minimum {_scalar(low)}"
        if high is not None and value > high:
            return f"{text} is above the maximum {_scalar(high)}"
    if kind == "string":
        shortest, longest = definition.get("minLength"), definition.get("maxLength")
        if shortest is not None and len(text) < shortest:
            return f"{text!r} is shorter than {shortest} characters"
        if longest is not None and len(text) > longest:
            return f"{text!r} is longer than {longest} characters"
        pattern = definition.get("pattern")
        if pattern and not _matches(pattern, text):
            return f"{text!r} does not match {pattern}"
    return None


def _same(value: Any, choice: Any) -> bool:
    if isinstance(value, bool) or isinstance(choice, bool):
        return _scalar(choice).lower() == _scalar(value).lower()
    if isinstance(value, (int, float)) and isinstance(choice, (int, float)):
        return float(value) == float(choice)
    return _scalar(choice) == _scalar(value)


def _matches(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return True  # Go's RE2 syntax Python cannot read: leave it to the server
