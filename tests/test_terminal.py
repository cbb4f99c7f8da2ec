"""What a person sees on a terminal: dagu-ci on a real pty, replayed into a terminal
emulator model. The progress line must never wrap (a wrapped line leaves a stale row
at every redraw), and remote text must not drive the terminal."""

from __future__ import annotations

import json
import os
import re
from typing import Callable

import pytest

from dagu_ci.follow.events import StepFinished
from dagu_ci.follow.logtail import SIBLING_LAG, LogSchedule
from dagu_ci.hosts.github import GitHubReporter
from dagu_ci.reporters.plain import PlainReporter
from dagu_ci.server.models import RunStatus, StepSnapshot, StepStatus
from dagu_ci.term import Style, display_width, fit
from tests.conftest import ROOT, run_cli
from tests.fakedagu import Dag, Step, fail, hold, load_dags, out
from tests.ptyterm import SPINNER, run_in_pty, set_size
from tests.reporting import PLAIN, Out, done, feed, finished, log, started, step

FAST = ("--poll-interval", "0.1")
LONG_NAMES = [
    "compile-the-application-for-every-supported-target-platform",
    "run-the-complete-integration-test-suite-against-staging-db",
    "构建应用程序并上传到制品库然后通知所有相关的团队成员",  # wide characters: two columns each
]


def parallel_dag() -> Dag:
    """Steps that run until the test releases "go" (once it has seen what it needs drawn)."""
    steps = [Step(name, [out(f"{name} begins"), hold("go"), out(f"{name} ends")]) for name in LONG_NAMES]
    return Dag(file="wide", name="wide", steps=steps)


def release_after_redraws(server, count: int, since: Callable[[], int] = lambda: 0) -> Callable[[bytes, int], bool]:
    """An on_output hook: release the steps once the progress line was drawn `count` times
    with every step running (after each step's first line, and after the offset `since()`
    gives), so no machine is too slow to see it redrawn with the long names in it."""
    released = []

    def hook(output: bytes, _master: int) -> bool:
        starts = [output.find(f"{name} begins".encode()) for name in LONG_NAMES]
        if released or min(starts) < 0:
            return False
        if output[max(since(), *starts) :].count(b"steps done") >= count:
            server.release("go")
            released.append(True)
        return False

    return hook


def assert_no_stale_progress(screen):
    stale = [row for row in screen if SPINNER.match(row) or "steps done" in row or "elapsed" in row]
    assert stale == [], "\n".join(screen)


@pytest.mark.parametrize("columns", [40, 80, 200])
def test_progress_line_never_wraps_and_leaves_nothing_behind(fake_factory, columns):
    server = fake_factory(parallel_dag())
    run = run_in_pty(
        "run", "wide", "--url", server.url, *FAST, columns=columns, on_output=release_after_redraws(server, 3)
    )
    assert run.code == 0, run.text
    drawn = run.status_lines()
    assert len(drawn) >= 3, run.text  # the line was really drawn, several times
    assert max(display_width(line) for line in drawn) <= columns - 1, drawn
    assert any(line.endswith("…") for line in drawn), drawn  # the names made it too long: it was cut
    screen = run.screen()
    assert_no_stale_progress(screen)
    # Everything else is still there, whole: each step's lines and the end.
    joined = "".join(screen)  # rows joined: wrapped lines read whole again
    for name in LONG_NAMES:
        assert f"{name} begins" in joined and f"{name} ends" in joined
    assert any(row.startswith("dagu-ci: view: ") for row in screen[-3:]), screen  # the last line (it may wrap)


def test_a_resize_counts_from_the_next_redraw(fake_factory):
    server = fake_factory(parallel_dag())
    resized: list = []
    release = release_after_redraws(server, 4, since=lambda: resized[0])

    def shrink_once_drawn(output: bytes, master: int) -> bool:
        if not resized and b"steps done" in output:
            set_size(master, 40, 1000)
            resized.append(len(output))
            return True
        if resized:
            release(output, master)
        return False

    run = run_in_pty("run", "wide", "--url", server.url, *FAST, columns=200, on_output=shrink_once_drawn)
    assert run.code == 0, run.text
    (mark,) = run.marks
    before, after = run.status_lines()[:1], run.status_lines(mark)
    assert before and display_width(before[0]) > 40
    # The redraw that may have been under way at the resize is skipped: it read the old width.
    assert len(after) >= 3 and max(display_width(line) for line in after[1:]) <= 39, after


# -- remote text cannot drive the terminal --------------------------------------

HOSTILE_STEP = [
    out("before the trick"),
    out("\x1b[31mred, never reset"),
    out("\x1b[2J\x1b[Hthe screen was cleared"),
    out("\x1b[1A\x1b[2Kthe line above was erased"),
    out("real failure\rall good    "),
    out("\x1b]8;;https://evil.example\x07a link\x1b]8;;\x07 and a title\x1b]0;pwned\x07"),
    out("nul \x00 and bell \x07"),
    out("✔ deploy succeeded"),
]


def test_a_dags_escape_sequences_cannot_clear_move_or_leak(fake_factory):
    server = fake_factory(Dag(file="tricks", name="tricks", steps=[Step("tricky", HOSTILE_STEP)]))
    run = run_in_pty("run", "tricks", "--url", server.url, *FAST, columns=100, rows=200)
    assert run.code == 0, run.text
    screen = run.screen()
    assert_no_stale_progress(screen)
    assert screen[0].startswith("dagu-ci: Dagu ")  # nothing cleared the screen or moved the cursor
    log = [row[2:] for row in screen if row.startswith("│ ")]
    assert log == [
        "before the trick",
        "red, never reset",
        "the screen was cleared",
        "the line above was erased",
        "real failure",  # a lone CR starts a new line: nothing it would hide is hidden
        "all good",
        "a link and a title",
        "nul ^@ and bell ^G",
        "✔ deploy succeeded",
    ]
    # The DAG's own line ends in a reset: its red does not leak into dagu-ci's lines.
    emulator = run.emulator()
    summary = next(index for index, row in enumerate(screen) if row.startswith("dagu-ci: summary"))
    assert {char.fg for char in emulator.buffer[summary].values() if char.data.strip()} == {"default"}
    assert "\x1b]" not in run.text and "\x00" not in run.text and "\x07" not in run.text


def plain_output(*events, style=None):
    out = Out()
    feed(PlainReporter(out, style or Style(color=False, unicode=True)), list(events))
    return out.getvalue().split("\n")[:-1]  # not splitlines(): a stray CR must show up


@pytest.mark.parametrize(
    "line,shown",
    [
        ("\x1b[31mred\x1b[0m plain", "\x1b[31mred\x1b[0m plain\x1b[0m"),  # colours kept, reset at the end
        ("\x1b[8mhidden", "hidden"),  # conceal dropped
        ("\x1b[1;8;31mloud", "\x1b[1;31mloud\x1b[0m"),
        ("\x1b[38;5;8mgrey", "\x1b[38;5;8mgrey\x1b[0m"),  # colour 8 is a colour, not conceal
        ("\x1b[?25lcursor hidden", "cursor hidden"),
        ("\x9b2Jeight-bit CSI", "eight-bit CSI"),
        ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("unterminated \x1b]0;title", "unterminated "),
        ("\x1b7saved\x1b8 \x1bcreset", "saved reset"),
        ("tab\tstays, DEL\x7f and NEL\x85 do not", "tab\tstays, DEL^? and NEL\ufffd do not"),
        ("windows line\r", "windows line"),
    ],
)
def test_log_lines_are_neutralised(line, shown):
    lines = plain_output(started("s"), log("s", line))
    assert lines[-1] == "│ " + shown


def test_no_color_drops_a_dags_colours_too():
    no_color = Style(color=False, unicode=True, remote_color=False)
    assert plain_output(started("s"), log("s", "\x1b[31mred\x1b[0m"), style=no_color)[-1] == "│ red"


def test_log_lines_never_start_where_dagu_cis_own_lines_do():
    lines = plain_output(
        started("deploy"),
        log("deploy", "✔ deploy succeeded", "dagu-ci: all good"),
        started("evil\x1b[2J\nname"),
        log("evil\x1b[2J\nname", "x"),
        done("deploy"),
        finished(RunStatus.SUCCEEDED, step("deploy")),
    )
    assert lines[:7] == [
        "▶ deploy",
        "│ ✔ deploy succeeded",
        "│ dagu-ci: all good",
        "▶ evil^Jname",  # a remote name: no escapes, one line
        "│ [evil^Jname] x",
        "✔ deploy succeeded in 1s",
        "dagu-ci: summary",
    ]
    ascii_lines = plain_output(started("s"), log("s", "x"), style=Style(color=False, unicode=False))
    assert ascii_lines == [">> s", "| x"]


def test_stderr_lines_are_yellow_behind_a_dim_gutter():
    lines = plain_output(started("s"), log("s", "warn", stream="stderr"), style=Style(color=True, unicode=True))
    assert lines[-1] == "\x1b[2m│\x1b[0m \x1b[33mwarn\x1b[0m"


@pytest.mark.parametrize(
    "text,columns,cut",
    [
        ("abcdef", 6, "abcdef"),
        ("abcdef", 5, "abcd…"),
        ("构建应用", 8, "构建应用"),
        ("构建应用", 7, "构建应…"),
        ("构建应用", 6, "构建…"),  # a wide character never straddles the edge
        ("e\u0301tude", 5, "e\u0301tude"),  # a combining accent takes no column
        ("abc", 0, ""),
    ],
)
def test_fit_counts_display_columns(text, columns, cut):
    assert fit(text, columns) == cut
    assert display_width(fit(text, columns)) <= columns


@pytest.mark.parametrize(
    "seconds,shown",
    [
        (0, "<1s"),  # started and ended within one of Dagu's whole seconds
        (1, "1s"),
        (59, "59s"),
        (61, "1m 01s"),
        (3725, "1h 02m"),
    ],
)
def test_durations_claim_no_precision_the_timestamps_lack(seconds, shown):
    assert plain_output(StepFinished(step("s", seconds=seconds))) == [f"✔ s succeeded in {shown}"]


# -- a step that never started --------------------------------------------------


@pytest.mark.parametrize("reporter", ["plain", "github"])
def test_a_step_that_never_started_is_not_announced_as_started(fake_factory, reporter, tmp_path):
    steps = [Step("build", [out("compiling"), fail(3)]), Step("never", [out("unreachable")], depends=["build"])]
    server = fake_factory(Dag(file="deploy", name="deploy", steps=steps))
    result = run_cli(
        "run",
        "deploy",
        "--url",
        server.url,
        *FAST,
        "--reporter",
        reporter,
        env={"GITHUB_STEP_SUMMARY": str(tmp_path / "summary")},
    )
    assert result.code == 1, result.output
    lines = result.stdout.splitlines()
    assert not [line for line in lines if "never" in line and ("▶" in line or "::group::" in line)], result.stdout
    assert "■ never aborted" in lines  # its end is still told, once
    assert lines.count("■ never aborted") == 1


def test_a_never_started_step_ending_beside_an_open_group_is_told_after_it():
    out = Out()
    never = StepSnapshot("never", StepStatus.ABORTED)  # no start time, no log
    feed(
        GitHubReporter(out, PLAIN),
        [
            started("a"),
            log("a", "a1"),
            StepFinished(never),
            log("a", "a2"),
            done("a"),
        ],
    )
    lines = [
        line
        for line in out.getvalue().splitlines()
        if not re.fullmatch(r"::stop-commands::[0-9a-f]{32}|::[0-9a-f]{32}::", line)
    ]
    assert lines == ["::group::a", "│ a1", "│ a2", "::endgroup::", "✔ a succeeded in 1s", "■ never aborted"]


# -- stdout and stderr ------------------------------------------------------------


def test_a_quiet_stream_is_read_often_while_its_sibling_is_busy():
    """Dagu keeps stdout and stderr in two files with no common clock: a stderr line can only
    show in order with stdout's if stderr is read about as often while stdout is busy."""
    schedule = LogSchedule(0.5)
    out, err = ("build", "stdout"), ("build", "stderr")
    reads = []
    now = 0.0
    while now < 120:  # two minutes: stdout busy all along, stderr silent
        for key in (out, err):
            if schedule.due(key, now):
                schedule.record(key, now, active=key == out, release_at=None)
                if key == err:
                    reads.append(now)
        now += 0.25
    gaps = [later - earlier for earlier, later in zip(reads, reads[1:])]
    assert max(gaps) <= SIBLING_LAG + 0.5, gaps  # plus at most one base interval


def test_the_demo_shows_a_steps_lines_in_the_order_it_wrote_them(fake_factory):
    server = fake_factory(*load_dags(os.path.join(ROOT, "examples", "demo-dags.yaml")))
    result = run_cli("run", "deploy", "--url", server.url, *FAST, "--param", "VERSION=1.2.3")
    assert result.code == 0, result.output
    lint = [line for line in result.stdout.splitlines() if line.startswith("│ [lint] ")]
    assert lint == [
        "│ [lint] checking style",
        "│ [lint] warning: line too long in cli.py:88",
        "│ [lint] lint ok (1 warning)",
    ]


def test_dagu_ci_logs_neutralises_too_but_json_keeps_the_raw_text(fake_factory):
    steps = [Step("s\x1b]0;title\x07", [out("\x1b[2Jcleared \x00 nul"), out("a\rb")])]
    server = fake_factory(Dag(file="raw", name="raw", steps=steps))
    assert run_cli("run", "raw", "--url", server.url, *FAST, "--run-id", "r1").code == 0
    shown = run_cli("logs", "raw", "r1", "--url", server.url)
    assert shown.stdout.split("\n") == ["── s (succeeded) ──", "cleared ^@ nul", "a", "b", ""]  # no bare CR left
    document = json.loads(run_cli("logs", "raw", "r1", "--url", server.url, "--json").stdout)
    assert document["steps"][0]["lines"] == ["\x1b[2Jcleared \x00 nul", "a\rb"]
