"""How the real server turns the one `params` string into values (API.md §3.2).

v1.30.0+ understands a JSON object/array string; every version also applies the
K=V regex, and before v1.30.0 a JSON string goes through that regex too, giving
garbage such as `1={ 2=user ...` (dagucloud/dagu#1550).
"""
from __future__ import annotations

import json
import re
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .versions import ServerVersion

Pair = Tuple[str, str]  # (name, value); name "" for a positional value

# The loader's regex: optional NAME=, then a "quoted" (with \" escapes), `backticked` or bare value.
_PARAM_RE = re.compile(r'(?:([^\s=]+)=)?("(?:\\"|[^"])*"|`(?:\\"|[^"]*)`|[^"\s]+)')
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


def _regex_pairs(text: str) -> List[Pair]:
    pairs: List[Pair] = []
    for match in _PARAM_RE.finditer(text):
        name, value = match.group(1) or "", match.group(2)
        if value.startswith('"'):
            # strings.Trim strips *every* leading/trailing quote, then \" -> "
            value = value.strip('"').replace('\\"', '"')
        pairs.append((name, value))
    return pairs


def parse_param_string(text: str, version: ServerVersion) -> List[Pair]:
    text = text.strip()
    if version.json_params and (
        (text.startswith("{") and text.endswith("}")) or (text.startswith("[") and text.endswith("]"))
    ):
        pairs = _json_pairs(text)
        if pairs is not None:
            return pairs
    return _regex_pairs(text)


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
    pairs = parse_param_string(raw, version) if raw.strip() else []
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


def start_refusal(version: ServerVersion, received: Mapping[str, str], defaults: Mapping[str, str],
                  definitions: List[Dict[str, Any]]) -> Optional[str]:
    """Why the server refuses these params before it starts anything (a 400), or None."""
    unknown = unknown_named(received, defaults) if version.at_least(2, 3, 4) else None
    return unknown or (typed_refusal(received, definitions) if version.at_least(2, 5, 0) else None)
