"""Exit codes and the errors that carry them to the CLI."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    SUCCEEDED = 0
    FAILED = 1
    USAGE = 2
    ABORTED = 3
    SERVER = 4
    ACTIVE = 5  # `status`: the run is still running, queued or waiting
    NO_RUN = 6  # `status`: the DAG has no such run (or never ran)
    TIMEOUT = 124
    OUTPUT_CLOSED = 141  # stdout's reader went away: 128 + SIGPIPE, as a shell shows a process killed by it
    SIGINT = 130
    SIGTERM = 143


class DaguCIError(Exception):
    """An error the user should see as one line, with a defined exit code."""

    exit_code = ExitCode.SERVER

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UsageError(DaguCIError):
    """Bad input: option, param, unknown DAG, refused credentials, not a Dagu URL."""

    exit_code = ExitCode.USAGE


class ServerError(DaguCIError):
    """The server could not be reached, or answered with an error after retries."""

    exit_code = ExitCode.SERVER


class MalformedAnswer(ServerError):
    """An answer that is not what the API documents: not JSON, the wrong shape, too large.

    Once the server has been identified as Dagu, the client retries these like a 503.
    """


class NoRun(DaguCIError):
    """The DAG exists but has no such run (`status` exits 6 on it: a monitor's "never ran")."""

    exit_code = ExitCode.NO_RUN


class Cancelled(BaseException):
    """Raised in the main thread by the SIGINT/SIGTERM handler.

    A BaseException so that no `except Exception` on the way up swallows it.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class OutputClosed(BaseException):
    """stdout's reader went away (`dagu-ci run x | head`): a cancellation, raised where the
    run's lifecycle looks (each poll), never from inside a write."""


class TimedOut(BaseException):
    """The run did not end within --timeout."""


class PolicyEnd(BaseException):
    """A policy ends the follow early (e.g. --on-waiting fail, --queue-timeout)."""

    def __init__(self, message: str, exit_code: int, stop_run: bool, ending: str):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.stop_run = stop_run
        self.ending = ending
