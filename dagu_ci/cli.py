"""The command line. Thin: parse options, build the core objects, map errors to exit codes."""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import click

from dagu_ci import __version__
from dagu_ci.errors import Cancelled, DaguCIError, ExitCode, NoRun, OutputClosed, UsageError
from dagu_ci.files import ENCODING_ERRORS
from dagu_ci.hosts import REPORTER_CHOICES, detect
from dagu_ci.redaction import debug_traceback, learn, mask_values, redact

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
# Commands that follow (or may follow) a run with a host's reporter: on an error, the
# host still gets its annotation, outputs and summary (or dotenv).
RUN_COMMANDS = ("run", "follow", "retry")


@dataclass
class Session:
    """This invocation: the CI host it runs in, and (for main() after an error) the reporter made."""

    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    given_host: Any = None  # the entrypoint's, which it detected to read the action's inputs
    reporter: Any = None

    @property
    def host(self) -> Any:
        """Detected once, on first use: `--help` and `--version` never import a host."""
        if self.given_host is None:
            self.given_host = detect(self.env)
        return self.given_host


def _session() -> Session:
    return click.get_current_context().find_root().ensure_object(Session)


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """URL, auth and TLS options shared by every command that talks to a server."""
    options = [
        click.option(
            "--url",
            envvar="DAGU_URL",
            default="http://localhost:8080",
            show_default=True,
            show_envvar=True,
            metavar="URL",
            help="Dagu server base URL, including any base path (a user:password in it is Basic auth, never shown).",
        ),
        click.option(
            "--api-path",
            envvar="DAGU_API_PATH",
            show_envvar=True,
            metavar="PATH",
            help="API path under the URL (e.g. /api/v1); skips auto-detection.",
        ),
        click.option(
            "--token",
            envvar="DAGU_API_TOKEN",
            show_envvar=True,
            metavar="TOKEN",
            help="Bearer token: an API key (dagu_..., role operator is enough) or a 1.x static token. "
            "White space around it is ignored.",
        ),
        click.option("--username", envvar="DAGU_USERNAME", show_envvar=True, help="Basic auth user."),
        click.option(
            "--password",
            envvar="DAGU_PASSWORD",
            show_envvar=True,
            help="Basic auth password (a trailing newline is ignored).",
        ),
        click.option(
            "--ca-cert",
            envvar="DAGU_CA_CERT",
            show_envvar=True,
            metavar="PATH",
            help="CA bundle to verify the server's TLS certificate.",
        ),
        click.option(
            "--client-cert",
            envvar="DAGU_CLIENT_CERT",
            show_envvar=True,
            metavar="PATH",
            help="Client certificate for mutual TLS (PEM; may include the key).",
        ),
        click.option(
            "--client-key",
            envvar="DAGU_CLIENT_KEY",
            show_envvar=True,
            metavar="PATH",
            help="Private key for --client-cert, if not in the same file.",
        ),
        click.option(
            "--insecure",
            is_flag=True,
            envvar="DAGU_INSECURE",
            show_envvar=True,
            help="Skip TLS verification (an https URL prints a warning).",
        ),
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
    return click.option(
        "--retry-for",
        type=click.FloatRange(min=0),
        default=30,
        show_default=True,
        metavar="SECONDS",
        help="How long to retry an unreachable or failing server before giving up (exit 4).",
    )(command)


# DAG files from the repository (`validate`, `push`): a missing one is a usage error (exit 2).
dag_files_argument = click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False), metavar="FILE..."
)

PARAMS_HELP = (
    """Params as a JSON object, a YAML mapping, or K=V K2="v 2"; @FILE reads them from a file, - from stdin."""
)


def follow_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """How `run`, `follow` and `retry --follow` watch a run and end: one set, one behaviour."""
    options = [
        click.option(
            "--timeout",
            type=click.FloatRange(min=0),
            default=0,
            show_default=True,
            metavar="SECONDS",
            help="Stop the run and exit 124 after this long; 0 means no limit.",
        ),
        click.option(
            "--poll-interval",
            type=click.FloatRange(min=0.05),
            default=0.5,
            show_default=True,
            metavar="SECONDS",
            help="Base poll interval; backs off while nothing changes. A busy run's status is polled at 0.3x it.",
        ),
        click.option("--no-push", is_flag=True, help="Poll only; do not use the server's events stream (Dagu >= 2.3)."),
        click.option("--no-logs", is_flag=True, help="Show step statuses only, not their logs."),
        click.option(
            "--sub-run-logs",
            type=click.Choice(["all", "failed", "none"]),
            default="all",
            show_default=True,
            help="Logs of sub-DAG runs' steps (call, parallel): all; failed (only a child that did not "
            "succeed, whole, once it ends); none (statuses only).",
        ),
        click.option(
            "--no-stop-on-cancel",
            is_flag=True,
            help="Leave the run going when the CI job is cancelled, or dagu-ci fails with an error.",
        ),
        click.option("--fail-on-partial", is_flag=True, help="Exit 1 when the run only partially succeeds."),
        click.option(
            "--on-waiting",
            type=click.Choice(["wait", "fail"]),
            default="wait",
            show_default=True,
            help="When the run waits for human approval: keep waiting (within --timeout), or exit 3 and leave it waiting.",
        ),
        click.option(
            "--queue-timeout",
            type=click.FloatRange(min=0),
            default=0,
            show_default=True,
            metavar="SECONDS",
            help="Dequeue the run and exit 124 if it has not left the queue after this long; 0 means no limit.",
        ),
        click.option(
            "--no-wait-auto-retry",
            is_flag=True,
            help="Exit on the first failure even when Dagu (>= 2.3) will retry the run by itself.",
        ),
        click.option(
            "--download-artifacts",
            type=click.Path(file_okay=False),
            metavar="DIR",
            help="After the run, download its artifacts here (Dagu >= 2.5); nothing lands outside DIR.",
        ),
        click.option(
            "--state-dir",
            envvar="DAGU_CI_STATE_DIR",
            show_envvar=True,
            metavar="DIR",
            help="Where the run's state file goes (default: .dagu-ci/ in the CI job's temp directory, outside the checkout).",
        ),
        click.option(
            "--result-file",
            type=click.Path(dir_okay=False, writable=True),
            metavar="PATH",
            help="Write a JSON result (run id, status, exit code, url, steps) here.",
        ),
        click.option(
            "--junit",
            type=click.Path(dir_okay=False, writable=True),
            metavar="PATH",
            help="Write a JUnit XML report here: one testcase per DAG step.",
        ),
        click.option(
            "--reporter",
            "reporter_name",
            type=click.Choice(REPORTER_CHOICES),
            default="auto",
            show_default=True,
            envvar="DAGU_CI_REPORTER",
            show_envvar=True,
            help="Output format; auto picks the CI host's own (plain in a terminal and unknown hosts).",
        ),
        click.option(
            "--json",
            "as_json",
            is_flag=True,
            help="Print only the result document (as --result-file writes it) on stdout; the log and every line for people go to stderr.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


CONNECTION_KEYS = (
    "url",
    "api_path",
    "token",
    "username",
    "password",
    "ca_cert",
    "client_cert",
    "client_key",
    "insecure",
)


def _split(options: Dict[str, Any]) -> "tuple[Dict[str, Any], Dict[str, Any]]":
    """(connection options, the rest)."""
    connection = {key: options.pop(key) for key in CONNECTION_KEYS}
    return connection, options


def _runner(
    dag: str, connection: Dict[str, Any], follow: Dict[str, Any], retry_for: float, retry_option: str, **fields: Any
) -> Any:
    """A Runner with the shared follow options applied; `fields` are the command's own."""
    from dagu_ci.hosts import make_reporter
    from dagu_ci.run.runner import Runner, RunRequest

    session = _session()
    reporter = make_reporter(
        session.host,
        follow.pop("reporter_name"),
        follow.pop("junit"),
        secrets=mask_values(),
        out=sys.stderr if follow["as_json"] else None,
    )  # with --json, stdout is the document
    session.reporter = reporter
    client = _client(connection, retry_for, reporter, retry_option)
    request = RunRequest(
        dag=dag,
        timeout=follow["timeout"],
        poll_interval=follow["poll_interval"],
        push=not follow["no_push"],
        logs=not follow["no_logs"],
        sub_run_logs=follow["sub_run_logs"],
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
    return Runner(client, reporter, request, session.host)


def _check_run_id(run_id: Optional[str]) -> None:
    """A bad --run-id is bad input: refused before the server is asked anything."""
    if run_id is not None:
        from dagu_ci.hosts.runid import validate_run_id

        validate_run_id(run_id)


def _closing(runner: Any, action: Callable[[], int]) -> int:
    try:
        return action()
    finally:
        runner.reporter.close()
        runner.client.close()


@cli.command(context_settings=CONTEXT)
@click.argument("dag", required=False)
@click.argument("param_args", nargs=-1, metavar="[KEY=VALUE]...")
@connection_options
@click.option(
    "--spec",
    type=click.Path(dir_okay=False),
    metavar="PATH",
    help="Run this DAG file from the repository without installing it (Dagu >= 1.23; with --enqueue 1.24).",
)
@click.option(
    "--param",
    "param_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="A DAG param; repeatable; wins over --params and KEY=VALUE arguments.",
)
@click.option("--params", "params_text", metavar="TEXT", help=PARAMS_HELP)
@click.option(
    "--run-id",
    metavar="ID",
    help="Run id (1-64 of [-a-zA-Z0-9_]). Default: derived from the CI job, so a retried job attaches instead of starting twice.",
)
@click.option("--enqueue", is_flag=True, help="Enqueue the run instead of starting it now.")
@click.option("--singleton", is_flag=True, help="Refuse to start while another run of the DAG is active (exit 4).")
@click.option(
    "--start-timeout",
    type=click.FloatRange(min=0),
    default=60,
    show_default=True,
    metavar="SECONDS",
    help="How long to retry an unreachable or failing server before the run has started (exit 4).",
)
@click.option(
    "--cancel-superseded",
    metavar="KEY",
    help="Stop this DAG's active runs started with the same KEY (e.g. the branch) before starting.",
)
@click.option(
    "--dry-run", is_flag=True, help="Check server, auth, DAG and params; print what would start; start nothing."
)
@follow_options
def run(
    dag: Optional[str],
    param_args: Sequence[str],
    spec: Optional[str],
    param_items: Sequence[str],
    params_text: Optional[str],
    run_id: Optional[str],
    enqueue: bool,
    singleton: bool,
    start_timeout: float,
    cancel_superseded: Optional[str],
    dry_run: bool,
    **options: Any,
) -> int:
    """Start DAG (its file name as Dagu lists it), stream its logs, and exit with its status.

    \b
    Examples:
      dagu-ci run deploy VERSION=1.2.3 --url https://dagu.example.com
      dagu-ci run --spec dags/deploy.yaml      # the DAG as changed in this pull request

    \b
    Exit codes: 0 succeeded (or partial), 1 failed, 2 usage/input error
    (an unwritable output path too), 3 aborted or rejected, 4 server unreachable
    or API error, 124 --timeout, 130 SIGINT, 141 stdout closed, 143 SIGTERM;
    the run is stopped first on 124, 130, 141 and 143.
    With --json, stdout is the result document alone (nothing on an error).
    """
    from dagu_ci.server.params import merge_params

    if dag and "=" in dag:  # `run --spec FILE K=V`: no DAG name holds "="
        param_args = (dag, *param_args)
        dag = None
    if not dag and not spec:
        raise UsageError("run needs a DAG (its file name on the server), or --spec PATH")
    _check_run_id(run_id)
    params = merge_params(params_text, (*param_args, *param_items))
    if spec and not dag:
        from dagu_ci.server.dagyaml import load_dag_file

        dag = str(load_dag_file(spec)[1].get("name") or os.path.splitext(os.path.basename(spec))[0])
    assert dag  # a name, or --spec's (checked above)
    connection, follow = _split(options)
    runner = _runner(
        dag,
        connection,
        follow,
        start_timeout,
        "--start-timeout",
        params=params,
        run_id=run_id,
        enqueue=enqueue,
        singleton=singleton,
        cancel_superseded=cancel_superseded,
        dry_run=dry_run,
        spec=spec,
    )
    return _closing(runner, runner.run)


@cli.command(context_settings=CONTEXT)
@click.argument("dag")
@click.argument("param_items", nargs=-1, metavar="[KEY=VALUE]...")
@connection_options
@click.option("--params", "params_text", metavar="TEXT", help=PARAMS_HELP)
@click.option("--run-id", metavar="ID", help="Run id (1-64 of [-a-zA-Z0-9_]). Default: derived from the CI job.")
@click.option("--enqueue", is_flag=True, help="Enqueue the run instead of starting it now.")
@click.option("--singleton", is_flag=True, help="Refuse to start while another run of the DAG is active (exit 4).")
@click.option(
    "--start-timeout",
    type=click.FloatRange(min=0),
    default=60,
    show_default=True,
    metavar="SECONDS",
    help="How long to retry an unreachable server (exit 4).",
)
@json_option
def start(
    dag: str,
    param_items: Sequence[str],
    params_text: Optional[str],
    run_id: Optional[str],
    enqueue: bool,
    singleton: bool,
    start_timeout: float,
    as_json: bool,
    **connection: Any,
) -> int:
    """Start DAG without waiting; print the run id (details go to stderr).

    \b
    Examples:
      RUN_ID=$(dagu-ci start deploy VERSION=1.2.3)
      dagu-ci follow deploy "$RUN_ID"     # later, maybe in another job

    \b
    Exit codes: 0 started, 2 usage/input error, 4 server error or --singleton conflict.
    """
    from dagu_ci.reporters.plain import PlainReporter
    from dagu_ci.run.runner import Runner, RunRequest
    from dagu_ci.server.params import merge_params

    _check_run_id(run_id)
    params = merge_params(params_text, param_items)
    reporter = PlainReporter(sys.stderr)  # stdout carries only the run id
    client = _client(connection, start_timeout, reporter, "--start-timeout")
    request = RunRequest(dag=dag, params=params, run_id=run_id, enqueue=enqueue, singleton=singleton)
    try:
        name, new_id = Runner(client, reporter, request, _session().host).start()
        url = client.ui_url(name, new_id)
    finally:
        client.close()
    from dagu_ci.remotetext import inert, json_text

    click.echo(json_text({"dag": dag, "name": name, "run_id": new_id, "url": url}) if as_json else inert(new_id))
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
    3 aborted or rejected, 4 server error, 124 --timeout, 130/143 cancelled, 141 stdout closed.
    """
    connection, follow_opts = _split(options)
    runner = _runner(dag, connection, follow_opts, retry_for, "--retry-for")
    return _closing(runner, lambda: runner.follow(run_id))


@cli.command(context_settings=CONTEXT)
@click.argument("dag")
@click.argument("run_id")
@connection_options
@click.option("--step", metavar="STEP", help="Retry only this step (a step that calls DAGs runs its children again).")
@click.option(
    "--follow", "follow_run", is_flag=True, help="Follow the retried run as `run` does, and exit with its status."
)
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
    """One snapshot of a run (default: the latest) and its steps, its sub-DAG runs indented.

    \b
    Examples:
      dagu-ci status nightly              # exit 0 only if the latest run succeeded
      dagu-ci status deploy "$RUN_ID" --json

    \b
    Exit codes: 0 succeeded (or partial), 1 failed, 2 usage error, 3 aborted or rejected,
    4 server error, 5 still running, queued or waiting, 6 no such run (or never ran).
    """
    from dagu_ci.commands import status

    return _inspect(connection, retry_for, as_json, lambda client, output: status.status(client, output, dag, run_id))


@cli.command(context_settings=CONTEXT)
@click.argument("dag")
@click.argument("run_id", default="latest")
@connection_options
@click.option(
    "--step",
    metavar="STEP",
    help="Only this step's log (no header); a sub-DAG run's step by its path: 'deploy/leaf[eu]/migrate'.",
)
@click.option("--stderr", "use_stderr", is_flag=True, help="The stderr log instead of stdout.")
@click.option("--tail", type=click.IntRange(min=1), metavar="N", help="Only the last N lines of each log.")
@click.option("--follow", "follow_run", is_flag=True, help="Stream the logs until the run ends (as `run` shows them).")
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.05),
    default=0.5,
    show_default=True,
    metavar="SECONDS",
    help="With --follow: base poll interval.",
)
@click.option(
    "--reporter",
    "reporter_name",
    type=click.Choice(REPORTER_CHOICES),
    default="auto",
    show_default=True,
    envvar="DAGU_CI_REPORTER",
    show_envvar=True,
    help="With --follow: output format.",
)
@retry_for_option
@json_option
def logs(
    dag: str,
    run_id: str,
    step: Optional[str],
    use_stderr: bool,
    tail: Optional[int],
    follow_run: bool,
    poll_interval: float,
    reporter_name: str,
    as_json: bool,
    retry_for: float,
    **connection: Any,
) -> int:
    """Print a run's step logs (default: the latest run; every step, each under a header).

    \b
    Examples:
      dagu-ci logs deploy "$RUN_ID" --step build --tail 50
      dagu-ci logs deploy "$RUN_ID" --step 'deploy/region[eu]/migrate'
      dagu-ci logs nightly latest --stderr
      dagu-ci logs deploy "$RUN_ID" --follow

    \b
    Exit codes: 0 printed, 2 usage error or no such run/step, 4 server error.
    """
    from dagu_ci.commands import status

    request = status.LogRequest(dag, run_id, step, "stderr" if use_stderr else "stdout", tail or 0)
    if follow_run:
        if tail or as_json:
            raise UsageError("--follow streams whole logs: it takes no --tail or --json")
        from dagu_ci.follow.follower import FollowOptions
        from dagu_ci.hosts import make_reporter
        from dagu_ci.stdio import raise_if_reader_gone

        reporter = make_reporter(_session().host, reporter_name, secrets=mask_values())
        client = _client(connection, retry_for, reporter, "--retry-for")
        try:
            # A reader that went away (`| head`) ends the follow at the next poll.
            return status.follow_logs(
                client, reporter, request, FollowOptions(poll_interval, check=raise_if_reader_gone)
            )
        except NoRun as exc:
            raise UsageError(exc.message) from None
        finally:
            reporter.close()
            client.close()
    return _inspect(
        connection,
        retry_for,
        as_json,
        lambda client, output: status.logs(client, output, request),
        no_run_is_usage=True,
    )


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

    \b
    Exit codes: 0 listed, 2 usage error (e.g. refused credentials), 4 server error.
    """
    from dagu_ci.commands import status

    return _inspect(connection, retry_for, as_json, status.dags)


@cli.command(context_settings=CONTEXT)
@click.argument("dag")
@connection_options
@click.option(
    "--limit", type=click.IntRange(min=1, max=500), default=20, show_default=True, metavar="N", help="How many runs."
)
@retry_for_option
@json_option
def history(dag: str, limit: int, as_json: bool, retry_for: float, **connection: Any) -> int:
    """A DAG's past runs, newest first: status, start time, duration.

    \b
    Examples:
      dagu-ci history nightly --limit 5

    \b
    Exit codes: 0 listed, 2 usage error or unknown DAG, 4 server error.
    """
    from dagu_ci.commands import status

    return _inspect(connection, retry_for, as_json, lambda client, output: status.history(client, output, dag, limit))


@cli.command(context_settings=CONTEXT)
@click.argument("dag")
@click.argument("run_id", default="latest")
@connection_options
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["env", "github-env", "dotenv", "json"]),
    default=None,
    help="env (default): KEY=value lines; github-env: for $GITHUB_ENV or $GITHUB_OUTPUT, multi-line "
    "values as NAME<<DELIMITER; dotenv: for a GitLab dotenv report; json: an object, every value exact.",
)
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
@retry_for_option
def outputs(
    dag: str, run_id: str, output_format: Optional[str], as_json: bool, retry_for: float, **connection: Any
) -> int:
    """A run's collected outputs (Dagu >= 1.29), in the format of the file they go to.

    A DAG's outputs are data: no format lets one set a variable it did not name. A name
    that is not a plain variable name or is reserved (PATH, LD_*, NODE_OPTIONS, GITHUB_*,
    DAGU_*, ...), or a value the format cannot carry exactly (a line break in env or
    dotenv), or that a CI log would run as a command (##[...], ##vso[...]), is refused:
    exit 1 and nothing printed. --format json carries everything.

    \b
    Examples:
      dagu-ci outputs build "$RUN_ID" --format github-env >> "$GITHUB_ENV"
      dagu-ci outputs build "$RUN_ID" --format dotenv > outputs.env   # artifacts:reports:dotenv
      dagu-ci outputs build latest --json

    \b
    Exit codes: 0 printed, 1 an output this format cannot carry safely,
    2 usage error or no such run, 4 server error.
    """
    from dagu_ci.commands import status
    from dagu_ci.remotetext import EnvFormat

    if as_json and output_format not in (None, "json"):
        raise UsageError(f"--json is --format json: it cannot go with --format {output_format}")
    fmt = None if as_json or output_format == "json" else EnvFormat(output_format or "env")
    return _inspect(
        connection,
        retry_for,
        fmt is None,
        lambda client, output: status.outputs(client, output, dag, run_id, fmt),
        no_run_is_usage=True,
    )


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
    from dagu_ci.commands import dagsync, status
    from dagu_ci.reporters.plain import PlainReporter

    client = None if local else _client(connection, retry_for, PlainReporter(sys.stderr), "--retry-for")
    try:
        return dagsync.validate(files, client, status.Output(as_json=as_json))
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
    from dagu_ci.commands import dagsync

    return _inspect(connection, retry_for, as_json, lambda client, output: dagsync.push(files, client, output, create))


def _inspect(
    connection: Dict[str, Any],
    retry_for: float,
    as_json: bool,
    command: Callable[[Any, Any], int],
    no_run_is_usage: bool = False,
) -> int:
    """Run a command with a client and an output; only `status` exits 6 for "no run"."""
    from dagu_ci.commands import status
    from dagu_ci.reporters.plain import PlainReporter

    client = _client(connection, retry_for, PlainReporter(sys.stderr), "--retry-for")
    try:
        return command(client, status.Output(as_json=as_json))
    except NoRun as exc:
        if no_run_is_usage:
            raise UsageError(exc.message) from None
        raise
    finally:
        client.close()


@cli.command(context_settings=CONTEXT)
@click.argument("dag", required=False)
@click.argument("run_id", required=False)
@connection_options
@click.option(
    "--from-state",
    is_flag=True,
    help="Stop the runs this CI job's state files name (what a cancelled job left behind), on --url only.",
)
@click.option(
    "--state-dir",
    envvar="DAGU_CI_STATE_DIR",
    show_envvar=True,
    metavar="DIR",
    help="Where state files are (default: .dagu-ci/ in the CI job's temp directory, outside the checkout).",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0),
    default=0,
    metavar="SECONDS",
    help="Wait up to this long for the run to show it ended.",
)
@retry_for_option
@json_option
def stop(
    dag: Optional[str],
    run_id: Optional[str],
    from_state: bool,
    state_dir: Optional[str],
    wait_seconds: float,
    as_json: bool,
    retry_for: float,
    **connection: Any,
) -> int:
    """Stop a run (dequeue it if queued, reject it if waiting for approval).

    \b
    Examples:
      dagu-ci stop deploy gh-123-1-deploy-5be1c0aa
      dagu-ci stop --from-state     # in a post/after_script/aborted step

    With --json, stdout has {dag, name, run_id, action, status} (a list of them with
    --from-state); action is stopped, dequeued, rejected or none.

    \b
    Exit codes: 0 stopped (or nothing to stop), 2 usage error or no such run,
    4 server error.
    """
    from dagu_ci.follow.events import Level, Notice
    from dagu_ci.remotetext import json_text
    from dagu_ci.reporters.plain import PlainReporter
    from dagu_ci.run.backstop import Binding, stop_from_state, stop_run

    reporter = PlainReporter(sys.stderr if as_json else None)  # with --json, stdout is the document
    if from_state and (dag or run_id):
        raise UsageError("--from-state takes no DAG or RUN_ID")
    if not from_state and not (dag and run_id):
        raise UsageError("stop needs DAG and RUN_ID, or --from-state")
    # Only ever the configured server, with the configured credentials: a state file
    # names the run, never where requests go.
    client = _client(connection, retry_for, reporter, "--retry-for")
    try:
        if from_state:
            host = _session().host
            directory = state_dir or host.state_dir()
            binding = Binding.current(host, client.base_url)
            records = stop_from_state(
                directory, client, binding, reporter.say, lambda text: reporter.handle(Notice(text, Level.WARNING))
            )
            if as_json:
                click.echo(json_text(records))
            return 0
        record = stop_run(client, dag or "", run_id or "", wait_seconds, reporter.say)
        if as_json:
            click.echo(json_text(record))
        return 0
    finally:
        client.close()


def _client(connection: Dict[str, Any], retry_for: float, reporter: Any, retry_option: str) -> Any:
    """A client that tells `reporter` whenever the server is not answering, from the first request on."""
    from dagu_ci.follow.events import Level, Notice
    from dagu_ci.server.api import DaguClient
    from dagu_ci.server.client import Connection

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
    return DaguClient(conn, retry_for=retry_for, retry_option=retry_option, notify=reporter.handle)


def main(argv: Optional[List[str]] = None, host: Any = None) -> None:
    """Console entry point: one-line errors, never a traceback, exit codes from the README.
    `host`: the CI host when the caller has detected it already (the container's entrypoint)."""
    from dagu_ci.stdio import guard_std_streams, stdout_lost_output

    _tolerant_streams()
    guard_std_streams()  # a closed pipe never raises out of a write
    args = list(sys.argv[1:] if argv is None else argv)
    learn_secrets(args)  # before anything can print: click's own errors too
    session = Session(given_host=host)
    message = ""
    try:
        code = cli.main(args=args, prog_name="dagu-ci", standalone_mode=False, obj=session)
        if stdout_lost_output() and not (args and args[0] in RUN_COMMANDS):  # a run's own code says how it ended
            code = ExitCode.OUTPUT_CLOSED
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx:  # bare `dagu-ci` (click >= 8.2)
            click.echo(exc.ctx.get_help())
            sys.exit(ExitCode.USAGE)
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        message, code = f"{exc.format_message()}{hint}", ExitCode.USAGE
    except click.exceptions.Abort:
        code = ExitCode.SIGINT
    except DaguCIError as exc:
        message, code = exc.message, exc.exit_code
    except KeyboardInterrupt:
        code = ExitCode.SIGINT
    except Cancelled as cancel:  # a second signal while the first one's stop was under way
        code = ExitCode.SIGINT if cancel.signum == signal.SIGINT else ExitCode.SIGTERM
    except OutputClosed:  # stdout's reader went away before a run existed, or in another command
        code = ExitCode.OUTPUT_CLOSED
    except Exception as exc:  # noqa: BLE001 - the promise is: no traceback, ever
        debug_traceback(os.environ)
        message = f"internal error: {type(exc).__name__}: {exc} (set DAGU_CI_DEBUG=1 for details)"
        code = ExitCode.SERVER
    if message:
        code = fail(message, int(code), args, session)
    sys.exit(int(code or 0))


def console(argv: Optional[List[str]] = None, host: Any = None) -> None:
    """The console script, `python -m dagu_ci` and the image's entrypoint: `main`, then an
    exit that skips the interpreter's own shutdown. Finalising requests, urllib3, ssl and
    their daemon threads takes 0.1-0.2 s, most of the time from a run's end to dagu-ci's
    exit (bench/RESULTS.md); by then every file dagu-ci wrote is closed (written whole, or
    appended under `with`), so only the standard streams are left to flush."""
    try:
        main(argv, host)
        code: Any = 0
    except SystemExit as done:
        code = done.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader gone, or a stream closed: nothing left to say
            pass
    os._exit(code or 0)


def _tolerant_streams() -> None:
    """What a stream cannot encode (a lone surrogate a broken server sent, anything beyond
    ASCII under PYTHONIOENCODING=ascii) is written as a backslash escape, never an error."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors=ENCODING_ERRORS)


def fail(message: str, code: int, args: Sequence[str], session: Optional[Session] = None) -> int:
    """Print the one-line error on stderr and, for a run under a CI host, tell the host too
    (annotation, outputs, summary or dotenv): every exit leaves what it can. Returns `code`."""
    from dagu_ci.remotetext import inert  # the message may quote the server

    message = inert(" ".join(redact(message).split()))
    click.echo(f"dagu-ci: error: {message}", err=True)
    if args and args[0] in RUN_COMMANDS:
        try:
            _tell_host(message, code, args, session or Session())
        except Exception as exc:  # noqa: BLE001 - the error above is the one that counts
            click.echo(f"dagu-ci: warning: could not report the error to the CI host: {exc}", err=True)
    return code


def _tell_host(message: str, code: int, args: Sequence[str], session: Session) -> None:
    """The run's own reporter if it was made, else one made now (bad options end before it is)."""
    from dagu_ci.follow.events import Failed
    from dagu_ci.hosts import make_reporter

    command = cli.commands[args[0]]
    try:  # what could be read of the arguments, even bad ones; nothing is run or checked
        params = command.make_context(args[0], list(args[1:]), resilient_parsing=True).params
    except click.ClickException:
        params = {}
    reporter = session.reporter
    if reporter is None:
        choice = params.get("reporter_name") or os.environ.get("DAGU_CI_REPORTER") or "auto"
        if choice not in REPORTER_CHOICES:
            choice = "auto"
        reporter = make_reporter(
            session.host, choice, secrets=mask_values(), out=sys.stderr if params.get("as_json") else None
        )
    dag = str(params.get("dag") or params.get("spec") or "")
    reporter.handle(Failed(message, code, dag))
    reporter.close()


def learn_secrets(args: List[str]) -> None:
    """Tell redaction every credential this invocation may use, as typed (the client adds
    them again as it cleans them)."""

    def given(flag: str, env_name: str) -> List[Optional[str]]:
        return [os.environ.get(env_name), *_option_values(args, flag)]

    learn(
        tokens=given("--token", "DAGU_API_TOKEN"),
        usernames=given("--username", "DAGU_USERNAME"),
        passwords=given("--password", "DAGU_PASSWORD"),
        urls=given("--url", "DAGU_URL"),
    )


def _option_values(args: List[str], flag: str) -> List[str]:
    """Every value given to `flag` (`--flag VALUE` or `--flag=VALUE`), before click parses."""
    found = []
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            found.append(args[index + 1])
        elif arg.startswith(flag + "="):
            found.append(arg.split("=", 1)[1])
    return found
