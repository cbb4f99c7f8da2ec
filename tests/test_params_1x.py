"""Params for Dagu 1.17-1.29, which read the `params` string with a tokenizer, not JSON.

The oracle is the fake server's model of that tokenizer (tests/fakedagu/params.py,
`tokenize_pairs`): the cases pinned below were worked out by hand from the regexp in
Dagu's internal/digraph/params.go (v1.17.0, v1.22.0) and internal/core/spec/params.go
(v1.26.7, v1.29.0), which is the same at each of those tags.
"""

import json
import re

import pytest
from hypothesis import example, given, settings, strategies as st

from dagu_ci.errors import UsageError
from dagu_ci.server.params import encode_params
from tests.conftest import run_cli
from tests.fakedagu import Dag, Step, out
from tests.fakedagu.params import tokenize_pairs

# -- the oracle: Dagu's tokenizer, pinned ---------------------------------------------


@pytest.mark.parametrize(
    "text, pairs",
    [
        # dagu-ci before this fix: `\` sent as `\\` let the next value's quote close the first
        ('A="\\\\" B=" TARGET=production "', [("A", '\\" B='), ("TARGET", "production")]),
        ('A="C:\\\\temp"', [("A", "C:\\\\temp")]),  # no `\\` escape: both backslashes stay
        ('A="x\\"y" B=2', [("A", 'x"y'), ("B", "2")]),
        ('A="ends\\""', [("A", "ends\\")]),  # every outer quote is trimmed, then `\"` unescaped
        ('A="\\"', [("A", "\\")]),  # no other quote: the escape's quote closes the value
        ('A="open B=1', [("", "A="), ("", "open"), ("B", "1")]),
        ('pos "two words" K=`cmd`', [("", "pos"), ("", "two words"), ("K", "`cmd`")]),
        ("A=1\vB=2 C=\u00a0", [("A", "1\vB=2"), ("C", "\u00a0")]),  # Go's \s is ASCII only
        ('A= B=""', [("", "A="), ("B", "")]),
    ],
)
def test_tokenizer_model(text, pairs):
    assert tokenize_pairs(text) == pairs


# -- the encoding ---------------------------------------------------------------------


def received(params):
    return dict(tokenize_pairs(encode_params(params, json_params=False)))


def test_a_backslash_cannot_inject_a_param():
    params = {"A": "\\", "B": " TARGET=production "}
    assert received(params) == params


@pytest.mark.parametrize("value", ["C:\\temp", "C:\\temp\\", 'a\\"b', '"quoted" first', "\\\\server\\share", "", " "])
def test_values_arrive_exactly(value):
    assert received({"V": value, "NEXT": "x"}) == {"V": value, "NEXT": "x"}


def test_one_value_ending_in_a_backslash_after_a_space_is_sent_last():
    params = {"DIR": "C:\\Program Files\\", "NEXT": "x y"}
    assert encode_params(params, json_params=False).startswith('NEXT="x y" ')
    assert received(params) == params


@pytest.mark.parametrize(
    "params, problem",
    [
        ({"MSG": 'say "hi"'}, r"param MSG: Dagu before 1\.30 cannot receive a value that ends with a double quote"),
        (
            {"A": "x \\", "B": "y \\"},
            r"param B: Dagu before 1\.30 cannot receive more than one value that ends with a backslash",
        ),
        ({"a b": "1"}, r"param key 'a b'"),
        ({"": "1"}, r"param key ''"),
    ],
)
def test_values_the_tokenizer_cannot_read_back_are_refused(params, problem):
    with pytest.raises(UsageError, match=problem) as error:
        encode_params(params, json_params=False)
    assert "\n" not in error.value.message


def test_json_servers_take_those_values():
    params = {"MSG": 'say "hi"', "A": "x \\", "B": "y \\"}
    assert json.loads(encode_params(params, json_params=True)) == params


keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,6}", fullmatch=True)
values = st.text(
    alphabet=st.sampled_from(["a", "=", '"', "\\", "`", " ", "\t", "\n", "\v", "\r", "$", "é", "\u00a0", "\u2028"]),
    max_size=10,
) | st.text(max_size=8)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(keys, values, max_size=5))
@example({"A": "\\", "B": " TARGET=production "})
@example({"A": "C:\\temp"})
def test_every_value_dagu_ci_sends_is_the_value_dagu_reads(params):
    try:
        encoded = encode_params(params, json_params=False)
    except UsageError as error:  # refused: only what the tokenizer cannot carry, in one line
        assert "\n" not in error.message and error.message.startswith("param ")
        assert any(v.endswith('"') for v in params.values()) or sum(v.endswith("\\") for v in params.values()) > 1
        return
    assert dict(tokenize_pairs(encoded)) == params
    assert len(tokenize_pairs(encoded)) == len(params)  # nothing injected, nothing merged


# -- end to end: the fake is the stand-in for a real 1.x server -----------------------


def _dag():
    return Dag(
        file="deploy", params={"A": "", "B": "", "TARGET": "staging"}, steps=[Step("show", [out("target={TARGET}")])]
    )


@pytest.mark.parametrize("version", ["1.17.0", "1.22.0", "1.26.7", "1.29.0"])
def test_injection_attempt_arrives_as_data(fake_factory, version):
    server = fake_factory(_dag(), version=version)
    result = run_cli(
        "run", "deploy", "--url", server.url, "--run-id", "i1", "--param", "A=\\", "--param", "B= TARGET=production "
    )
    assert result.code == 0, result.output
    assert server.get_run("deploy", "i1").parsed_params == {"A": "\\", "B": " TARGET=production "}
    assert "target=staging" in result.stdout


def test_unencodable_value_exits_2_before_the_start(fake_factory):
    server = fake_factory(_dag(), version="1.26.7")
    result = run_cli("run", "deploy", "--url", server.url, "--param", 'A=say "hi"')
    assert result.code == 2, result.output
    assert re.fullmatch(r"dagu-ci: error: param A: Dagu before 1\.30 cannot receive .*\n", result.stderr)
    assert not any(r.path.endswith("/start") for r in server.requests)
