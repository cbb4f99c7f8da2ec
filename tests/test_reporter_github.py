"""The GitHub Actions reporter, fed synthetic events: groups, annotations, outputs, summary, and
that no remote text can run a workflow command."""

from __future__ import annotations

import pytest

from dagu_ci.hosts.github import GitHubReporter
from dagu_ci.run.result import Ending
from dagu_ci.server.models import RunStatus, StepStatus
from tests.reporting import (
    PLAIN,
    Out,
    Runner,
    accepted,
    done,
    feed,
    finished,
    log,
    started,
    step,
)

HOSTILE = [
    "::set-output name=status::succeeded",
    "::add-mask::hunter2",
    "::stop-commands::pwned",
    "::pwned::",
    "::error file=x,line=1::fake failure",
    "   ::warning::indented",
    "::save-state name=a::b",
    "##[set-output name=x;]legacy",
    "prefix ##[add-mask]legacy-anywhere",
    "carriage\r::set-env name=X::1",
    "::group::fake group",
    "::endgroup::",
]


def github(tmp_path, **kwargs):
    out = Out()
    files = {"output_path": str(tmp_path / "output"), "summary_path": str(tmp_path / "summary")}
    return out, GitHubReporter(out, PLAIN, **files, **kwargs)


def test_parallel_steps_get_whole_groups_in_order_of_start(tmp_path):
    out, reporter = github(tmp_path)
    feed(
        reporter,
        [
            accepted(),
            started("a"),
            started("b"),
            log("a", "a1"),
            log("b", "b1"),
            log("a", "a2"),
            done("b"),
            log("a", "a3"),
            done("a"),
            finished(RunStatus.SUCCEEDED, step("a"), step("b")),
        ],
    )
    shown = Runner.read(out.getvalue())
    assert [c.name for c in shown.commands if c.name in ("group", "endgroup")] == ["group", "endgroup"] * 2
    text = [line for line in shown.visible if line and not line.startswith("dagu-ci:") and not line.startswith("  ")]
    # a streams live; b, which finished while a's group was open, follows as one whole group.
    assert text == ["│ a1", "│ a2", "│ a3", "✔ a succeeded in 1s", "│ b1", "✔ b succeeded in 1s"]
    lines = out.getvalue().splitlines()
    assert lines.index("::group::b") > lines.index("✔ a succeeded in 1s")


def test_a_held_step_goes_live_when_the_open_group_closes(tmp_path):
    out, reporter = github(tmp_path)
    feed(
        reporter,
        [
            started("a"),
            started("b"),
            log("b", "b1"),
            log("a", "a1"),
            done("a"),
            log("b", "b2"),
            done("b"),
            finished(RunStatus.SUCCEEDED, step("a"), step("b")),
        ],
    )
    body = [
        line
        for line in out.getvalue().splitlines()
        if line.startswith(("::group::", "::endgroup::")) or not line.startswith(("::", "dagu-ci:", "  "))
    ]
    assert body[:4] == ["::group::a", "│ a1", "::endgroup::", "✔ a succeeded in 1s"]
    assert body[4:8] == ["::group::b", "│ b1", "│ b2", "::endgroup::"]


def test_hostile_log_lines_and_names_run_no_workflow_command(tmp_path):
    out, reporter = github(tmp_path, secrets_to_mask=["tok-123"])
    evil = "evil\n::add-mask::x"
    feed(
        reporter,
        [
            accepted(),
            started(evil),
            log(evil, *HOSTILE),
            log(evil, *HOSTILE, stream="stderr"),
            done(evil, StepStatus.FAILED),
            finished(RunStatus.FAILED, step(evil, StepStatus.FAILED)),
        ],
    )
    shown = Runner.read(out.getvalue())
    assert {c.name for c in shown.commands} <= {"add-mask", "group", "endgroup", "stop-commands", "error"}
    assert [c.data for c in shown.named("add-mask")] == ["tok-123"]
    assert [c.data for c in shown.named("group")] == ["evil^J::add-mask::x"]  # one title, not a second command
    errors = shown.named("error")
    assert len(errors) == 1 and errors[0].data.splitlines()[-1] == "::endgroup::"
    for line in HOSTILE:
        for part in line.split("\r"):
            assert shown.visible.count("│ " + part) == 2, part  # shown verbatim, both streams


def test_masks_secrets_before_anything_else(tmp_path):
    out, reporter = github(tmp_path, secrets_to_mask=["tok-123", None, "pa%ss\nword"])
    feed(reporter, [accepted()])
    lines = out.getvalue().splitlines()
    assert sorted(lines[:4]) == sorted(
        ["::add-mask::tok-123", "::add-mask::pa%25ss%0Aword", "::add-mask::pa%25ss", "::add-mask::word"]
    )


def test_outputs_written_when_accepted_then_completed_at_the_end(tmp_path):
    _, reporter = github(tmp_path)
    reporter.handle(accepted())
    assert (tmp_path / "output").read_text() == "run-id=r-1\nurl=http://dagu.test/dag-runs/deploy/r-1\n"
    feed(reporter, [finished(RunStatus.SUCCEEDED, step("build"), outputs={"VERSION": "1.2.3", "N": 2})])
    assert (tmp_path / "output").read_text() == (
        "run-id=r-1\nurl=http://dagu.test/dag-runs/deploy/r-1\n"
        "status=succeeded\nexit-code=0\n"
        'outputs={"N": 2, "VERSION": "1.2.3"}\nduration=3.500\n'
    )


def test_job_summary_has_steps_table_link_and_params(tmp_path):
    _, reporter = github(tmp_path)
    feed(
        reporter,
        [
            accepted(),
            finished(
                RunStatus.PARTIALLY_SUCCEEDED,
                step("build", seconds=61),
                step("lint|x", StepStatus.FAILED),
                step("deploy", StepStatus.SKIPPED, seconds=None),
                step("notify", handler=True),
            ),
        ],
    )
    assert (tmp_path / "summary").read_text() == (
        "### ⚠️ Dagu run of `deploy` partially succeeded\n"
        "\n"
        "| Step | Status | Duration |\n"
        "| --- | --- | --- |\n"
        "| build | ✅ succeeded | 1m 01s |\n"
        "| lint\\|x | ❌ failed | 1s |\n"
        "| deploy | ⏭️ skipped | - |\n"
        "| notify *(handler)* | ✅ succeeded | 1s |\n"
        "\n"
        "Run [r-1](http://dagu.test/dag-runs/deploy/r-1) in the Dagu UI · exit code 0 · 3s\n"
        "\n"
        "**Params**\n"
        "\n"
        "```\n"
        '{"VERSION":"1.2.3"}\n'
        "```\n"
        "\n"
    )


def test_failed_step_gets_an_error_with_its_last_lines(tmp_path):
    out, reporter = github(tmp_path)
    lines = [f"line {n}" for n in range(50)]
    feed(
        reporter,
        [
            started("build"),
            log("build", *lines),
            done("build", StepStatus.FAILED),
            finished(RunStatus.FAILED, step("build", StepStatus.FAILED)),
        ],
    )
    (error,) = Runner.read(out.getvalue()).named("error")
    assert error.properties["title"] == "Dagu step build failed (deploy)"
    assert error.data.splitlines() == lines[-30:]


def test_partial_success_is_a_warning(tmp_path):
    out, reporter = github(tmp_path)
    feed(reporter, [finished(RunStatus.PARTIALLY_SUCCEEDED, step("a"), step("b", StepStatus.FAILED))])
    (warning,) = Runner.read(out.getvalue()).named("warning")
    assert warning.data == "deploy run r-1 partially succeeded: b failed; exit code 0"


@pytest.mark.parametrize(
    "status,ending,title",
    [
        (RunStatus.ABORTED, Ending.TIMEOUT, "Dagu run aborted"),
        (RunStatus.REJECTED, Ending.FINISHED, "Dagu run rejected"),
    ],
)
def test_a_run_that_ends_badly_without_a_failed_step_is_an_error(tmp_path, status, ending, title):
    out, reporter = github(tmp_path)
    feed(reporter, [finished(status, step("a", StepStatus.ABORTED), ending=ending)])
    (error,) = Runner.read(out.getvalue()).named("error")
    assert error.properties["title"] == title
    assert error.data.startswith(f"deploy run r-1 {status.label}")


def test_without_github_files_nothing_is_written(tmp_path):
    out = Out()
    reporter = GitHubReporter(out, PLAIN)
    feed(reporter, [accepted(), finished(RunStatus.SUCCEEDED, step("a"))])
    assert list(tmp_path.iterdir()) == []
    assert "deploy run r-1 succeeded" in out.getvalue()


def test_waiting_run_gets_a_notice_with_the_approval_link():
    import io

    from dagu_ci.follow.events import RunAccepted, RunStatusChanged
    from dagu_ci.hosts.github import GitHubReporter
    from dagu_ci.server.models import RunSnapshot, RunStatus, StepSnapshot, StepStatus

    out = io.StringIO()
    reporter = GitHubReporter(out)
    reporter.handle(RunAccepted("deploy", "deploy", "r1", "http://dagu/dag-runs/deploy/r1", False, False, ""))
    waiting = RunSnapshot("deploy", "r1", RunStatus.WAITING, (StepSnapshot("gate", StepStatus.WAITING),))
    reporter.handle(RunStatusChanged(waiting, RunStatus.RUNNING))
    assert (
        "::notice title=Dagu run waits for approval::gate waits for approval: http://dagu/dag-runs/deploy/r1"
        in out.getvalue()
    )
