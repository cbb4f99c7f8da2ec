"""A line shown before its end (a prompt, a quiet step's last line) is continued when its
end arrives, never shown twice or as a line of its own: its text appears exactly once."""

from __future__ import annotations

from tests.conftest import start_cli
from tests.fakedagu import Dag, Step, hold, out, raw
from tests.test_run_e2e import CONTINUED, FAST, GUTTERS, log_lines


def remote_rows(stdout: str):
    return [line for line in stdout.splitlines() if line.startswith(GUTTERS + CONTINUED)]


def test_a_line_shown_before_its_end_is_continued(fake_factory):
    steps = [Step("prompt", [raw("Password: "), hold("answer"), out("accepted"), out("next")])]
    server = fake_factory(Dag(file="deploy", steps=steps))
    proc = start_cli("run", "deploy", "--url", server.url, *FAST)
    proc.wait_for("Password: ")  # shown while the step waits, as a prompt should be
    server.release("answer")
    result = proc.finish()
    assert result.code == 0, result.output
    assert remote_rows(result.stdout) == ["│ Password: ", "┆ accepted", "│ next"]
    assert log_lines(result.stdout) == ["Password: accepted", "next"]  # whole lines, each once


def test_github_groups_and_failure_tails_continue_it_too(fake_factory, tmp_path):
    from tests.fakedagu import fail

    steps = [Step("prompt", [raw("Password: "), hold("answer"), out("refused"), fail(1)])]
    server = fake_factory(Dag(file="deploy", steps=steps))
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        "GITHUB_OUTPUT": str(tmp_path / "out"),
    }
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, env=env)
    proc.wait_for("Password: ")
    server.release("answer")
    result = proc.finish()
    assert result.code == 1, result.output
    assert log_lines(result.stdout) == ["Password: refused"]
    annotation = [line for line in result.stdout.splitlines() if line.startswith("::error title=Dagu step prompt")]
    assert annotation and annotation[0].endswith("::Password: refused"), result.stdout
