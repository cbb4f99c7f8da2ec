"""A secret (token, password, a password inside --url) never reaches output, in any form."""

from __future__ import annotations

import base64
import json
import re

import pytest

from dagu_ci import cli, redaction
from dagu_ci.redaction import Secrets
from tests.conftest import run_cli
from tests.fakedagu import Dag, Step, fail, out
from tests.reporting import Runner

FAST = ("--poll-interval", "0.1")


@pytest.fixture(autouse=True)
def own_secrets(monkeypatch):
    """In-process calls teach the process-wide SECRETS; keep that to the test."""
    monkeypatch.setattr(redaction, "SECRETS", Secrets())


def dag(*steps):
    return Dag(file="deploy", name="deploy", steps=list(steps) or [Step("build", [out("built")])])


def assert_one_line_error(result, code, pattern, *secrets):
    assert result.code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dagu-ci: error: "), result.stderr
    assert re.search(pattern, lines[0]), lines[0]
    for secret in secrets:
        assert secret not in result.output


# -- every form a secret can be printed in ---------------------------------------------


def test_every_form_of_a_secret_is_redacted():
    secrets = Secrets()
    secrets.add_connection(tokens=["tok-SECRET\n"], usernames=["ci"], passwords=["p@ss wörd"], urls=[])
    shown = [
        "header value: 'Bearer tok-SECRET\\n'",  # repr: the newline escaped
        json.dumps({"password": "p@ss wörd"}),  # JSON: ö escaped
        "http://ci:p%40ss%20w%C3%B6rd@host/",  # percent-encoded, as in a URL
        "Authorization: Basic " + base64.b64encode("ci:p@ss wörd".encode()).decode(),
        "plain p@ss wörd",
    ]
    for text in shown:
        redacted = secrets.redact(text)
        assert "tok-SECRET" not in redacted and "p@ss" not in redacted and "%40ss" not in redacted, redacted
        assert "***" in redacted
    assert secrets.redact("nothing secret here") == "nothing secret here"


def test_a_password_inside_the_url_is_a_secret_in_both_spellings():
    secrets = Secrets()
    secrets.add_connection(tokens=[], usernames=[], passwords=[], urls=["https://ci:p%2fw%40rd@host:99999/base"])
    assert secrets.redact("p/w@rd and p%2fw%40rd and p%2Fw%40rd") == "*** and *** and ***"


# -- tokens: cleaned or refused before anything is sent ----------------------------------


def test_a_token_with_a_trailing_newline_works_and_is_never_printed(fake_factory):
    server = fake_factory(dag(), auth=("token", "tok-SECRET"))
    result = run_cli("run", "deploy", "--url", server.url, *FAST, env={"DAGU_API_TOKEN": "tok-SECRET\n"})
    assert result.code == 0, result.output
    assert "tok-SECRET" not in result.output


@pytest.mark.parametrize(
    "token, what",
    [
        ("tok-SECRET\x01x", "a control character"),
        ("tok-SECRET\nsecond-line", "a control character"),
        ("tok-SECRET-\u2603", "a character an HTTP header cannot carry"),
    ],
)
def test_a_token_a_header_cannot_carry_is_a_usage_error(fake_factory, token, what):
    server = fake_factory(dag(), auth=("token", "tok-SECRET"))
    result = run_cli("run", "deploy", "--url", server.url, *FAST, env={"DAGU_API_TOKEN": token})
    assert_one_line_error(result, 2, rf"--token/DAGU_API_TOKEN holds {what}", "tok-SECRET", "\u2603")
    assert server.requests == []


def test_a_non_latin_1_password_is_sent_as_utf8(fake_factory):
    password = "pässwörd-\u2603"  # Go compares the bytes of its UTF-8 string
    server = fake_factory(dag(), auth=("basic", "ci", password))
    result = run_cli("run", "deploy", "--url", server.url, *FAST, "--username", "ci", env={"DAGU_PASSWORD": password})
    assert result.code == 0, result.output
    assert password not in result.output


# -- a password inside --url --------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://ci:PW-SECRET@host:99999",
        "http://ci:PW-SECRET@host:8x80",
        "ftp://ci:PW-SECRET@host",
        "ci:PW-SECRET@host",
    ],
)
def test_a_bad_url_never_prints_its_password(url):
    result = run_cli("run", "deploy", "--url", url)
    assert_one_line_error(result, 2, r"bad --url", "PW-SECRET")


def test_a_bad_url_from_the_environment_never_prints_its_password():
    result = run_cli("dags", env={"DAGU_URL": "http://ci:PW-SECRET@host:99999"})
    assert_one_line_error(result, 2, r"bad --url", "PW-SECRET")


def test_url_credentials_authenticate_and_are_masked_on_github(fake_factory, tmp_path):
    server = fake_factory(dag(Step("leak", [out("the password is p@ss-SECRET")])), auth=("basic", "ci", "p@ss-SECRET"))
    url = server.url.replace("http://", "http://ci:p%40ss-SECRET@")
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp_path / "out"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "sum"),
    }
    result = run_cli("run", "deploy", "--url", url, *FAST, env=env)
    assert result.code == 0, result.output
    masked = [c.data for c in Runner.read(result.stdout).named("add-mask")]
    assert {"p@ss-SECRET", "p%40ss-SECRET"} <= set(masked)
    rest = result.stdout.split("::add-mask::")[-1].split("\n", 1)[1]
    assert "p@ss-SECRET" not in rest + result.stderr and "p%40ss-SECRET" not in rest + result.stderr
    assert "the password is ***" in rest


# -- every path out: error line, reporter lines, debug tracebacks ------------------------


def test_a_remote_log_line_holding_the_password_is_redacted(fake_factory):
    server = fake_factory(dag(Step("leak", [out("password=pw-SECRET")])), auth=("basic", "ci", "pw-SECRET"))
    result = run_cli("run", "deploy", "--url", server.url, *FAST, "--username", "ci", "--password", "pw-SECRET")
    assert result.code == 0, result.output
    assert "password=***" in result.stdout and "pw-SECRET" not in result.output


def test_debug_traceback_is_redacted(monkeypatch, capsys):
    def broken(**kwargs):
        raise RuntimeError("header value: 'Bearer tok-SECRET\\n'")

    monkeypatch.setattr(cli.cli, "main", broken)
    monkeypatch.setenv("DAGU_CI_DEBUG", "1")
    monkeypatch.setenv("DAGU_API_TOKEN", "tok-SECRET\n")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["dags"])
    err = capsys.readouterr().err
    assert exit_.value.code == 4
    assert "Traceback" in err and "RuntimeError" in err
    assert "tok-SECRET" not in err and "Bearer ***" in err


def test_files_for_people_are_redacted_too(fake_factory, tmp_path):
    """The GitHub job summary (params included) and a JUnit failure's log tail."""
    leak = Dag(
        file="deploy", name="deploy", params={"NOTE": ""}, steps=[Step("leak", [out("using tok-SECRET now"), fail(1)])]
    )
    server = fake_factory(leak, auth=("token", "tok-SECRET"))
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp_path / "out"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "sum"),
        "DAGU_API_TOKEN": "tok-SECRET",
    }
    result = run_cli(
        "run",
        "deploy",
        "--url",
        server.url,
        *FAST,
        "--param",
        "NOTE=tok-SECRET",
        "--junit",
        str(tmp_path / "junit.xml"),
        env=env,
    )
    assert result.code == 1, result.output
    summary, junit = (tmp_path / "sum").read_text(), (tmp_path / "junit.xml").read_text()
    assert '{"NOTE": "***"}' in summary and "using *** now" in junit
    assert "tok-SECRET" not in summary + junit


def test_documents_stay_valid_json_when_redacted():
    redaction.SECRETS.add('pw"SECRET')
    document = {"outputs": {'KEY pw"SECRET': 'value pw"SECRET'}, "exit_code": 0, "steps": ['pw"SECRET']}
    text = json.dumps(redaction.redact_value(document))
    assert json.loads(text) == {"outputs": {"KEY ***": "value ***"}, "exit_code": 0, "steps": ["***"]}
