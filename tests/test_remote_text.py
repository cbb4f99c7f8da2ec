"""Remote text is data (issues 10 and 15): whatever the server sends (log lines, step and DAG
names, error messages, outputs) never becomes a CI command, a variable or markup in what
the host reads, in every command and with every reporter."""

from __future__ import annotations

import json
import re

import junitparser
import pytest
from hypothesis import given, settings, strategies as st

from dagu_ci.follow.events import Level, Notice
from dagu_ci.hosts.github import GitHubReporter
from dagu_ci.hosts.gitlab import GitLabReporter
from dagu_ci.remotetext import EnvFormat, UnsafeOutput, env_file, inert, json_text
from dagu_ci.reporters.junit import JUnitReporter
from dagu_ci.reporters.plain import PlainReporter
from dagu_ci.reporters.summary import job_summary
from dagu_ci.run.result import RunResult
from dagu_ci.server.models import RunSnapshot, RunStatus, StepStatus
from tests.conftest import run_cli
from tests.fakedagu import Dag, Step, err, out, output
from tests.hostparsers import HostFileError, ci_commands, github_env_file, gitlab_dotenv
from tests.reporting import PLAIN, T0, Out, Runner, accepted, done, feed, finished, log, started, step
from tests.test_run_e2e import log_lines

# What a DAG may print, or name a step, to make a CI runner act.
HOSTILE = [
    "::add-mask::hunter2",
    "::stop-commands::zzz",
    "::set-output name=pwn::1",
    "   ::warning::indented",
    "\t::error::tabbed",
    "\x1b[31m::add-mask::painted",
    "##[add-mask]legacy",
    "prefix ##[set-output name=pwn;]legacy-anywhere",
    "##vso[task.setvariable variable=PWN]1",
    "text ##VSO[task.complete result=Succeeded;]done",
    "##[group]fake group",
    "carriage\r::set-env name=X::1",
]
GITHUB = {"GITHUB_ACTIONS": "true"}


def unescaped(text: str) -> str:
    """The text as the DAG wrote it: inert() only adds a backslash."""
    return text.replace("\\::", "::").replace("\\[", "[")


def cli(server, *args, env=None):
    return run_cli(*args, "--url", server.url, env=env)


def finished_run(server, dag, run_id):
    assert cli(server, "start", dag, "--run-id", run_id).code == 0
    server.wait_for_status(dag, run_id, {4, 2})


# -- the neutraliser ------------------------------------------------------------------


def test_hostile_lines_become_readable_and_inert():
    for line in HOSTILE:
        shown = inert(line)
        assert ci_commands(shown) == [], line
        assert unescaped(shown) == line
    assert inert("ordinary line: a::b, ## [not a command]") == "ordinary line: a::b, ## [not a command]"
    assert inert("::add-mask::x") == "\\::add-mask::x"
    assert inert("##vso[task.setvariable]x") == "##vso\\[task.setvariable]x"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(":#[]v so\r\n\t\x1bxa-=]")), max_size=40))
def test_inert_text_runs_nothing_and_reads_the_same(text):
    shown = inert(text)
    assert ci_commands(shown) == []
    assert inert(shown) == shown
    if "\\" not in text:
        assert unescaped(shown) == text


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.text() | st.integers() | st.none(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)
    )
)
def test_json_reads_back_exactly_and_runs_nothing(value):
    for indent in (None, 2):
        text = json_text(value, indent)
        assert json.loads(text) == value
        assert ci_commands(text) == []


# -- reporters outside GitHub mode -------------------------------------------------------


def hostile_run():
    evil = "::add-mask::step"
    return [
        accepted(),
        started(evil),
        log(evil, *HOSTILE),
        log(evil, *HOSTILE, stream="stderr"),
        Notice("server says ##[add-mask]notice", Level.WARNING),
        done(evil, StepStatus.FAILED),
        finished(RunStatus.FAILED, step(evil, StepStatus.FAILED), step("##vso[x]", StepStatus.NOT_STARTED)),
    ]


@pytest.mark.parametrize(
    "make",
    [
        lambda out: PlainReporter(out, PLAIN),
        lambda out: GitLabReporter(out, PLAIN, env={}),
    ],
    ids=["plain", "gitlab"],
)
def test_reporters_print_remote_text_inert(make):
    out = Out()
    feed(make(out), hostile_run())
    assert ci_commands(out.getvalue()) == []
    shown = [unescaped(line) for line in out.getvalue().replace("\r", "\n").split("\n")]
    for line in HOSTILE:  # every line still there, readable, on both streams
        assert sum(line.split("\r")[-1] in shown_line for shown_line in shown) >= 2, line


# -- variable files ------------------------------------------------------------------------

NAMES = st.from_regex(r"[a-z][A-Za-z0-9_]{0,8}", fullmatch=True)
VALUES = st.text(alphabet=st.sampled_from(list("ab $#[:\n\r\t\"'=<\\{}")) | st.characters(), max_size=20)


def read_back(fmt, text):
    return github_env_file(text) if fmt is not EnvFormat.DOTENV else gitlab_dotenv(text)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(EnvFormat)), st.dictionaries(NAMES, VALUES, max_size=4))
def test_env_files_read_back_exactly_or_refuse(fmt, values):
    try:
        text = env_file(values, fmt)
    except UnsafeOutput:
        return
    assert read_back(fmt, text) == values
    assert ci_commands(text) == []


@pytest.mark.parametrize(
    "fmt,value",
    [
        (EnvFormat.ENV, "a b 'c' \"d\" $HOME x=y <<EOF ::1"),
        (EnvFormat.GITHUB_ENV, "line one\nNODE_OPTIONS=--require /tmp/evil.js\n"),
        (EnvFormat.GITHUB_ENV, "ghadelimiter_0\n\n  indented\ttab"),
        (EnvFormat.DOTENV, "$CI_JOB_TOKEN ${HOME} $$ 'q' \"q\" # not a comment"),
    ],
)
def test_values_each_format_carries(fmt, value):
    assert read_back(fmt, env_file({"notes": value}, fmt)) == {"notes": value}


@pytest.mark.parametrize(
    "fmt,value,why",
    [
        (EnvFormat.ENV, "line one\nNODE_OPTIONS=x", r"line break.*--format github-env"),
        (EnvFormat.ENV, "cr\rhere", "line break"),
        (EnvFormat.ENV, "nul\x00", "control character"),
        (EnvFormat.DOTENV, "two\nlines", r"line break.*--format json"),
        (EnvFormat.DOTENV, " padded", "white space"),
        (EnvFormat.GITHUB_ENV, "cr\r\nlf", "control character"),
        (EnvFormat.GITHUB_ENV, "ok\n::add-mask::x", "line starting with '::'"),
        (EnvFormat.ENV, "x ##[add-mask]y", r"'##\['.*runs as a command"),
        (EnvFormat.DOTENV, "##vso[task.setvariable variable=A]b", r"'##vso\['"),
    ],
)
def test_values_a_format_cannot_carry_are_refused(fmt, value, why):
    with pytest.raises(UnsafeOutput, match=why):
        env_file({"ok": "fine", "notes": value}, fmt)


@pytest.mark.parametrize(
    "name",
    [
        "a=b",
        "x\ny",
        "1st",
        "",
        "has space",
        "path",
        "PATH",
        "LD_PRELOAD",
        "NODE_OPTIONS",
        "node_options",
        "GITHUB_TOKEN",
        "DAGU_URL",
        "BASH_ENV",
    ],
)
def test_names_that_are_not_plain_unreserved_variables_are_refused(name):
    for fmt in EnvFormat:
        with pytest.raises(UnsafeOutput, match="output name"):
            env_file({name: "x"}, fmt)


def test_the_host_models_are_strict_enough_to_catch_an_injection():
    # The issue's exploit, written naively, sets a second variable in both hosts' eyes.
    naive = "notes=line one\nNODE_OPTIONS=--require /tmp/evil.js\n"
    assert "NODE_OPTIONS" in github_env_file(naive)
    assert "NODE_OPTIONS" in gitlab_dotenv(naive)
    assert gitlab_dotenv("t=$CI_JOB_TOKEN\n", {"CI_JOB_TOKEN": "secret"}) == {"t": "secret"}
    with pytest.raises(HostFileError):
        gitlab_dotenv("a=1\n\nb=2\n")


# -- end to end: every command ---------------------------------------------------------------


def hostile_dag():
    return Dag(
        file="evil",
        steps=[
            Step("::add-mask::x", [out(line) for line in HOSTILE] + [err("##vso[task.setvariable variable=E]1")]),
            Step("plain", [out("ok")], depends=["::add-mask::x"]),
        ],
    )


@pytest.mark.parametrize("extra", [(), ("--tail", "50"), ("--step", "::add-mask::x")])
def test_logs_print_remote_lines_inert_in_github_and_plain(fake_factory, extra):
    server = fake_factory(hostile_dag())
    finished_run(server, "evil", "l1")
    for env in (GITHUB, None):
        result = cli(server, "logs", "evil", "l1", *extra, env=env)
        assert result.code == 0, result.output
        assert ci_commands(result.stdout) == [] and ci_commands(result.stderr) == []
        shown = [unescaped(line) for line in result.stdout.replace("\r", "\n").splitlines()]
        assert "::stop-commands::zzz" in shown and "##[add-mask]legacy" in shown


def test_logs_json_carries_exact_lines_and_runs_nothing(fake_factory):
    server = fake_factory(hostile_dag())
    finished_run(server, "evil", "j1")
    result = cli(server, "logs", "evil", "j1", "--json", env=GITHUB)
    assert result.code == 0, result.output
    assert ci_commands(result.stdout) == []
    (first, _) = json.loads(result.stdout)["steps"]
    assert first["name"] == "::add-mask::x"
    assert "##[add-mask]legacy" in first["lines"] and "##vso[task.setvariable variable=PWN]1" in first["lines"]


def test_status_dags_and_history_print_names_inert(fake_factory):
    server = fake_factory(hostile_dag())
    finished_run(server, "evil", "s1")
    for command in (["status", "evil", "s1"], ["dags"], ["history", "evil"], ["status", "evil", "--json"]):
        result = cli(server, *command, env=GITHUB)
        assert result.code == 0, result.output
        assert ci_commands(result.stdout) == [], command
    table = cli(server, "status", "evil", "s1").stdout
    assert re.search(r"^  \\::add-mask::x\s+succeeded", table, re.M)


def test_plain_run_and_follow_print_remote_text_inert(fake_factory):
    server = fake_factory(hostile_dag())
    result = run_cli("run", "evil", "--url", server.url, "--poll-interval", "0.1")
    assert result.code == 0, result.output
    assert ci_commands(result.stdout) == [] and ci_commands(result.stderr) == []
    assert "##vso\\[task.setvariable variable=PWN]1" in result.stdout


@pytest.mark.parametrize("message", ["##[add-mask]secret-ish", "##[set-output name=pwn;]1", "##vso[task.complete]x"])
def test_the_error_line_carries_server_messages_inert(fake_factory, message):
    server = fake_factory(hostile_dag())
    server.fault(
        r"/dags/evil$",
        method="GET",
        status=400,
        count=None,
        body=json.dumps({"code": "bad_request", "message": message}),
    )
    result = cli(server, "status", "evil", env=GITHUB)
    assert result.code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("dagu-ci: error: ") and unescaped(line).endswith(f"({message})")
    assert ci_commands(result.stderr) == []


# -- end to end: outputs --------------------------------------------------------------------


def outputs_dag(**values):
    return Dag(file="multi", steps=[Step("s", [output(key, value) for key, value in values.items()])])


def test_outputs_env_refuses_a_multi_line_value_and_prints_nothing(fake_factory):
    server = fake_factory(outputs_dag(VERSION="1.2.3", NOTES="line one\nNODE_OPTIONS=--require /tmp/evil.js"))
    finished_run(server, "multi", "m1")
    result = cli(server, "outputs", "multi", "latest")
    assert result.code == 1, result.output
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert re.fullmatch(r"dagu-ci: error: output 'notes' holds a line break.*--format github-env.*", line)


def test_outputs_in_each_format_read_back_exactly(fake_factory):
    values = {"VERSION": "1.2.3", "NOTES": "line one\nNODE_OPTIONS=--require /tmp/evil.js", "PRICE": "$5 'each'"}
    server = fake_factory(outputs_dag(**values))
    finished_run(server, "multi", "m2")
    expected = {"version": "1.2.3", "notes": values["NOTES"], "price": values["PRICE"]}
    github_env = cli(server, "outputs", "multi", "m2", "--format", "github-env")
    assert github_env.code == 0, github_env.output
    assert github_env_file(github_env.stdout) == expected
    assert ci_commands(github_env.stdout) == []
    for flag in (["--format", "json"], ["--json"]):
        document = cli(server, "outputs", "multi", "m2", *flag)
        assert document.code == 0 and json.loads(document.stdout) == expected
    dotenv = cli(server, "outputs", "multi", "m2", "--format", "dotenv")
    assert dotenv.code == 1 and dotenv.stdout == ""
    assert "output 'notes' holds a line break" in dotenv.stderr


def test_outputs_dotenv_escapes_dollars_for_gitlab(fake_factory):
    server = fake_factory(outputs_dag(URL="https://x/?t=$CI_JOB_TOKEN", PLAIN="a b"))
    finished_run(server, "multi", "d1")
    result = cli(server, "outputs", "multi", "d1", "--format", "dotenv")
    assert result.code == 0, result.output
    assert gitlab_dotenv(result.stdout, {"CI_JOB_TOKEN": "secret"}) == {
        "url": "https://x/?t=$CI_JOB_TOKEN",
        "plain": "a b",
    }


def test_outputs_refuse_reserved_or_broken_names(fake_factory):
    server = fake_factory(
        outputs_dag(PATH="/tmp/evil", OK="1"), Dag(file="eq", steps=[Step("s", [output("A=B", "x")])])
    )
    finished_run(server, "multi", "n1")
    finished_run(server, "eq", "n2")
    result = cli(server, "outputs", "multi", "n1", "--format", "github-env")
    assert result.code == 1 and result.stdout == ""
    assert "output name 'path' is reserved" in result.stderr
    result = cli(server, "outputs", "eq", "n2")
    assert result.code == 1 and "output name 'a=b' is not a variable name" in result.stderr
    assert json.loads(cli(server, "outputs", "eq", "n2", "--format", "json").stdout) == {"a=b": "x"}


def test_outputs_json_and_another_format_conflict(fake_factory):
    server = fake_factory(outputs_dag(OK="1"))
    result = cli(server, "outputs", "multi", "--json", "--format", "env")
    assert result.code == 2 and "--json" in result.stderr


# -- what already held, kept: GitHub mode, the summary, GITHUB_OUTPUT, JUnit, GitLab -------


def test_github_mode_fences_remote_lines_and_shows_them_verbatim(fake_factory, tmp_path):
    server = fake_factory(hostile_dag())
    env = {**GITHUB, "GITHUB_OUTPUT": str(tmp_path / "out"), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary")}
    for command in (["run", "evil"], ["logs", "evil", "latest", "--follow"]):
        result = cli(server, *command, "--poll-interval", "0.1", env=env)
        assert result.code == 0, result.output
        shown = Runner.read(result.stdout)
        assert {c.name for c in shown.commands} <= {"group", "endgroup", "stop-commands"}, command
        # Verbatim behind the gutter (a line that sets a colour gets a reset at its end).
        remote = [line.replace("\x1b[0m", "") for line in log_lines("\n".join(shown.visible))]
        for line in HOSTILE[:-1]:
            assert line in remote, (command, line)


def unescaped_count(text: str, char: str) -> int:
    return len(re.findall(r"(?<!\\)(?:\\\\)*" + re.escape(char), text))


def test_job_summary_keeps_remote_names_as_text():
    names = [
        "x|y",
        "<img src=x onerror=alert(1)>",
        "[click](http://evil)",
        "`code` *em* _u_ ~s~",
        "two\nlines",
        "&amp; ![i](http://e/i.png) #h",
    ]
    snap = RunSnapshot(
        dag_name="a`b ``c|d <b>x</b> [x](http://evil)",
        run_id="r-1",
        status=RunStatus.FAILED,
        steps=tuple(step(name, StepStatus.FAILED) for name in names),
        started_at=T0,
    )
    result = RunResult("d", snap.dag_name, "r-1", "http://dagu.test/base (x)/dag-runs/d/r-1", snap, 1, duration=1.0)
    params = "````\n``` </details> ```\n<script>alert(1)</script>"
    lines = job_summary(result, params).split("\n")
    assert lines[0].count("`") == 2 and lines[0].startswith("### ❌ Dagu run of `a'b ''c|d <b>x</b>")
    rows = [line for line in lines if line.startswith("| ")]
    assert len(rows) == 2 + len(names)
    for row in rows[2:]:
        assert unescaped_count(row, "|") == 4, row
        for char in "<>[]`*_~&!#":
            assert unescaped_count(row, char) == 0, (row, char)
    (link,) = [line for line in lines if line.startswith("Run ")]
    assert link.startswith("Run [r-1](http://dagu.test/base%20%28x%29/dag-runs/d/r-1) in the Dagu UI")
    fence = lines.index("**Params**") + 2
    assert lines[fence] == "`" * 5 and lines[fence + 4] == "`" * 5  # longer than any run inside


def test_github_outputs_use_a_fresh_delimiter_and_read_back(tmp_path):
    values = {"notes": "one\nghadelimiter_x\n::add-mask::y"}
    texts = []
    for attempt in range(2):
        path = tmp_path / f"output{attempt}"
        reporter = GitHubReporter(Out(), PLAIN, output_path=str(path))
        feed(reporter, [accepted(), finished(RunStatus.SUCCEEDED, step("a"), outputs=values)])
        texts.append(path.read_text())
        read = github_env_file(texts[-1])
        assert json.loads(read["outputs"]) == values and read["run-id"] == "r-1"
    reporter.set_outputs({"multi": "a\nb"})
    assert github_env_file((tmp_path / "output1").read_text())["multi"] == "a\nb"
    delimiters = [re.findall(r"<<(\S+)", text) for text in (texts[1], (tmp_path / "output1").read_text())]
    assert delimiters[0] == [] and len(delimiters[1]) == 1 and delimiters[1][0] not in texts[0]


def test_junit_carries_hostile_names_as_text(tmp_path):
    path = tmp_path / "junit.xml"
    evil = "a]]><x/>\x1b[31m\x07&b"
    feed(
        JUnitReporter(str(path)),
        [
            started(evil),
            log(evil, "</failure><x/>", "\x00nul"),
            done(evil, StepStatus.FAILED),
            finished(RunStatus.FAILED, step(evil, StepStatus.FAILED)),
        ],
    )
    (suite,) = list(junitparser.JUnitXml.fromfile(str(path)))
    (case,) = list(suite)
    assert case.name == "a]]><x/>&b"
    assert case.result[0].text.splitlines() == ["</failure><x/>", "nul"]


def test_gitlab_dotenv_report_reads_back_as_written(tmp_path):
    dotenv = tmp_path / "dagu.env"
    outputs = {"URL": "https://x/?t=$CI_JOB_TOKEN", "NOTE": "two\nlines"}
    feed(
        GitLabReporter(Out(), PLAIN, env={"DAGU_DOTENV": str(dotenv)}),
        [accepted(), finished(RunStatus.SUCCEEDED, step("a"), outputs=outputs)],
    )
    read = gitlab_dotenv(dotenv.read_text(), {"CI_JOB_TOKEN": "secret"})
    assert json.loads(read["DAGU_OUTPUTS"]) == outputs
    assert read["DAGU_RUN_ID"] == "r-1" and read["DAGU_STATUS"] == "succeeded"
