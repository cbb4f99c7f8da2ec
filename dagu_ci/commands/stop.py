"""`stop`: end one run, or the runs this CI job's state files name (what a cancelled job
left behind). Only ever on the configured server, with the configured credentials: a state
file names the run, never where requests go."""

from __future__ import annotations

import sys
from typing import Any, Callable, Mapping, Optional

import click

from dagu_ci.commands.connect import connected
from dagu_ci.follow.events import Level, Notice
from dagu_ci.hosts.base import Host
from dagu_ci.remotetext import json_text
from dagu_ci.reporters.plain import PlainReporter
from dagu_ci.run import backstop
from dagu_ci.server.api import DaguClient


def stop(
    connection: Mapping[str, Any], retry_for: float, dag: str, run_id: str, wait_seconds: float, as_json: bool
) -> int:
    """Stop the run, waiting up to `wait_seconds` for it to show it ended."""
    return _stopping(
        connection,
        retry_for,
        as_json,
        lambda client, reporter: backstop.stop_run(client, dag, run_id, wait_seconds, reporter.say),
    )


def stop_from_state(
    connection: Mapping[str, Any], retry_for: float, host: Host, state_dir: Optional[str], as_json: bool
) -> int:
    """Stop the runs in the state files of `state_dir` (default: the host's) that this job wrote."""

    def stop_all(client: DaguClient, reporter: PlainReporter) -> Any:
        binding = backstop.Binding.current(host, client.base_url)
        return backstop.stop_from_state(
            state_dir or host.state_dir(),
            client,
            binding,
            reporter.say,
            lambda text: reporter.handle(Notice(text, Level.WARNING)),
        )

    return _stopping(connection, retry_for, as_json, stop_all)


def _stopping(
    connection: Mapping[str, Any],
    retry_for: float,
    as_json: bool,
    action: Callable[[DaguClient, PlainReporter], Any],
) -> int:
    """Run `action`; with --json its record goes to stdout, the rest to stderr."""
    reporter = PlainReporter(sys.stderr if as_json else None)
    with connected(connection, retry_for, reporter) as client:
        record = action(client, reporter)
        if as_json:
            click.echo(json_text(record))
        return 0
