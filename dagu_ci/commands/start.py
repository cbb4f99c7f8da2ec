"""`start`: start a run without following it; stdout carries only its id (or, with --json,
a document), everything else goes to stderr."""

from __future__ import annotations

import sys
from typing import Any, Mapping, Optional

import click

from dagu_ci.commands.connect import connected
from dagu_ci.hosts.base import Host
from dagu_ci.remotetext import inert, json_text
from dagu_ci.reporters.plain import PlainReporter
from dagu_ci.run.request import RunRequest
from dagu_ci.run.runner import Runner
from dagu_ci.server.params import Params


def start(
    connection: Mapping[str, Any],
    start_timeout: float,
    host: Host,
    dag: str,
    params: Params,
    run_id: Optional[str],
    enqueue: bool,
    singleton: bool,
    as_json: bool,
) -> int:
    reporter = PlainReporter(sys.stderr)
    request = RunRequest(dag=dag, params=params, run_id=run_id, enqueue=enqueue, singleton=singleton)
    with connected(connection, start_timeout, reporter, "--start-timeout") as client:
        name, new_id = Runner(client, reporter, request, host).start()
        url = client.ui_url(name, new_id)
    click.echo(json_text({"dag": dag, "name": name, "run_id": new_id, "url": url}) if as_json else inert(new_id))
    return 0
