"""dagu-ci in this process, through click's CliRunner: the same `main()` a process runs (one-line
errors, exit codes), without a Python start per call. For what needs no process of its own: usage
errors, --help, option checks, and commands that only read the server (dags, status, history).
Signals, hosts and the container's entrypoint keep their subprocess tests (tests/conftest.py run_cli)."""

from __future__ import annotations

import inspect
import os
import sys
from typing import Dict, Optional

from click.testing import CliRunner

from dagu_ci import cli, redaction
from tests.conftest import CliResult
from tests.hostenv import host_free_env


def _runner() -> CliRunner:
    # stderr apart from stdout: an option before click 8.2, always since.
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)
    return CliRunner()


def invoke(*args: str, env: Optional[Dict[str, str]] = None) -> CliResult:
    """`dagu-ci ARGS` as run_cli runs it (no CI host variables, plus `env`), in this process."""
    wanted = host_free_env(env)
    changes: Dict[str, Optional[str]] = {key: None for key in os.environ if key not in wanted}  # None unsets
    changes.update(wanted)
    secrets, redaction.SECRETS = redaction.SECRETS, redaction.Secrets()  # each invocation learns its own
    try:
        with _runner().isolation(env=changes) as streams:
            stdout, stderr = streams[0], streams[1]
            try:
                cli.main(list(args))
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            _flush()
            return CliResult(
                code, stdout.getvalue().decode("utf-8", "replace"), stderr.getvalue().decode("utf-8", "replace")
            )
    finally:
        redaction.SECRETS = secrets


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
