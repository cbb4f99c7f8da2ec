"""Params as a user types them, and as each server generation must receive them."""

import json

import pytest

from dagu_ci.errors import UsageError
from dagu_ci.server.params import encode_params, merge_params, parse_params_text, typed_problems


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"VERSION": "1.2.3", "N": 3}', {"VERSION": "1.2.3", "N": "3"}),
        ("VERSION: 1.2.3\nDEBUG: true\nEMPTY:\n", {"VERSION": "1.2.3", "DEBUG": "true", "EMPTY": ""}),
        ('VERSION=1.2.3 NOTE="two words"', {"VERSION": "1.2.3", "NOTE": "two words"}),
        ("URL: http://x/?a=b", {"URL": "http://x/?a=b"}),
        ("{A: 1, B: two}", {"A": "1", "B": "two"}),
        ("", {}),
    ],
)
def test_params_text_forms(text, expected):
    assert parse_params_text(text) == expected


def test_param_overrides_params_in_order():
    assert merge_params("A=1 B=2", ["B=3", "C=x=y"]) == {"A": "1", "B": "3", "C": "x=y"}


@pytest.mark.parametrize("bad", ["NOEQUALS", "=value", "has space=1"])
def test_param_without_key_is_a_usage_error(bad):
    with pytest.raises(UsageError, match="KEY=VALUE"):
        merge_params(None, [bad])


@pytest.mark.parametrize("bad", ["just words here", "- a\n- list\n", "[1, 2]"])
def test_params_text_that_is_not_a_mapping_is_a_usage_error(bad):
    with pytest.raises(UsageError, match="--params"):
        parse_params_text(bad)


def test_encoding_json_for_new_servers():
    encoded = encode_params({"MSG": 'say "hi" $HOME'}, json_params=True)
    assert json.loads(encoded) == {"MSG": 'say "hi" $HOME'}


def test_encoding_quoted_pairs_for_old_servers():
    assert encode_params({"A": "1", "MSG": 'say "hi" now'}, json_params=False) == 'A="1" MSG="say \\"hi\\" now"'


@pytest.mark.parametrize(
    "definition, value, problem",
    [
        ({"type": "integer"}, " 42 ", None),
        ({"type": "integer"}, "4.2", "'4.2' is not an integer"),
        (
            {"type": "integer"},
            "1_000",
            "'1_000' is not an integer",
        ),  # Go's ParseInt refuses it; Python's int() would not
        ({"type": "number", "minimum": 0.5}, "1e-3", "1e-3 is below the minimum 0.5"),
        ({"type": "boolean"}, "TRUE", None),
        ({"type": "boolean"}, "yes", "'yes' is not true or false"),
        ({"type": "integer", "enum": [1, 2]}, "2", None),
        ({"type": "boolean", "enum": [True]}, "false", "'false' is not one of true"),
        ({"type": "string", "minLength": 2, "maxLength": 3}, "abcd", "'abcd' is longer than 3 characters"),
        ({"type": "string", "pattern": "^v[0-9]+$"}, "v1x", "'v1x' does not match ^v[0-9]+$"),
        ({"type": "string", "pattern": "(?P<x"}, "any", None),  # a pattern Python cannot read: the server decides
    ],
)
def test_typed_params_checked_like_the_server(definition, value, problem):
    found = typed_problems({"P": value}, [{"name": "P", **definition}])
    assert found == ([f"param P: {problem}"] if problem else [])


def test_required_typed_param_without_a_default():
    definitions = [
        {"name": "A", "type": "string", "required": True},
        {"name": "B", "type": "string", "required": True, "default": "x"},
        {"type": "string", "required": True},
    ]  # positional: matched by place, not checked
    assert typed_problems({}, definitions) == ["param A is required"]
