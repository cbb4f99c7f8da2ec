#!/usr/bin/env python3
"""The container's entrypoint: maps each CI host's way of calling the image onto `dagu-ci`.

- A host that runs the image as a step with no arguments hands it the step's inputs as
  variables: GitHub's Docker action as INPUT_* (hyphens kept: `INPUT_POLL-INTERVAL`),
  others their own way (Host.action_input). They become `dagu-ci run`.
- `dagu-ci ARGS`, or arguments the CLI owns (`run ...`, `--help`): the CLI.
- Anything else is exec'd as is: GitLab's docker executor hands the image `sh`,
  Jenkins' `docker.image(...).inside` hands it `cat`.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Container, Dict, List, Optional

if TYPE_CHECKING:
    from dagu_ci.hosts.base import Host

# input -> CLI option, by kind. Secrets go through the environment, never argv.
CONNECTION_INPUTS = ("url", "api-path", "username", "ca-cert", "client-cert", "client-key")
VALUE_INPUTS = CONNECTION_INPUTS + (
    "spec",
    "params",
    "run-id",
    "timeout",
    "poll-interval",
    "start-timeout",
    "junit",
    "on-waiting",
    "queue-timeout",
    "cancel-superseded",
    "download-artifacts",
    "sub-run-logs",
)
FLAG_INPUTS = ("enqueue", "singleton", "insecure", "fail-on-partial", "dry-run")  # default false
NEGATED_INPUTS = {
    "logs": "--no-logs",
    "stop-on-cancel": "--no-stop-on-cancel",
    "wait-auto-retry": "--no-wait-auto-retry",
}  # default true
DEFAULT_ARTIFACTS_DIR = "dagu-artifacts"  # in the workspace, for the host's artifact upload
POST_NAME = "dagu-ci-post"  # the action's post-entrypoint: a link to this file
SECRET_INPUTS = {"token": "DAGU_API_TOKEN", "password": "DAGU_PASSWORD"}
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


class InputError(Exception):
    pass


def read_flag(host: "Host", name: str, default: bool) -> bool:
    value = host.action_input(name).lower()
    if not value:
        return default
    if value in TRUE or value in FALSE:
        return value in TRUE
    raise InputError(f"input {name} must be true or false, not {value!r}")


def action_args(host: "Host") -> List[str]:
    """`dagu-ci run` arguments for the action's inputs."""
    dag = host.action_input("dag")
    if not dag and not host.action_input("spec"):
        raise InputError("input dag is required (the DAG's file name as Dagu lists it), or input spec")
    args = ["run", dag] if dag else ["run"]
    for name in VALUE_INPUTS:
        value = host.action_input(name)
        if name == "download-artifacts" and value.lower() in TRUE:
            value = os.path.join(host.workspace() or ".", DEFAULT_ARTIFACTS_DIR)
        elif name == "download-artifacts" and value.lower() in FALSE:
            value = ""
        if value:
            args += [f"--{name}", value]
    args += [f"--{name}" for name in FLAG_INPUTS if read_flag(host, name, False)]
    args += [flag for name, flag in NEGATED_INPUTS.items() if not read_flag(host, name, True)]
    return args


def post_args(host: "Host") -> List[str]:
    """The action's post step: stop what a cancelled or failed main step left running."""
    args = ["stop", "--from-state"]
    for name in CONNECTION_INPUTS:
        value = host.action_input(name)
        if value:
            args += [f"--{name}", value]
    if read_flag(host, "insecure", False):
        args.append("--insecure")
    return args


def action_secrets(host: "Host") -> Dict[str, str]:
    return {var: host.action_input(name) for name, var in SECRET_INPUTS.items() if host.action_input(name)}


def cli_args(argv: List[str], host: "Host", commands: Container[str]) -> Optional[List[str]]:
    """The CLI's arguments for this call, or None when argv is a command to exec."""
    if not argv:
        return action_args(host) if host.is_action() else []  # plain `docker run IMAGE`: the help
    if argv[0] == "dagu-ci":
        return argv[1:]
    if argv[0].startswith("-") or argv[0] in commands:
        return argv
    return None


def main(argv: List[str], program: str = "") -> None:
    from dagu_ci import cli
    from dagu_ci.hosts import detect

    host = detect(os.environ)  # once: the CLI gets this one
    post = os.path.basename(program) == POST_NAME
    try:
        if post:
            os.environ.update(action_secrets(host))
            cli.console(post_args(host), host)
            return
        args = cli_args(argv, host, cli.cli.commands)
    except InputError as exc:
        # As the CLI's own errors: one line, and for the action's run the annotation and outputs.
        os.environ.update(action_secrets(host))
        cli.learn_secrets([])  # the action's credentials, now in DAGU_* variables
        sys.exit(cli.fail(str(exc), 2, [] if post else ["run"], cli.Session(given_host=host)))
    if args is not None:
        if not argv:
            os.environ.update(action_secrets(host))
        cli.console(args, host)
        return
    try:
        os.execvp(argv[0], argv)  # a command the image does not own: sh, bash, cat, ...
    except OSError as exc:
        print(f"dagu-ci: error: cannot run {argv[0]!r}: {exc.strerror}", file=sys.stderr)
        sys.exit(127)


if __name__ == "__main__":
    main(sys.argv[1:], sys.argv[0])
