#!/usr/bin/env python3
"""The container's entrypoint: maps each CI host's way of calling the image onto `dagu-ci`.

- GitHub's Docker action runs the image with no arguments and the inputs as
  INPUT_* variables (hyphens kept: `INPUT_POLL-INTERVAL`): they become `dagu-ci run`.
- `dagu-ci ARGS`, or arguments the CLI owns (`run ...`, `--help`): the CLI.
- Anything else is exec'd as is: GitLab's docker executor hands the image `sh`,
  Jenkins' `docker.image(...).inside` hands it `cat`.
"""
from __future__ import annotations

import os
import sys
from typing import List, Mapping, Optional

# input -> CLI option, by kind. Secrets go through the environment, never argv.
CONNECTION_INPUTS = ("url", "api-path", "username", "ca-cert", "client-cert", "client-key")
VALUE_INPUTS = CONNECTION_INPUTS + ("spec", "params", "run-id", "timeout", "poll-interval", "start-timeout", "junit",
                                    "on-waiting", "queue-timeout", "cancel-superseded", "download-artifacts")
FLAG_INPUTS = ("enqueue", "singleton", "insecure", "fail-on-partial", "dry-run")  # default false
NEGATED_INPUTS = {"logs": "--no-logs", "stop-on-cancel": "--no-stop-on-cancel",
                  "wait-auto-retry": "--no-wait-auto-retry"}  # default true
DEFAULT_ARTIFACTS_DIR = "dagu-artifacts"  # in the workspace, for actions/upload-artifact
POST_NAME = "dagu-ci-post"  # the action's post-entrypoint: a link to this file
SECRET_INPUTS = {"token": "DAGU_API_TOKEN", "password": "DAGU_PASSWORD"}
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


class InputError(Exception):
    pass


def read_input(env: Mapping[str, str], name: str) -> str:
    """GitHub upper-cases the name and keeps hyphens, so the key is not an identifier."""
    return env.get(f"INPUT_{name.upper()}", "").strip()


def read_flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = read_input(env, name).lower()
    if not value:
        return default
    if value in TRUE or value in FALSE:
        return value in TRUE
    raise InputError(f"input {name} must be true or false, not {value!r}")


def action_args(env: Mapping[str, str]) -> List[str]:
    """`dagu-ci run` arguments for the action's inputs."""
    dag = read_input(env, "dag")
    if not dag and not read_input(env, "spec"):
        raise InputError("input dag is required (the DAG's file name as Dagu lists it), or input spec")
    args = ["run", dag] if dag else ["run"]
    for name in VALUE_INPUTS:
        value = read_input(env, name)
        if name == "download-artifacts" and value.lower() in TRUE:
            value = os.path.join(env.get("GITHUB_WORKSPACE", "."), DEFAULT_ARTIFACTS_DIR)
        elif name == "download-artifacts" and value.lower() in FALSE:
            value = ""
        if value:
            args += [f"--{name}", value]
    args += [f"--{name}" for name in FLAG_INPUTS if read_flag(env, name, False)]
    args += [flag for name, flag in NEGATED_INPUTS.items() if not read_flag(env, name, True)]
    return args


def post_args(env: Mapping[str, str]) -> List[str]:
    """The action's post step: stop what a cancelled or failed main step left running."""
    args = ["stop", "--from-state"]
    for name in CONNECTION_INPUTS:
        value = read_input(env, name)
        if value:
            args += [f"--{name}", value]
    if read_flag(env, "insecure", False):
        args.append("--insecure")
    return args


def action_secrets(env: Mapping[str, str]) -> dict:
    return {var: read_input(env, name) for name, var in SECRET_INPUTS.items() if read_input(env, name)}


def is_action(env: Mapping[str, str]) -> bool:
    return env.get("GITHUB_ACTIONS") == "true" or "INPUT_DAG" in env


def cli_args(argv: List[str], env: Mapping[str, str], commands) -> Optional[List[str]]:
    """The CLI's arguments for this call, or None when argv is a command to exec."""
    if not argv:
        return action_args(env) if is_action(env) else []  # plain `docker run IMAGE`: the help
    if argv[0] == "dagu-ci":
        return argv[1:]
    if argv[0].startswith("-") or argv[0] in commands:
        return argv
    return None


def main(argv: List[str], program: str = "") -> None:
    from dagu_ci import cli

    post = os.path.basename(program) == POST_NAME
    try:
        if post:
            os.environ.update(action_secrets(os.environ))
            cli.main(post_args(os.environ))
            return
        args = cli_args(argv, os.environ, cli.cli.commands)
    except InputError as exc:
        # As the CLI's own errors: one line, and for the action's run the annotation and outputs.
        os.environ.update(action_secrets(os.environ))
        cli.learn_secrets([])  # the action's credentials, now in DAGU_* variables
        sys.exit(cli.fail(str(exc), 2, [] if post else ["run"]))
    if args is not None:
        if not argv:
            os.environ.update(action_secrets(os.environ))
        cli.main(args)
        return
    try:
        os.execvp(argv[0], argv)  # a command the image does not own: sh, bash, cat, ...
    except OSError as exc:
        print(f"dagu-ci: error: cannot run {argv[0]!r}: {exc.strerror}", file=sys.stderr)
        sys.exit(127)


if __name__ == "__main__":
    main(sys.argv[1:], sys.argv[0])
