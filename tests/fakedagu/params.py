"""How the real server turns the one `params` string into values (API.md §3.2).

v1.30.0+ understands a JSON object/array string; every version also applies the
K=V regex, and before v1.30.0 a JSON string goes through that regex too, giving
garbage such as `1={ 2=user ...` (dagucloud/dagu#1550).
"""

from __future__ import annotations

import json
import re
import string
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .versions import ServerVersion, VersionTuple

Pair = Tuple[str, str]  # (name, value); name "" for a positional value

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_BACKTICKS = re.compile(r"`[^`]*`")


def go_value(value: Any) -> str:
    """A JSON value as Go's fmt `%v` prints it after encoding/json decoded it."""
    if isinstance(value, str):
        return value
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _map_pairs(obj: Mapping[str, Any]) -> List[Pair]:
    return [(key, go_value(obj[key])) for key in sorted(obj)]  # Go sorts map keys


def _json_pairs(text: str) -> Optional[List[Pair]]:
    try:
        decoded = json.loads(text)
    except ValueError:
        return None
    if isinstance(decoded, dict):
        return _map_pairs(decoded)
    if isinstance(decoded, list):
        pairs: List[Pair] = []
        for item in decoded:
            if isinstance(item, dict):
                pairs.extend(_map_pairs(item))
            else:
                pairs.append(("", go_value(item)))
        return pairs
    return None


# -- the K=V tokenizer (every version; the only reader before 1.30.0) ------------------
#
# A model of the loader's regexp (internal/digraph/params.go at v1.17-v1.22,
# internal/core/spec/params.go from v1.26), as Go's leftmost-first matching runs it:
# at each position, an optional NAME= (no space, no "=") and then a value that is a
# "quoted" run (`\"` escapes a quote), a `backticked` run, or a bare run without spaces
# and quotes. Where no token starts, the scan moves on by one character. Go's `\s` is
# ASCII only: tab, newline, form feed, carriage return and space. 2.0.0 simplified the
# backticked run to "up to the next backtick"; 2.2.0 unquotes a quoted value as a Go
# string literal first (strconv.Unquote), falling back to the 1.x unescaping.

_GO_SPACE = "\t\n\f\r "


def _name_end(text: str, start: int) -> Optional[int]:
    """Where the value begins after `NAME=` at start, or None when there is no name."""
    end = start
    while end < len(text) and text[end] not in _GO_SPACE and text[end] != "=":
        end += 1
    if end == start or end == len(text) or text[end] != "=":
        return None
    return end + 1


def _quoted_end(text: str, start: int) -> Optional[int]:
    """A quote that is not part of `\"` closes the value. With none left, backtracking
    makes the last `\"` a backslash followed by the closing quote."""
    index, last_escaped_quote = start + 1, None
    while index < len(text):
        if text.startswith('\\"', index):
            last_escaped_quote = index + 1
            index += 2
        elif text[index] == '"':
            return index + 1
        else:
            index += 1
    return None if last_escaped_quote is None else last_escaped_quote + 1


def _backticked_end(text: str, start: int, to_next_backtick: bool) -> Optional[int]:
    """1.x: either exactly `\"` between backticks, or the longest quote-free run up to a
    backtick. 2.x: up to the next backtick."""
    if to_next_backtick:
        closing = text.find("`", start + 1)
        return None if closing < 0 else closing + 1
    if text.startswith('\\"`', start + 1):
        return start + 4
    quote = text.find('"', start + 1)
    closing = text.rfind("`", start + 1, len(text) if quote < 0 else quote)
    return None if closing < 0 else closing + 1


def _bare_end(text: str, start: int) -> Optional[int]:
    end = start
    while end < len(text) and text[end] not in _GO_SPACE and text[end] != '"':
        end += 1
    return None if end == start else end


def _value_end(text: str, start: int, to_next_backtick: bool) -> Optional[int]:
    if start == len(text):
        return None
    end = None
    if text[start] == '"':
        end = _quoted_end(text, start)
    elif text[start] == "`":
        end = _backticked_end(text, start, to_next_backtick)
    return end if end is not None else _bare_end(text, start)


def tokenize_pairs(text: str, version: VersionTuple = (1, 29, 0)) -> List[Pair]:
    """(name, value) pairs as the loader reads a params string; name "" for a positional
    value. Before 2.2.0 a quoted value loses every leading and trailing quote
    (strings.Trim), then `\"` becomes `"`; nothing else is unescaped."""
    to_next_backtick = version >= (2, 0, 0)
    pairs: List[Pair] = []
    index = 0
    while index < len(text):
        name, value_start = "", _name_end(text, index)
        end = _value_end(text, value_start, to_next_backtick) if value_start is not None else None
        if end is not None:
            name = text[index : value_start - 1]
        else:  # no NAME= here, or no value after it: the same place, as a positional value
            value_start, end = index, _value_end(text, index, to_next_backtick)
        if end is None:
            index += 1
            continue
        value = text[value_start:end]
        if value.startswith('"'):
            unquoted = _go_unquote(value) if version >= (2, 2, 0) else None
            value = unquoted if unquoted is not None else value.strip('"').replace('\\"', '"')
        pairs.append((name, value))
        index = end
    return pairs


_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}
_GO_NUMERIC = {"x": 2, "u": 4, "U": 8}  # hex digits after the letter


def _go_unquote(literal: str) -> Optional[str]:
    """strconv.Unquote of a "double-quoted" Go literal, or None where Go refuses it."""
    if len(literal) < 2 or not literal.endswith('"') or "\n" in literal:
        return None
    body, chars, index = literal[1:-1], [], 0
    while index < len(body):
        char = body[index]
        if char == '"':
            return None
        if char != "\\":
            chars.append(char)
            index += 1
            continue
        kind = body[index + 1 : index + 2]
        if kind in _GO_ESCAPES:
            chars.append(_GO_ESCAPES[kind])
            index += 2
        elif kind in _GO_NUMERIC or (kind and kind in string.octdigits):
            width, digit_set = (_GO_NUMERIC[kind], string.hexdigits) if kind in _GO_NUMERIC else (3, string.octdigits)
            start = index + (2 if kind in _GO_NUMERIC else 1)
            digits = body[start : start + width]
            if len(digits) < width or any(d not in digit_set for d in digits):
                return None
            code = int(digits, 16 if kind in _GO_NUMERIC else 8)
            if (code > 0xFF and kind not in "uU") or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                return None
            chars.append(chr(code))  # \x and octal give a byte; above 0x7f Go keeps the raw byte
            index = start + width
        else:
            return None
    return "".join(chars)


def _go_trim_space(text: str) -> str:
    """strings.TrimSpace: Unicode white space, which (unlike str.strip) excludes \x1c-\x1f."""
    return text.strip("".join(c for c in set(text) if c in "\t\n\v\f\r \x85\xa0" or (c > "\xff" and c.isspace())))


def parse_param_string(text: str, version: ServerVersion) -> List[Pair]:
    if version.json_params:  # 1.30.0 trims the string and tries JSON first; before, the tokenizer alone
        text = _go_trim_space(text)
        if (text.startswith("{") and text.endswith("}")) or (text.startswith("[") and text.endswith("]")):
            pairs = _json_pairs(text)
            if pairs is not None:
                return pairs
    return tokenize_pairs(text, version.number)


def _evaluate(value: str, env: Mapping[str, str]) -> str:
    """Before v2.3.0 values were evaluated: $VAR expanded, `cmd` run. The fake runs nothing."""
    value = _BACKTICKS.sub("", value)
    return _ENV_REF.sub(lambda m: env.get(m.group(1) or m.group(2), ""), value)


class ResolvedParams:
    """The outcome of parsing one run's params against the DAG's declared defaults."""

    def __init__(self, raw: str, received: "OrderedDict[str, str]", effective: "OrderedDict[str, str]"):
        self.raw = raw
        self.received = received  # what the server understood from the request alone
        self.effective = effective  # defaults overridden by the request, as steps see them

    @property
    def joined(self) -> str:
        """The run's `params` field: `K=V` pairs joined by spaces, unescaped (runstatus.go)."""
        return " ".join(f"{k}={v}" for k, v in self.effective.items())


def resolve_params(
    raw: str,
    defaults: Mapping[str, str],
    version: ServerVersion,
    env: Optional[Mapping[str, str]] = None,
) -> ResolvedParams:
    env = env or {}
    pairs = parse_param_string(raw, version)
    if not version.literal_params:
        pairs = [(name, _evaluate(value, env)) for name, value in pairs]
    received: "OrderedDict[str, str]" = OrderedDict()
    for index, (name, value) in enumerate(pairs):
        received[name or str(index + 1)] = value
    # Positional values are named "1", "2", ... before overriding, so they never replace
    # a named default; they are appended (parseParams then overrideParams).
    effective: "OrderedDict[str, str]" = OrderedDict((k, v) for k, v in defaults.items())
    effective.update(received)
    return ResolvedParams(raw, received, effective)


def escaped_defaults(defaults: Mapping[str, str]) -> str:
    """The DAG's `defaultParams`: K="v" pairs with Go %q quoting."""
    return " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in defaults.items())


def param_strings(defaults: Mapping[str, str]) -> List[str]:
    return [f"{k}={v}" for k, v in defaults.items()]


def missing_required(required: List[str], effective: Dict[str, str]) -> List[str]:
    return [name for name in required if effective.get(name, "") == ""]


def unknown_named(received: Mapping[str, str], defaults: Mapping[str, str]) -> Optional[str]:
    """From 2.3.4 a DAG that declares named params refuses any other name (400 before the
    start; spec/params.go rejectUnknownNamedParams): the message, or None."""
    declared = sorted(k for k in defaults if not k.isdigit())
    unknown = sorted(k for k in received if not k.isdigit() and k not in declared)
    if not declared or not unknown:
        return None
    quoted = ", ".join(json.dumps(k) for k in unknown)
    return f"unknown parameter(s): {quoted}; accepted parameters are: {', '.join(declared)}"


def typed_refusal(received: Mapping[str, str], definitions: List[Dict[str, Any]]) -> Optional[str]:
    """The 400 a 2.5.0+ server gives for a value its typed definition refuses. The fake
    checks the type and the enum only; the message follows coerceStringToType's."""
    for definition in definitions:
        name = definition.get("name")
        if name not in received:
            continue
        value, kind = received[name], definition.get("type", "string")
        ok = {
            "integer": re.fullmatch(r"[+-]?\d+", value.strip()) is not None,
            "number": re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", value.strip()) is not None,
            "boolean": value.lower() in ("true", "false"),
        }.get(kind, True)
        if not ok:
            return f'invalid parameter value: parameter "{name}": cannot coerce "{value}" to {kind}'
        choices = [go_value(c) for c in definition.get("enum") or []]
        if choices and value not in choices:
            return f'invalid parameter value: parameter "{name}": value must be one of {", ".join(choices)}'
    return None


def start_refusal(
    version: ServerVersion, received: Mapping[str, str], defaults: Mapping[str, str], definitions: List[Dict[str, Any]]
) -> Optional[str]:
    """Why the server refuses these params before it starts anything (a 400), or None."""
    unknown = unknown_named(received, defaults) if version.at_least(2, 3, 4) else None
    return unknown or (typed_refusal(received, definitions) if version.at_least(2, 5, 0) else None)
