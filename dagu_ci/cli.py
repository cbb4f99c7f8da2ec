"""The command line. Thin: parse options, build the core objects, map errors to exit codes."""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any, Callable, List, Optional, Sequence

import click

from dagu_ci import __version__
from dagu_ci.errors import Cancelled, DaguCIError, ExitCode, UsageError

# The same as dagu_ci.reporters.hosts.REPORTER_CHOICES (a test checks), spelled out here
# because importing the reporters would slow down `--version` and `--help`.
REPORTER_CHOICES = ["auto", "plain", "github", "gitlab"]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """URL, auth and TLS options shared by every command that talks to a server."""
    options = [
        click.option("--url", envvar="DAGU_URL", default="http://localhost:8080", show_default=True, show_envvar=True,
                     help="Dagu server base URL, including any base path."),
        click.option("--api-path", envvar="DAGU_API_PATH", show_envvar=True, metavar="PATH",
                     help="API path under the URL (e.g. /api/v1); skips auto-detection."),
        click.option("--token", envvar="DAGU_API_TOKEN", show_envvar=True, metavar="TOKEN",
                     help="Bearer token: an API key (dagu_...) or a token."),
        click.option("--username", envvar="DAGU_USERNAME", show_envvar=True, help="Basic auth user."),
        click.option("--password", envvar="DAGU_PASSWORD", show_envvar=True, help="Basic auth password."),
        click.option("--ca-cert", envvar="DAGU_CA_CERT", show_envvar=True, metavar="PATH",
                     help="CA bundle to verify the server's TLS certificate."),
        click.option("--client-cert", envvar="DAGU_CLIENT_CERT", show_envvar=True, metavar="PATH",
                     help="Client certificate for mutual TLS (PEM; may include the key)."),
        click.option("--client-key", envvar="DAGU_CLIENT_KEY", show_envvar=True, metavar="PATH",
                     help="Private key for --client-cert, if not in the same file."),
        click.option("--insecure", is_flag=True, envvar="DAGU_INSECURE", help="Skip TLS verification (prints a warning)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="dagu-ci", message="%(prog)s %(version)s")
def cli() -> None:
    """Run Dagu DAGs from CI as if they were the pipeline's own steps."""


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--json: a document for scripts instead of text for people (every command)."""
    return click.option("--json", "as_json", is_flag=True, help="Print a JSON document for scripts.")(command)


def retry_for_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--retry-for: every command but run/start (whose --start-timeout says the same)."""
    return click.option("--retry-for", type=click.FloatRange(min=0), default=30, show_default=True, metavar="SECONDS",
                        help="How long to retry an unreachable or failing server before giving up (exit 4).")(command)


# DAG files from the repository (`validate`, `push`).
dag_files_argument = click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="FILE...")


def follow_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """How `run`, `follow` and `retry --follow` watch a run and end: one set, one behaviour."""
    options = [
        click.option("--timeout", type=click.FloatRange(min=0), default=0, show_default=True, metavar="SECONDS",
                     help="Stop the run and exit 124 after this long; 0 means no limit."),
        click.option("--poll-interval", type=click.FloatRange(min=0.05), default=0.5, show_default=True, metavar="SECONDS",
                     help="Base poll interval; backs off while nothing changes."),
        click.option("--no-push", is_flag=True, help="Poll only; do not use the server's events stream (Dagu >= 2.3)."),
        click.option("--no-logs", is_flag=True, help="Show step statuses only, not their logs."),
        click.option("--no-stop-on-cancel", is_flag=True, help="Leave the run going when the CI job is cancelled, or dagu-ci fails with an error."),
        click.option("--fail-on-partial", is_flag=True, help="Exit 1 when the run only partially succeeds."),
        click.option("--on-waiting", type=click.Choice(["wait", "fail"]), default="wait", show_default=True,
                     help="When the run waits for human approval: keep waiting (within --timeout), or exit 3 and leave it waiting."),
        click.option("--queue-timeout", type=click.FloatRange(min=0), default=0, show_default=True, metavar="SECONDS",
                     help="Dequeue the run and exit 124 if it has not left the queue after this long; 0 means no limit."),
        click.option("--no-wait-auto-retry", is_flag=True,
                     help="Exit on the first failure even when Dagu (>= 2.3) will retry the run by itself."),
        click.option("--download-artifacts", type=click.Path(file_okay=False), metavar="DIR",
                     help="After the run, download its artifacts here (Dagu >= 2.5); nothing lands outside DIR."),
        click.option("--state-dir", envvar="DAGU_CI_STATE_DIR", show_envvar=True, metavar="DIR",
                     help="Where the run's state file goes (default: .dagu-ci/ in the CI workspace)."),
        click.option("--result-file", type=click.Path(dir_okay=False, writable=True), metavar="PATH",
                     help="Write a JSON result (run id, status, exit code, url, steps) here."),
        click.option("--junit", type=click.Path(dir_okay=False, writable=True), metavar="PATH",
                     help="Write a JUnit XML report here: one testcase per DAG step."),
        click.option("--reporter", "reporter_name", type=click.Choice(REPORTER_CHOICES), default="auto", show_default=True,
                     envvar="DAGU_CI_REPORTER", show_envvar=True,
                     help="Output format; auto picks github or gitlab inside those CI hosts, else plain."),
        click.option("--json", "as_json", is_flag=True, help="At the end, print the result document (as --result-file writes it)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


CONNECTION_KEYS = ("url", "api_path", "token", "username", "password", "ca_cert", "client_cert", "client_key", "insecure")


def _split(options: dict) -> "tuple[dict, dict]":
    """(connection options, the rest)."""
    connection = {key: options.pop(key) for key in CONNECTION_KEYS}
    return connection, options


def _runner(dag: str, connection: dict, follow: dict, retry_for: float, retry_option: str, **fields: Any) -> Any:
    """A Runner with the shared follow options applied; `fields` are the command's own."""
    from dagu_ci.reporters.hosts import make_reporter
    from dagu_ci.runner import Runner, RunRequest

    reporter = make_reporter(follow.pop("reporter_name"), follow.pop("junit"), secrets=(connection["token"], connection["password"]))
    client = _client(connection, retry_for, reporter, retry_option)
    request = RunRequest(
        dag=dag,
        timeout=follow["timeout"],
        poll_interval=follow["poll_interval"],
        push=not follow["no_push"],
        logs=not follow["no_logs"],
        stop_on_cancel=not follow["no_stop_on_cancel"],
        fail_on_partial=follow["fail_on_partial"],
        result_file=follow["result_file"],
        on_waiting=follow["on_waiting"],
        queue_timeout=follow["queue_timeout"],
        wait_auto_retry=not follow["no_wait_auto_retry"],
        state_dir=follow["state_dir"],
        download_artifacts=follow["download_artifacts"],
        print_json=follow["as_json"],
        **fields,
    )
    return Runner(client, reporter, request)


def _closing(runner: Any, action: Callable[[], int]) -> int:
    try:
        return action()
    finally:
        runner.reporter.close()
        runner.client.close()


@cli.command(context_settings=CONTEXT)
@click.argument("dag", required=False)
@connection_options
@click.option("--spec", type=click.Path(dir_okay=False), metavar="PATH",
              help="Run this DAG file from the repository without installing it (Dagu >= 2.0).")
@click.option("--param", "param_items", multiple=True, metavar="KEY=VALUE", help="A DAG param; repeatable.")
@click.option("--params", "params_text", metavar="TEXT", help='Params as a JSON object, a YAML mapping, or K=V K2="v 2".')
@click.option("--run-id", metavar="ID", help="Run id (1-64 of [-a-zA-Z0-9_]). Default: derived from the CI job, so a retried job attaches instead of starting twice.")
@click.option("--enqueue", is_flag=True, help="Enqueue the run instead of starting it now.")
@click.option("--singleton", is_flag=True, help="Refuse to start while another run of the DAG is active.")
@click.option("--start-timeout", type=click.FloatRange(min=0), default=60, show_default=True, metavar="SECONDS",
              help="How long to retry an unreachable server before the run has started (exit 4).")
@click.option("--cancel-superseded", metavar="KEY",
              help="Stop this DAG's active runs started with the same KEY (e.g. the branch) before starting.")
@click.option("--dry-run", is_flag=True, help="Check server, auth, DAG and params; print what would start; start nothing.")
@follow_options
def run(dag: Optional[str], spec: Optional[str], param_items: Sequence[str], params_text: Optional[str], run_id: Optional[str],
        enqueue: bool, singleton: bool, start_timeout: float, cancel_superseded: Optional[str], dry_run: bool, **options: Any) -> int:
    """Start DAG (its file name as Dagu lists it), stream its logs, and exit with its status.

    \b
    Examples:
      dagu-ci run deploy --url https://dagu.example.com --param VERSION=1.2.3
      dagu-ci run --spec dags/deploy.yaml      # the DAG as changed in this pull request

    \b
    Exit codes: 0 succeeded (or partial), 1 failed, 2 usage/input error,
    3 aborted or rejected, 4 server unreachable or API error,
    124 --timeout, 130 SIGINT, 143 SIGTERM.
    """
    from dagu_ci.params import merge_params

    if not dag and not spec:
        raise UsageError("run needs a DAG (its file name on the server), or --spec PATH")
    if spec and not dag:
        from dagu_ci.dagyaml import load_dag_file

        dag = str(load_dag_file(spec)[1].get("name") or os.path.splitext(os.path.basename(spec))[0])
    params = merge_params(params_text, param_items)
    connection, follow = _split(options)
    runner = _runner(dag, connection, follow, start_timeout, "--start-timeout", params=params, run_id=run_id, enqueue=enqueue,
                     singleton=singleton, cancel_superseded=cancel_superseded, dry_run=dry_run, spec=spec)
    return _closing(runner, runner.run)


@cli.command(context_settings=CONTEXT)
@click.argument("dag")
@click.argument("param_items", nargs=-1, metavar="[KEY=VALUE]...")
@connection_options
@click.option("--params", "params_text", metavar="TEXT", help='Params as a JSON object, a YAML mapping, or K=V K2="v 2".')
@click.option("--run-id", metavar="ID", help="Run id (1-64 of [-a-zA-Z0-9_]). Default: derived from the CI job.")
@click.option("--enqueue", is_flag=True, help="Enqueue the run instead of starting it now.")
@click.option("--singleton", is_flag=True, help="Refuse to start while another run of the DAG is active (exit 4).")
@click.option("--start-timeout", type=click.FloatRange(min=0), default=60, show_default=True, metavar="SECONDS",
              help="How long to retry an unreachable server (exit 4).")
@json_option
def start(dag: str, param_items: Sequence[str], params_text: Optional[str], run_id: Optional[str], enqueue: bool,
          singleton: bool, start_timeout: float, as_json: bool, **connection: Any) -> int:
    """Start DAG without waiting; print the run id (details go to stderr).

    \b
    Examples:
      RUN_ID=$(dagu-ci start deploy VERSION=1.2.3)
      dagu-ci follow deploy "$RUN_ID"     # later, maybe in another job

    \b
    Exit codes: 0 started, 2 usage/input error, 4 server error or --singleton conflict.
    """
    from dagu_ci.params import merge_params
    from dagu_ci.reporters.plain import PlainReporter
    from dagu_ci.runner import Runner, RunRequest

    reporter = PlainReporter(sys.stderr)  # stdout carries only the run id
    client = _client(connection, start_timeout, reporter, "--start-timeout")
    request = RunRequest(dag=dag, params=merge_params(params_text, param_items), run_id=run_id, enqueue=enqueue, singleton=singleton)
    try:
        name, new_id = Runner(client, reporter, request).start()
        url = client.ui_url(name, new_id)
    finally:
        client.close()
    click.echo(json.dumps({"dag": dag, "name": name, "run_id": new_id, "url": url}) if as_json else new_id)
    return 0


@cli.command(context_settings=CONTEXT)
@click.argument("dag")
@click.argument("run_id")
@connection_options
@retry_for_option
@follow_options
def follow(dag: str, run_id: str, retry_for: float, **options: Any) -> int:
    """Attach to a run (running or ended; RUN_ID may be `latest`) and behave as `run` from there.

    \b
    Examples:
      dagu-ci follow deploy "$RUN_ID"
      dagu-ci follow nightly latest --no-logs

    \b
    Exit codes as `run`: 0 succeeded, 1 failed, 2 usage error or no such run,
    3 aborted or rejected, 4 server error, 124 --timeout, 130/143 cancelled.
    """
    connection, follow_opts = _split(options)
    runner = _runner(dag, connection, follow_opts, retry_for, "--retry-for")
    return _closing(runner, lambda: runner.follow(run_id))


@cli.command(context_settings=CONTEXT)
@click.argument("dag")
@click.argument("run_id")
@connection_options
@click.option("--step", metavar="STEP", help="Retry only this step.")
@click.option("--follow", "follow_run", is_flag=True, help="Follow the retried run as `run` does, and exit with its status.")
@retry_for_option
@follow_options
def retry(dag: str, run_id: str, step: Optional[str], follow_run: bool, retry_for: float, **options: Any) -> int:
    """Retry an ended run (the same run id, a new attempt), or only one of its steps.

    \b
    Examples:
      dagu-ci retry deploy gh-123-1-deploy-5be1c0aa --follow
      dagu-ci retry nightly latest --step load --follow

    \b
    Exit codes: without --follow 0 requested, 2 usage error, 4 server error;
    with --follow as `run`.
    """
    connection, follow_opts = _split(options)
    runner = _runner(dag, connection, follow_opts, retry_for, "--retry-for")
    if follow_run:
        return _closing(runner, lambda: runner.follow(run_id, retry=True, retry_step=step))
    return _closing(runner, lambda: runner.retry_only(run_id, step))


@cli.command(context_settings=CONTEXT)
@click.argument("dag")
@click.argument("run_id", default="latest")
@connection_options
@retry_for_option
@json_option
def status(dag: str, run_id: str, as_json: bool, retry_for: float, **connection: Any) -> int:
    """One snapshot of a run (default: the latest) and its steps.

    \b
    Examples:
      dagu-ci status nightly              # exit 0 only if the latest run succeeded
      dagu-ci status deploy "$RUN_ID" --json

    \b
    Exit codes: 0 succeeded (or partial), 1 failed, 2 usage error, 3 aborted or rejected,
    4 server error, 5 still running, queued or waiting, 6 no such run (or never ran).
    """
    from dagu_ci import inspect

    return _inspect(connection, retry_for, as_json, lambda client, output: inspect.status(client, output, dag, run_id))


@cli.command(context_settings=CONTEXT)
@click.argument("dag")
@click.argument("run_id", default="latest")
@connection_options
@click.option("--step", metavar="STEP", help="Only this step's log (no header).")
@click.option("--stderr", "use_stderr", is_flag=True, help="The stderr log instead of stdout.")
@click.option("--tail", type=click.IntRange(min=1), metavar="N", help="Only the last N lines of each log.")
@click.option("--follow", "follow_run", is_flag=True, help="Stream the logs until the run ends (as `run` shows them).")
@click.option("--poll-interval", type=click.FloatRange(min=0.05), default=0.5, show_default=True, metavar="SECONDS",
              help="With --follow: base poll interval.")
@click.option("--reporter", "reporter_name", type=click.Choice(REPORTER_CHOICES), default="auto", show_default=True,
              envvar="DAGU_CI_REPORTER", show_envvar=True, help="With --follow: output format.")
@retry_for_option
@json_option
def logs(dag: str, run_id: str, step: Optional[str], use_stderr: bool, tail: Optional[int], follow_run: bool,
         poll_interval: float, reporter_name: str, as_json: bool, retry_for: float, **connection: Any) -> int:
    """Print a run's step logs (default: the latest run; every step, each under a header).

    \b
    Examples:
      dagu-ci logs deploy "$RUN_ID" --step build --tail 50
      dagu-ci logs nightly latest --stderr
      dagu-ci logs deploy "$RUN_ID" --follow

    \b
    Exit codes: 0 printed, 2 usage error or no such run/step, 4 server error.
    """
    from dagu_ci import inspect

    request = inspect.LogRequest(dag, run_id, step, "stderr" if use_stderr else "stdout", tail or 0)
    if follow_run:
        if tail or as_json:
            raise UsageError("--follow streams whole logs: it takes no --tail or --json")
        from dagu_ci.follower import FollowOptions
        from dagu_ci.reporters.hosts import make_reporter

        reporter = make_reporter(reporter_name, secrets=(connection["token"], connection["password"]))
        client = _client(connection, retry_for, reporter, "--retry-for")
        try:
            return inspect.follow_logs(client, reporter, request, FollowOptions(poll_interval))
        except inspect.NoRun as exc:
            raise UsageError(exc.message) from None
        finally:
            reporter.close()
            client.close()
    return _inspect(connection, retry_for, as_json, lambda client, output: inspect.logs(client, output, request), no_run_is_usage=True)


@cli.command(context_settings=CONTEXT)
@connection_options
@retry_for_option
@json_option
def dags(as_json: bool, retry_for: float, **connection: Any) -> int:
    """List the server's DAGs: file, name, schedule, suspended, latest run.

    \b
    Examples:
      dagu-ci dags
      dagu-ci dags --json | jq -r '.[] | select(.latest_status == "failed") | .file'
    """
    from dagu_ci import inspect

    return _inspect(connection, retry_for, as_json, inspect.dags)


@cli.command(context_settings=CONTEXT)
@click.argument("dag")
@connection_options
@click.option("--limit", type=click.IntRange(min=1, max=500), default=20, show_default=True, metavar="N", help="How many runs.")
@retry_for_option
@json_option
def history(dag: str, limit: int, as_json: bool, retry_for: float, **connection: Any) -> int:
    """A DAG's past runs, newest first: status, start time, duration.

    \b
    Examples:
      dagu-ci history nightly --limit 5
    """
    from dagu_ci import inspect

    return _inspect(connection, retry_for, as_json, lambda client, output: inspect.history(client, output, dag, limit))


@cli.command(context_settings=CONTEXT)
@click.argument("dag")
@click.argument("run_id", default="latest")
@connection_options
@retry_for_option
@json_option
def outputs(dag: str, run_id: str, as_json: bool, retry_for: float, **connection: Any) -> int:
    """A run's collected outputs (Dagu >= 1.29) as KEY=value lines, or JSON.

    \b
    Examples:
      dagu-ci outputs build "$RUN_ID" >> "$GITHUB_ENV"
      dagu-ci outputs build latest --json
    """
    from dagu_ci import inspect

    return _inspect(connection, retry_for, as_json, lambda client, output: inspect.outputs(client, output, dag, run_id), no_run_is_usage=True)


@cli.command(context_settings=CONTEXT)
@dag_files_argument
@connection_options
@click.option("--local", is_flag=True, help="Only the local checks; do not ask the server.")
@retry_for_option
@json_option
def validate(files: Sequence[str], local: bool, as_json: bool, retry_for: float, **connection: Any) -> int:
    """Check DAG files: YAML and steps locally (file:line errors), then the server's /dags/validate.

    \b
    Examples:
      dagu-ci validate dags/*.yaml
      dagu-ci validate --local dags/deploy.yaml    # no server needed

    \b
    Exit codes: 0 all valid, 1 any invalid, 2 usage error, 4 server error.
    """
    from dagu_ci import dagsync, inspect
    from dagu_ci.reporters.plain import PlainReporter

    client = None if local else _client(connection, retry_for, PlainReporter(sys.stderr), "--retry-for")
    try:
        return dagsync.validate(files, client, inspect.Output(as_json=as_json))
    finally:
        if client is not None:
            client.close()


@cli.command(context_settings=CONTEXT)
@dag_files_argument
@connection_options
@click.option("--create", is_flag=True, help="Add DAGs the server does not have yet (else that is an error).")
@retry_for_option
@json_option
def push(files: Sequence[str], create: bool, as_json: bool, retry_for: float, **connection: Any) -> int:
    """Install DAG files on the server: each one is the DAG of its file name (deploy.yaml: deploy).

    All files are checked (as `validate` does) and the server's copies read before anything
    is written; on any error nothing changes. Each file is reported created, updated or unchanged.

    \b
    Examples:
      dagu-ci push dags/*.yaml --create
      dagu-ci push dags/deploy.yaml && dagu-ci run deploy

    \b
    Exit codes: 0 all pushed, 1 any invalid, missing (without --create) or refused,
    2 usage error, 4 server error.
    """
    from dagu_ci import dagsync, inspect

    return _inspect(connection, retry_for, as_json, lambda client, output: dagsync.push(files, client, output, create))


def _inspect(connection: dict, retry_for: float, as_json: bool, command: Callable[[Any, Any], int], no_run_is_usage: bool = False) -> int:
    """Run a command with a client and an output; only `status` exits 6 for "no run"."""
    from dagu_ci import inspect
    from dagu_ci.reporters.plain import PlainReporter

    client = _client(connection, retry_for, PlainReporter(sys.stderr), "--retry-for")
    try:
        return command(client, inspect.Output(as_json=as_json))
    except inspect.NoRun as exc:
        if no_run_is_usage:
            raise UsageError(exc.message) from None
        raise
    finally:
        client.close()


@cli.command(context_settings=CONTEXT)
@click.argument("dag", required=False)
@click.argument("run_id", required=False)
@connection_options
@click.option("--from-state", is_flag=True,
              help="Stop the runs named by state files (what a cancelled job left behind).")
@click.option("--state-dir", envvar="DAGU_CI_STATE_DIR", show_envvar=True, metavar="DIR",
              help="Where state files are (default: .dagu-ci/ in the CI workspace).")
@click.option("--wait", "wait_seconds", type=click.FloatRange(min=0), default=0, metavar="SECONDS",
              help="Wait up to this long for the run to show it ended.")
@retry_for_option
@json_option
def stop(dag: Optional[str], run_id: Optional[str], from_state: bool, state_dir: Optional[str],
         wait_seconds: float, as_json: bool, retry_for: float, **connection: Any) -> int:
    """Stop a run (dequeue it if queued, reject it if waiting for approval).

    \b
    Examples:
      dagu-ci stop deploy gh-123-1-deploy-5be1c0aa
      dagu-ci stop --from-state     # in a post/after_script/aborted step

    With --json, stdout has {dag, name, run_id, action, status} (a list of them with
    --from-state); action is stopped, dequeued, rejected or none.
    """
    from dagu_ci import state
    from dagu_ci.backstop import end_run, stop_from_state, stop_record
    from dagu_ci.reporters.plain import PlainReporter

    reporter = PlainReporter(sys.stderr if as_json else None)  # with --json, stdout is the document
    if from_state:
        if dag or run_id:
            raise UsageError("--from-state takes no DAG or RUN_ID")
        directory = state_dir or state.state_dir(os.environ)

        def client_for(run: "state.RunState") -> Any:
            # The state file names the server; credentials still come from the environment.
            options = dict(connection, url=run.url, api_path=run.api_path or connection["api_path"])
            return _client(options, retry_for, reporter, "--retry-for")

        records = stop_from_state(directory, client_for, reporter.say)
        if as_json:
            click.echo(json.dumps(records))
        return 0
    if not (dag and run_id):
        raise UsageError("stop needs DAG and RUN_ID, or --from-state")
    client = _client(connection, retry_for, reporter, "--retry-for")
    name = str((client.get_dag(dag).get("dag") or {}).get("name") or dag)
    snapshot = client.find_run(name, run_id)
    if snapshot is None:
        raise UsageError(f"no run {run_id!r} of {dag!r} on {client.display_url}")
    action = ""
    if snapshot.is_over:
        reporter.say(f"run {run_id} already ended ({snapshot.status.label}); nothing to stop")
    else:
        action = end_run(client, name, run_id, snapshot.status)
        reporter.say(f"stop requested for run {run_id} of {name} ({snapshot.status.label} until now)")
        deadline = time.monotonic() + wait_seconds
        while wait_seconds and time.monotonic() < deadline:
            snapshot = client.get_run(name, run_id)
            if snapshot.is_over:
                reporter.say(f"run {run_id} is {snapshot.status.label}")
                break
            time.sleep(0.25)
    if as_json:
        click.echo(json.dumps(stop_record(dag, name, run_id, action, snapshot.status)))
    return 0


def _client(connection: dict, retry_for: float, reporter: Any, retry_option: str) -> Any:
    """A client; until a follow takes over, it tells `reporter` when the server is not answering."""
    from dagu_ci.client import Connection, DaguClient, RetryNotices
    from dagu_ci.events import Level, Notice

    conn = Connection(**connection)
    for flag, path in (("--ca-cert", conn.ca_cert), ("--client-cert", conn.client_cert), ("--client-key", conn.client_key)):
        if path and not os.path.isfile(path):
            raise UsageError(f"{flag} {path}: no such file")
    if conn.client_key and not conn.client_cert:
        raise UsageError("--client-key needs --client-cert")
    if bool(conn.username) != bool(conn.password):
        raise UsageError("--username and --password go together")
    if conn.insecure:
        reporter.handle(Notice("TLS verification is off (--insecure)", Level.WARNING))
    client = DaguClient(conn, retry_for=retry_for)
    RetryNotices(lambda text: reporter.handle(Notice(text, Level.WARNING)), lambda text: reporter.handle(Notice(text)),
                 client.display_url, retry_option).attach(client)
    return client


def main(argv: Optional[List[str]] = None) -> None:
    """Console entry point: one-line errors, never a traceback, exit codes from the README."""
    secrets = [os.environ.get(name, "") for name in ("DAGU_API_TOKEN", "DAGU_PASSWORD")]
    args = list(sys.argv[1:] if argv is None else argv)
    secrets += _secret_args(args)
    try:
        code = cli.main(args=args, prog_name="dagu-ci", standalone_mode=False)
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx:  # bare `dagu-ci` (click >= 8.2)
            click.echo(exc.ctx.get_help())
            sys.exit(ExitCode.USAGE)
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        _fail(f"{exc.format_message()}{hint}", secrets)
        code = ExitCode.USAGE
    except click.exceptions.Abort:
        code = ExitCode.SIGINT
    except DaguCIError as exc:
        _fail(exc.message, secrets)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = ExitCode.SIGINT
    except Cancelled as cancel:  # a second signal while the first one's stop was under way
        code = ExitCode.SIGINT if cancel.signum == signal.SIGINT else ExitCode.SIGTERM
    except Exception as exc:  # noqa: BLE001 - the promise is: no traceback, ever
        if os.environ.get("DAGU_CI_DEBUG"):
            import traceback  # only here: it costs start-up time on every call

            traceback.print_exc()
        _fail(f"internal error: {type(exc).__name__}: {exc} (set DAGU_CI_DEBUG=1 for details)", secrets)
        code = ExitCode.SERVER
    sys.exit(int(code or 0))


def _fail(message: str, secrets: List[str]) -> None:
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    click.echo(f"dagu-ci: error: {' '.join(message.split())}", err=True)


def _secret_args(args: List[str]) -> List[str]:
    found = []
    for index, arg in enumerate(args):
        for flag in ("--token", "--password"):
            if arg == flag and index + 1 < len(args):
                found.append(args[index + 1])
            elif arg.startswith(flag + "="):
                found.append(arg.split("=", 1)[1])
    return found
