"""The GitLab CI reporter, fed synthetic events: sections per step and the dotenv report."""

from __future__ import annotations

import re

from dagu_ci.hosts.gitlab import DOTENV_LIMIT, GitLabReporter
from dagu_ci.server.models import RunStatus, StepStatus
from tests.reporting import PLAIN, T0, Out, accepted, done, feed, finished, log, started, step

SECTION = re.compile(r"\x1b\[0Ksection_(start|end):(\d+):([a-zA-Z0-9_.-]+)(\[collapsed=true\])?\r\x1b\[0K(.*)")
NOW = 1_800_000_000


def gitlab(tmp_path):
    out = Out()
    return out, GitLabReporter(out, PLAIN, env={"DAGU_DOTENV": str(tmp_path / "dagu.env")}, clock=lambda: NOW)


def sections(text):
    """(kind, time, name, collapsed, header) per GitLab section marker, plus the other lines.
    Each section must end where it began, no earlier than it began."""
    markers, other = [], []
    for line in text.split("\n"):
        match = SECTION.fullmatch(line)
        if match:
            markers.append((match.group(1), int(match.group(2)), match.group(3), bool(match.group(4)), match.group(5)))
        else:
            other.append(line)
    for start, end in zip(markers[::2], markers[1::2]):
        assert (start[0], end[0], start[2]) == ("start", "end", end[2]) and end[1] >= start[1], (start, end)
    return markers, other


def test_one_section_per_step_never_interleaved(tmp_path):
    out, reporter = gitlab(tmp_path)
    feed(
        reporter,
        [
            accepted(),
            started("build"),
            started("lint"),
            log("build", "b1"),
            log("lint", "l1"),
            done("lint", start=1),
            log("build", "b2"),
            done("build"),
            finished(RunStatus.SUCCEEDED, step("build"), step("lint", start=1)),
        ],
    )
    markers, _ = sections(out.getvalue())
    kinds = [(kind, name) for kind, _, name, _, _ in markers]
    assert kinds == [
        ("start", "dagu_step_1_build"),
        ("end", "dagu_step_1_build"),
        ("start", "dagu_step_2_lint"),
        ("end", "dagu_step_2_lint"),
    ]
    # build streamed live (expanded, now); lint was held and shown whole: collapsed, with its own times.
    assert markers[0][1] == NOW and markers[0][3] is False and markers[0][4] == "▶ build"
    assert markers[2][1] == int(T0.timestamp()) + 1 and markers[2][3] is True
    assert markers[3][1] == int(T0.timestamp()) + 2  # lint finished 1.25 s after it started at +1
    body = out.getvalue()
    assert body.index("b1") < body.index("b2") < body.index("section_end") < body.index("l1")


def test_remote_lines_cannot_close_or_open_sections(tmp_path):
    out, reporter = gitlab(tmp_path)
    fake = "\x1b[0Ksection_end:1:dagu_step_1_build\r\x1b[0K"
    feed(
        reporter,
        [
            started("build"),
            log("build", fake, "section_start:1:x\r\x1b[0Kheader"),
            done("build"),
            finished(RunStatus.SUCCEEDED, step("build")),
        ],
    )
    markers, _ = sections(out.getvalue())
    assert [(kind, name) for kind, _, name, _, _ in markers] == [
        ("start", "dagu_step_1_build"),
        ("end", "dagu_step_1_build"),
    ]


def test_dotenv_report_written_when_accepted_and_completed_at_the_end(tmp_path):
    _, reporter = gitlab(tmp_path)
    reporter.handle(accepted())
    dotenv = tmp_path / "dagu.env"
    assert dotenv.read_text() == (
        "DAGU_RUN_ID=r-1\nDAGU_RUN_URL=http://dagu.test/dag-runs/deploy/r-1\nDAGU_RUN_DAG=deploy\n"
    )
    feed(reporter, [finished(RunStatus.FAILED, step("a", StepStatus.FAILED), outputs={"OUT": "x\ny"})])
    assert dotenv.read_text() == (
        "DAGU_RUN_ID=r-1\nDAGU_RUN_URL=http://dagu.test/dag-runs/deploy/r-1\nDAGU_RUN_DAG=deploy\n"
        "DAGU_STATUS=failed\nDAGU_EXIT_CODE=1\nDAGU_DURATION=3.500\n"
        'DAGU_OUTPUTS={"OUT":"x\\ny"}\n'
    )


def test_outputs_too_big_for_dotenv_are_dropped_with_a_warning(tmp_path):
    out, reporter = gitlab(tmp_path)
    feed(reporter, [accepted(), finished(RunStatus.SUCCEEDED, step("a"), outputs={"BIG": "x" * DOTENV_LIMIT})])
    text = (tmp_path / "dagu.env").read_text()
    assert "DAGU_OUTPUTS=\n" in text and len(text) < DOTENV_LIMIT
    assert "warning: the run's outputs are too big for GitLab's dotenv report" in out.getvalue()


def test_no_dotenv_without_the_variable(tmp_path):
    out = Out()
    feed(GitLabReporter(out, PLAIN, env={}), [accepted(), finished(RunStatus.SUCCEEDED, step("a"))])
    assert list(tmp_path.iterdir()) == []
