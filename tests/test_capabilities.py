"""Every difference between Dagu versions has one home: dagu_ci/server/capabilities.py.

The guard below reads the source of every other module and fails on anything that
compares versions there: a version-like tuple, a comparison with a version or a
`*_SINCE` constant, or a call of `at_least`.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

from dagu_ci.server.capabilities import (
    MIN_SUPPORTED,
    Capabilities,
    api_root,
    format_version,
    modern_api,
    modern_at,
    oldest_supported,
    parse_version,
    supported,
)

PACKAGE = Path(__file__).resolve().parent.parent / "dagu_ci"
TABLE = PACKAGE / "server" / "capabilities.py"


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _version_like(node: ast.AST) -> bool:
    """(2, 0, 0): three small ints. Status sets such as (400, 404, 409) are not versions."""
    return (
        isinstance(node, ast.Tuple)
        and len(node.elts) == 3
        and all(isinstance(e, ast.Constant) and type(e.value) is int and 0 <= e.value < 100 for e in node.elts)
    )


def _versioned(node: ast.AST) -> bool:
    name = _name(node)
    return _version_like(node) or name.endswith("_SINCE") or name.lower() in ("version", "min_supported")


def version_comparisons(source: str) -> Iterator["tuple[int, str]"]:
    """(line, what) for each place in `source` that compares or spells out a version."""
    for node in ast.walk(ast.parse(source)):
        if _version_like(node):
            yield node.lineno, "a version tuple"
        elif (
            isinstance(node, ast.Compare)
            and any(_versioned(n) for n in [node.left, *node.comparators])
            and not all(isinstance(op, (ast.Is, ast.IsNot)) for op in node.ops)
        ):  # `version is None` is no comparison
            yield node.lineno, "a version comparison"
        elif isinstance(node, ast.Call) and _name(node.func) == "at_least":
            yield node.lineno, "an at_least() call"
        elif isinstance(node, (ast.Name, ast.Attribute)) and _name(node).endswith("_SINCE"):
            yield node.lineno, f"{_name(node)}"


def test_no_version_is_compared_outside_the_capabilities_table():
    found: List[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == TABLE:
            continue
        for line, what in version_comparisons(path.read_text(encoding="utf-8")):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {what}")
    assert not found, "version differences belong in dagu_ci/server/capabilities.py:\n" + "\n".join(sorted(set(found)))


@pytest.mark.parametrize(
    "source",
    [
        "if server.version >= (2, 0, 0): pass",
        "ok = client.api.at_least(X)",
        "needed = SPEC_RUNS_SINCE",
        "old = info.version < MIN_SUPPORTED",
    ],
)
def test_the_guard_sees_each_kind_of_comparison(source):
    assert list(version_comparisons(source))


@pytest.mark.parametrize(
    "source",
    [
        "allow = (400, 404, 409)",
        "if response.status_code in (404, 405): pass",
        "text = version_text or 'unknown'",
        "if version is not None: pass",
    ],
)
def test_the_guard_lets_other_tuples_be(source):
    assert not list(version_comparisons(source))


# -- the table --------------------------------------------------------------------


def caps(text: Optional[str], modern: Optional[bool] = None) -> Capabilities:
    version = parse_version(text)
    return Capabilities.of(version, modern_api(version) if modern is None else modern)


def test_versions_parse_as_dagu_reports_them():
    assert parse_version("2.6.5") == (2, 6, 5)
    assert parse_version("v1.30.3-23-gabc") == (1, 30, 3)
    assert parse_version("dev") is None and parse_version("0.0.0") is None
    assert format_version((1, 23, 0)) == "1.23.0" and format_version(None) == "unknown"


def test_api_root_and_support_by_family():
    assert api_root((2, 0, 0)) == "/api/v1" and api_root((1, 30, 3)) == "/api/v2"
    assert modern_api((2, 0, 0)) and not modern_api((1, 30, 3))
    assert supported(MIN_SUPPORTED) and not supported((1, 16, 12))


def test_a_version_places_its_api_and_a_dev_build_is_placed_by_its_api_path():
    assert modern_at((2, 0, 0), "http://host/api/v2") and not modern_at((1, 30, 3), "http://host/api/v1")
    assert not modern_at(None, "http://host/dagu/api/v2") and modern_at(None, "http://host/dagu/api/v1")


def test_messages_name_the_oldest_supported_version_as_dagu_numbers_it():
    assert oldest_supported() == "1.17"


@pytest.mark.parametrize(
    "version, expected",
    [
        ("1.22.9", None),
        ("2.1.0", None),
        ("2.2.0", "tags"),
        ("2.5.9", "tags"),
        ("2.6.0", "labels"),
    ],
)
def test_labels_field(version, expected):
    assert caps(version).label_field == expected


@pytest.mark.parametrize(
    "feature, first, before",
    [
        ("json_params", "1.30.0", "1.29.9"),
        ("literal_params", "2.3.0", "2.2.9"),
        ("refuses_unknown_params", "2.3.4", "2.3.3"),
        ("events_stream", "2.3.0", "2.2.9"),
        ("spec_runs", "1.23.0", "1.22.10"),
        ("spec_enqueue", "1.24.0", "1.23.4"),
        ("validate", "1.23.0", "1.22.10"),
        ("creates_with_spec", "1.23.0", "1.22.10"),
        ("outputs", "1.29.0", "1.28.9"),
        ("artifacts", "2.5.0", "2.4.9"),
        ("log_download", "2.0.0", "1.30.3"),
        ("latest_alias", "1.22.10", "1.22.9"),
        ("status_filter_repeats", "2.4.2", "2.4.1"),
        ("name_filter_is_substring", "2.4.1", "2.4.0"),
        ("sub_runs_by_id", "1.24.0", "1.23.4"),
    ],
)
def test_each_feature_begins_at_its_version(feature, first, before):
    assert getattr(caps(first), feature) is True
    assert getattr(caps(before), feature) is False
    assert Capabilities.since(feature) == parse_version(first)


def test_sub_run_paths_and_fields():
    assert (caps("1.24.0").sub_runs_path, caps("1.24.0").sub_runs_field) == ("sub-dag-runs", "subRuns")
    assert (caps("1.23.4").sub_runs_path, caps("1.23.4").sub_runs_field) == ("children", "children")


def test_one_x_answers_a_param_refusal_with_a_500():
    assert caps("1.30.3").param_refusal_is_500 and not caps("2.0.0").param_refusal_is_500


def test_an_unknown_version_is_the_newest_of_its_family():
    dev_2x, dev_1x = caps("dev", modern=True), caps("dev", modern=False)
    assert dev_2x.events_stream and dev_2x.artifacts and dev_2x.label_field == "labels" and dev_2x.json_params
    assert dev_1x.outputs and dev_1x.spec_enqueue and not dev_1x.log_download and not dev_1x.events_stream
    # The one exception (kept from before the table): JSON params only where the family is 2.x.
    assert not dev_1x.json_params
