"""The README and `--help` tell a user the same things: each command's exit codes, the env
var of each option, and the Dagu version an option needs."""

from __future__ import annotations

import os
import re
from typing import Dict, List, Set

import click
import pytest
from click.testing import CliRunner

from dagu_ci.cli import cli
from tests.conftest import ROOT

with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as _handle:
    README = _handle.read()

AS_RUN = re.compile(r"as `?run`?")
CODE = re.compile(r"(?<![\w.-])(\d{1,3})(?![\w.])")


def help_text(command: str) -> str:
    result = CliRunner().invoke(cli, [command, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.output


def help_exit_codes(command: str) -> Set[int]:
    """The numbers in the help's "Exit codes" paragraph; "as `run`" brings run's in."""
    match = re.search(r"^ *Exit codes(.*?)(?:\n *\n|\Z)", help_text(command), re.M | re.S)
    assert match, f"`dagu-ci {command} --help` has no exit-code section"
    text = match.group(1)
    codes = {int(code) for code in CODE.findall(text)}
    return codes | (help_exit_codes("run") if command != "run" and AS_RUN.search(text) else set())


def readme_table(heading: str) -> List[List[str]]:
    """The rows (cells) of the first table under a README heading."""
    section = README.split(heading + "\n", 1)[1]
    rows = re.search(r"^\|.*?(?=\n[^|]|\Z)", section, re.M | re.S).group(0).splitlines()
    return [re.split(r"\s*(?<!\\)\|\s*", row.strip().strip("|").strip()) for row in rows[2:]]


def readme_run_exit_codes() -> Set[int]:
    return {int(row[0]) for row in readme_table("### Exit codes")}


def readme_exit_codes() -> Dict[str, Set[int]]:
    found = {"run": readme_run_exit_codes()}
    for row in readme_table("## More commands"):
        command = re.match(r"`dagu-ci (\w+)", row[0]).group(1)
        codes = {int(code) for code in CODE.findall(row[-1])}
        found[command] = codes | (readme_run_exit_codes() if AS_RUN.search(row[-1]) else set())
    return found


def test_every_command_has_exit_codes_in_its_help_and_in_the_readme():
    documented = readme_exit_codes()
    assert sorted(documented) == sorted(cli.commands)
    for command in cli.commands:
        assert help_exit_codes(command) == documented[command], command


def test_the_readme_exit_code_sections_are_found():
    """The parsing above reads what it should (else the comparison proves nothing)."""
    assert readme_run_exit_codes() == {0, 1, 2, 3, 4, 124, 130, 141, 143}
    assert help_exit_codes("status") >= {0, 1, 2, 3, 4, 5, 6}
    assert help_exit_codes("follow") >= {124, 130, 143}


def run_options() -> Dict[str, click.Option]:
    return {opt: param for param in cli.commands["run"].params if isinstance(param, click.Option) for opt in param.opts}


@pytest.mark.parametrize("row", readme_table("## `dagu-ci run DAG [KEY=VALUE…]`"), ids=lambda row: row[0])
def test_run_option_env_vars_and_versions_agree(row):
    options = run_options()
    names = re.findall(r"`(--[a-z-]+)", row[0])
    envs = re.findall(r"`([A-Z_]+)`", row[1])
    assert names and all(name in options for name in names), row[0]
    if envs:
        assert len(envs) == len(names), row
    for index, name in enumerate(names):
        option = options[name]
        if envs:
            assert option.envvar == envs[index] and option.show_envvar, (name, option.envvar)
        else:
            assert not option.envvar, name
        # Every Dagu version the help names, the README names too.
        help_versions = set(re.findall(r"\d+\.\d+(?:\.\d+)?", option.help or ""))
        assert help_versions <= set(re.findall(r"\d+\.\d+(?:\.\d+)?", row[2])), (name, option.help, row[2])
