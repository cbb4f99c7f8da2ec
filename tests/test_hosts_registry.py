"""One home per CI host: the registry's order and shape, and no CI variable read outside hosts/."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from dagu_ci import hosts
from dagu_ci.hosts.base import Host
from tests.hosttools import ROOT

# Variables a CI host sets (or a container step's inputs): these belong to dagu_ci/hosts/.
CI_VARIABLE = re.compile(
    r"^(CI|CI_|GITHUB_|GITLAB_|RUNNER_|INPUT_|PLUGIN_|STATE_|ACTIONS_|GITEA_|FORGEJO_|BUILDKITE|TF_BUILD|SYSTEM_|"
    r"BUILD_|AGENT_|DRONE|WOODPECKER|JENKINS_|WORKSPACE|GIT_|BRANCH_NAME)"
)


def _leading_text(node: ast.AST) -> str:
    """The constant text a key starts with: "X" or f"X{...}"."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return str(node.values[0].value)
    return ""


def ci_variable_reads(source: str) -> List[Tuple[int, str]]:
    """(line, name) of each CI variable looked up in a mapping: m.get(NAME), getenv(NAME),
    m[NAME], NAME in m, m.pop(NAME), setdefault(NAME)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        keys: List[ast.AST] = []
        if isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name)) and node.args:
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if name in ("get", "getenv", "pop", "setdefault"):
                keys.append(node.args[0])
        elif isinstance(node, ast.Subscript):
            keys.append(node.slice)
        elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
            keys.append(node.left)
        for key in keys:
            text = _leading_text(key)
            if CI_VARIABLE.match(text):
                found.append((node.lineno, text))
    return found


def product_sources_outside_hosts() -> Iterator[str]:
    yield os.path.join(ROOT, "entrypoint.py")
    for folder, _, names in os.walk(os.path.join(ROOT, "dagu_ci")):
        if os.path.relpath(folder, ROOT).split(os.sep)[:2] == ["dagu_ci", "hosts"]:
            continue
        yield from (os.path.join(folder, name) for name in sorted(names) if name.endswith(".py"))


def test_the_check_finds_each_way_of_reading_a_variable():
    source = """
import os
a = os.environ.get("GITHUB_ACTIONS")
b = env["CI_JOB_ID"]
c = os.getenv("BUILDKITE")
d = "TF_BUILD" in env
e = env.get(f"INPUT_{name.upper()}")
f = env.get("NO_COLOR"), env.get("DAGU_CI_REPORTER"), {"x": 1}["x"]
"""
    assert [name for _, name in ci_variable_reads(source)] == [
        "GITHUB_ACTIONS",
        "CI_JOB_ID",
        "BUILDKITE",
        "TF_BUILD",
        "INPUT_",
    ]
    with open(os.path.join(ROOT, "dagu_ci", "hosts", "github.py"), encoding="utf-8") as handle:
        assert "GITHUB_ACTIONS" in {name for _, name in ci_variable_reads(handle.read())}


def test_no_module_outside_hosts_reads_a_ci_variable():
    offenders = []
    for path in product_sources_outside_hosts():
        with open(path, encoding="utf-8") as handle:
            offenders += [
                f"{os.path.relpath(path, ROOT)}:{line}: {name}" for line, name in ci_variable_reads(handle.read())
            ]
    assert offenders == []


# -- the registry ------------------------------------------------------------------------------


def test_every_registered_host_is_a_module_with_its_host_class():
    for name in hosts.REGISTRY:
        cls = hosts.host_class(name)
        assert issubclass(cls, Host) and cls.name == name
    assert hosts.REGISTRY[-1] == "local" and hosts.host_class("local").runs_here({})


def test_every_host_module_is_registered():
    folder = os.path.join(ROOT, "dagu_ci", "hosts")
    # A host module names its class HOST; the others (base, provenance, runid) serve them all.
    modules = {
        name[:-3]
        for name in os.listdir(folder)
        if name.endswith(".py") and re.search(r"^HOST = ", Path(folder, name).read_text(), re.M)
    }
    assert modules == set(hosts.REGISTRY)


def test_the_host_is_detected_once_per_invocation(monkeypatch, tmp_path):
    """cli.Session detects on first use and keeps it; the entrypoint hands its own down."""
    from dagu_ci import cli

    calls = []
    real = cli.detect
    monkeypatch.setattr(cli, "detect", lambda env: calls.append(env) or real(env))
    session = cli.Session(env={"GITLAB_CI": "true", "CI_JOB_ID": "1"})
    assert session.host.name == "gitlab" and session.host is session.host
    assert len(calls) == 1
    given = hosts.detect({})
    assert cli.Session(given_host=given).host is given and len(calls) == 1


@pytest.mark.parametrize("choice", hosts.REPORTER_CHOICES[1:])
def test_a_reporter_choice_names_a_host(choice):
    assert hosts.named(choice, {}).name == ("local" if choice == "plain" else choice)
