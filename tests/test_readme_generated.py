"""README.md's generated blocks (tools/readme.py) are what the click options say today."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dagu_ci.cli import cli
from tests.conftest import ROOT
from tools.readme import BEGIN, README, RUN_ROWS, Row, generate, options_table


def read_readme() -> str:
    with open(README, encoding="utf-8") as handle:
        return handle.read()


def test_readme_is_what_tools_readme_writes():
    assert read_readme() == generate(read_readme()), "README.md is not up to date: run `python tools/readme.py`"


def test_a_changed_option_shows_as_a_difference():
    """The comparison above can fail: a README that says something else is rewritten."""
    text = read_readme()
    stale = text.replace(
        "| `--enqueue` |  | Enqueue the run instead of starting it now. |", "| `--enqueue` |  | Enqueue the run. |"
    )
    assert stale != text
    assert generate(stale) == text


def test_every_run_option_has_exactly_one_row():
    names = [name for row in RUN_ROWS for name in row.names]
    assert len(names) == len(set(names))
    with pytest.raises(SystemExit, match="no README row for these options of `run`: --json"):
        options_table(cli.commands["run"], [row for row in RUN_ROWS if row.names != ["--json"]])
    with pytest.raises(SystemExit, match="options `run` does not have: --no-such"):
        options_table(cli.commands["run"], [*RUN_ROWS, Row(["--no-such"])])


def test_markers_are_required():
    with pytest.raises(SystemExit, match="one pair of markers for 'run options'"):
        generate(read_readme().replace(BEGIN.format(name="run options"), ""))


def test_the_script_checks_and_writes_nothing():
    before = read_readme()
    done = subprocess.run([sys.executable, "tools/readme.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert read_readme() == before
