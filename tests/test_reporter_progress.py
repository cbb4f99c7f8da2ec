"""Signs of life: a spinner line on a terminal, a heartbeat in CI logs; and host selection."""

from __future__ import annotations

import pytest

from dagu_ci.follow.events import Notice
from dagu_ci.hosts import detect, make_reporter
from dagu_ci.hosts.github import GitHub, GitHubReporter
from dagu_ci.hosts.gitlab import GitLab, GitLabReporter
from dagu_ci.hosts.jenkins import Jenkins
from dagu_ci.hosts.local import Local
from dagu_ci.reporters import Fanout
from dagu_ci.reporters.junit import JUnitReporter
from dagu_ci.reporters.plain import PlainReporter
from dagu_ci.reporters.progress import Progress, Screen
from dagu_ci.server.models import RunStatus, StepStatus
from tests.reporting import PLAIN, Out, accepted, finished, running, step, tick


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def setup(interactive):
    out, clock = Out(), Clock()
    screen = Screen(out, clock)
    console = PlainReporter(screen, PLAIN)
    return out, clock, Fanout(console, Progress(screen, console.say, interactive=interactive))


def test_heartbeat_once_a_minute_only_while_nothing_else_printed():
    out, clock, reporter = setup(interactive=False)
    reporter.handle(accepted())
    snap = (RunStatus.RUNNING, step("build"), running("test"), step("deploy", StepStatus.NOT_STARTED))
    for _ in range(12):  # two minutes of quiet 10 s polls
        clock.now += 10
        reporter.handle(tick(*snap))
    beats = [line for line in out.getvalue().splitlines() if "still" in line]
    assert beats == [
        "dagu-ci: still running: 1/3 steps done, 1m 00s elapsed (now: test)",
        "dagu-ci: still running: 1/3 steps done, 2m 00s elapsed (now: test)",
    ]
    clock.now += 50
    reporter.handle(Notice("something printed"))
    clock.now += 20
    reporter.handle(tick(*snap))  # 70 s since the last beat, but only 20 s of quiet
    assert sum("still" in line for line in out.getvalue().splitlines()) == 2
    assert "\r" not in out.getvalue()  # no terminal tricks in a log


def test_terminal_gets_a_spinner_line_wiped_before_other_output():
    out, clock, reporter = setup(interactive=True)
    reporter.handle(accepted())
    clock.now += 3
    reporter.handle(tick(RunStatus.RUNNING, step("build"), running("test")))
    assert out.getvalue().endswith("\r\x1b[2K⠙ running: 1/2 steps done, 3s elapsed (now: test)")
    reporter.handle(Notice("hello"))
    assert out.getvalue().endswith("(now: test)\r\x1b[2Kdagu-ci: hello\n")
    reporter.handle(tick(RunStatus.RUNNING, step("build"), running("test")))
    reporter.handle(finished(RunStatus.SUCCEEDED, step("build"), step("test")))
    tail = out.getvalue().split("dagu-ci: hello\n", 1)[1]
    assert tail.startswith("\r\x1b[2K⠹ running") and "\r\x1b[2Kdagu-ci: summary\n" in tail
    assert "still" not in out.getvalue()


@pytest.mark.parametrize(
    "env,host",
    [
        ({"GITHUB_ACTIONS": "true"}, GitHub),
        ({"GITLAB_CI": "true"}, GitLab),
        ({"JENKINS_URL": "http://j", "BUILD_TAG": "x"}, Jenkins),
        ({}, Local),
    ],
)
def test_host_detected_from_the_environment(env, host):
    assert type(detect(env)) is host


@pytest.mark.parametrize(
    "choice,env,console",
    [
        ("auto", {"GITHUB_ACTIONS": "true"}, GitHubReporter),
        ("auto", {"GITLAB_CI": "true"}, GitLabReporter),
        ("auto", {}, PlainReporter),
        ("plain", {"GITHUB_ACTIONS": "true"}, PlainReporter),
        ("gitlab", {}, GitLabReporter),
    ],
)
def test_reporter_choice(choice, env, console, tmp_path):
    reporter = make_reporter(detect(env), choice, junit=str(tmp_path / "j.xml"), out=Out())
    kinds = [type(r) for r in reporter.reporters]
    assert kinds == [console, Progress, JUnitReporter]
    assert [type(r) for r in make_reporter(detect(env), choice, out=Out()).reporters] == [console, Progress]


def test_cli_reporter_choices_match_the_hosts():
    from dagu_ci.cli import run
    from dagu_ci.hosts import REGISTRY

    (option,) = [param for param in run.params if param.name == "reporter_name"]
    assert list(option.type.choices) == ["auto", "plain", *(name for name in REGISTRY if name != "local")]
