"""Encodings: no text the server sends, and no stream the host gives us, makes dagu-ci fail.

Output that a stream cannot encode is written with backslash escapes; so is what the files
dagu-ci writes (JUnit, GitHub's files) cannot hold. Issue 10 item 8, issue 15 item 9.
"""

from __future__ import annotations

import json
import re

import junitparser

from dagu_ci.hosts.github import GitHubReporter
from dagu_ci.server.models import RunStatus
from tests.conftest import run_cli
from tests.fakedagu import Dag, Step, fail, out, output
from tests.reporting import PLAIN, Out, accepted, done, feed, finished, started, step
from tests.test_run_e2e import FAST, log_lines

# A JSON-escaped lone surrogate: valid JSON, decodes to a str no UTF-8 encoder accepts.
# Dagu's own encoder never writes one; a proxy or a broken server can.
SURROGATE_JSON = b"\\ud800"
MARK = "MARKSURROGATE"


def surrogate_server(fake_factory, steps):
    server = fake_factory(Dag(file="deploy", steps=steps))
    server.fault(r".*", status=200, count=None, rewrite=(MARK.encode(), SURROGATE_JSON))
    return server


def test_a_lone_surrogate_in_a_log_line_is_shown_escaped_and_the_run_ends(fake_factory, tmp_path):
    server = surrogate_server(
        fake_factory,
        [
            Step("build", [out(f"before {MARK} after"), output("NOTE", MARK), out("next line"), fail(3)]),
        ],
    )
    summary, outputs = tmp_path / "summary.md", tmp_path / "output"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs)}
    result = run_cli(
        "run",
        "deploy",
        "--url",
        server.url,
        *FAST,
        "--no-push",
        "--run-id",
        "u1",
        "--junit",
        str(tmp_path / "junit.xml"),
        "--result-file",
        str(tmp_path / "result.json"),
        env=env,
    )
    assert result.code == 1, result.output  # the step's failure, not an internal error (4)
    assert "internal error" not in result.output
    assert server.get_run("deploy", "u1").status == 2  # it ended on the server: not left running
    assert log_lines(result.stdout) == ["before \\ud800 after", "next line"], result.stdout

    junit = junitparser.JUnitXml.fromfile(str(tmp_path / "junit.xml"))
    (case,) = [case for suite in junit for case in suite]
    assert "before \\ud800 after" in case.result[0].text
    assert json.loads((tmp_path / "result.json").read_text())["exit_code"] == 1
    assert "deploy" in summary.read_text()
    written = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert json.loads(written["outputs"]) == {"note": "\ud800"}  # Dagu camel-cases output keys


def test_logs_command_prints_a_lone_surrogate_escaped(fake_factory):
    server = surrogate_server(fake_factory, [Step("build", [out(f"a {MARK} b")])])
    assert run_cli("start", "deploy", "--url", server.url, "--run-id", "u2").code == 0
    server.wait_for_status("deploy", "u2", {4})
    result = run_cli("logs", "deploy", "u2", "--url", server.url, "--step", "build")
    assert result.code == 0, result.output
    assert result.stdout == "a \\ud800 b\n"


def test_an_ascii_only_stream_gets_escapes_not_an_error(fake_factory, tmp_path):
    server = fake_factory(Dag(file="deploy", steps=[Step("build", [out("héllo ✓ wörld")])]))
    result = run_cli("run", "deploy", "--url", server.url, *FAST, env={"PYTHONIOENCODING": "ascii"})
    assert result.code == 0, result.output
    assert "internal error" not in result.output
    assert "h\\xe9llo \\u2713 w\\xf6rld" in log_lines(result.stdout)
    assert re.search(r"^dagu-ci: .*succeeded", result.stdout, re.M)


def test_an_ascii_only_stream_with_a_unicode_file_name(tmp_path):
    dag = tmp_path / "déploy.yaml"
    dag.write_text("name: x\nsteps: []\n", encoding="utf-8")
    result = run_cli("validate", "--local", str(dag), env={"PYTHONIOENCODING": "ascii"})
    assert result.code == 1, result.output  # invalid (no steps), and said so
    assert "internal error" not in result.output
    assert "d\\xe9ploy.yaml" in result.output and "no steps" in result.output


def test_github_files_take_a_lone_surrogate_in_step_names_and_params(tmp_path):
    """The job summary holds step names and params as they came: it is written, escaped."""
    reporter = GitHubReporter(
        Out(), PLAIN, output_path=str(tmp_path / "output"), summary_path=str(tmp_path / "summary")
    )
    name = "build\ud800"
    feed(
        reporter,
        [accepted(params='{"V":"\ud800"}'), started(name), done(name), finished(RunStatus.SUCCEEDED, step(name))],
    )
    summary = (tmp_path / "summary").read_text(encoding="utf-8")
    assert "build\\ud800" in summary and '{"V":"\\ud800"}' in summary
