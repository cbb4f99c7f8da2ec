"""A command's way to the server: the client its connection options describe, the command
run with it (closed after, "no such run" told as each command tells it), the run it names."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

from dagu_ci.commands.output import Output
from dagu_ci.errors import NoRun, UsageError
from dagu_ci.follow.events import Level, Notice
from dagu_ci.reporters import Reporter
from dagu_ci.reporters.plain import PlainReporter
from dagu_ci.server.api import DaguClient
from dagu_ci.server.client import Connection
from dagu_ci.server.models import RunSnapshot

RETRY_OPTION = "--retry-for"  # every command's but run/start's (--start-timeout)


def open_client(
    connection: Mapping[str, Any], retry_for: float, reporter: Reporter, retry_option: str = RETRY_OPTION
) -> DaguClient:
    """A client that tells `reporter` whenever the server is not answering, from the first request on."""
    conn = Connection(**connection)
    for flag, path in (
        ("--ca-cert", conn.ca_cert),
        ("--client-cert", conn.client_cert),
        ("--client-key", conn.client_key),
    ):
        if path and not os.path.isfile(path):
            raise UsageError(f"{flag} {path}: no such file")
    if conn.client_key and not conn.client_cert:
        raise UsageError("--client-key needs --client-cert")
    if bool(conn.username) != bool(conn.password):
        raise UsageError("--username and --password go together")
    if conn.insecure and conn.url.lower().startswith("https:"):  # plain http has no TLS to skip
        reporter.handle(Notice("TLS verification is off (--insecure)", Level.WARNING))

    def notify(text: str, warning: bool) -> None:
        reporter.handle(Notice(text, Level.WARNING if warning else Level.INFO))

    return DaguClient(conn, retry_for=retry_for, retry_option=retry_option, notify=notify)


@contextmanager
def connected(
    connection: Mapping[str, Any],
    retry_for: float,
    reporter: Reporter,
    retry_option: str = RETRY_OPTION,
    no_run_is_usage: bool = False,
) -> Iterator[DaguClient]:
    """An open client, closed after; only `status` exits 6 for "no run", the others 2."""
    client = open_client(connection, retry_for, reporter, retry_option)
    try:
        yield client
    except NoRun as exc:
        if no_run_is_usage:
            raise UsageError(exc.message) from None
        raise
    finally:
        client.close()


def with_client(
    connection: Mapping[str, Any],
    retry_for: float,
    as_json: bool,
    command: Callable[[DaguClient, Output], int],
    no_run_is_usage: bool = False,
) -> int:
    """Run a command that prints to stdout, its notices on stderr."""
    with connected(connection, retry_for, PlainReporter(sys.stderr), no_run_is_usage=no_run_is_usage) as client:
        return command(client, Output(as_json=as_json))


def find_run(client: DaguClient, dag_file: str, run_id: str) -> RunSnapshot:
    """The run (`latest`: the newest); NoRun when the DAG has no such run."""
    _, snapshot = client.run_of(dag_file, run_id)
    if snapshot is None:
        what = "never ran" if run_id == "latest" else f"has no run {run_id!r}"
        raise NoRun(f"{dag_file} {what} on {client.display_url}")
    return snapshot
