"""Params as a user types them, and as each server generation must receive them."""
import json

import pytest

from dagu_ci.errors import UsageError
from dagu_ci.params import encode_params, merge_params, parse_params_text


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
    assert encode_params({"A": "1", "MSG": 'say "hi"'}, json_params=False) == 'A="1" MSG="say \\"hi\\""'
