"""DAG model and the scripting vocabulary for the fake's steps.

A step is a list of actions run in order by a background thread: write to stdout or
stderr, sleep, hold until the test releases it, fail, wait for approval, record an output. Text may use `{KEY}`
placeholders filled from the run's effective params (unknown keys stay as written).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

HANDLER_KEYS = ("onSuccess", "onFailure", "onAbort", "onExit")
_HANDLER_ALIASES = {"onCancel": "onAbort"}


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace `{KEY}` for known keys only, so braces in ordinary text survive."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


# -- actions -------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """Write text to a stream; `newline=False` leaves a partial line (raw()). Bytes are
    written as they are (half a UTF-8 character, say), without placeholders."""

    text: Union[str, bytes]
    stream: str = "stdout"
    newline: bool = True


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Hold:
    """Wait until the test calls `srv.release(gate)`; a stop interrupts it, as it does a
    sleep. For a test that acts "while the step runs": a sleep would race the test, a hold
    lasts as long as the test needs, however slow the machine is."""

    gate: str


@dataclass(frozen=True)
class Lines:
    """`count` lines from `template` ({i} is 1-based), written in one burst."""

    count: int
    template: str = "line {i}"
    stream: str = "stdout"


@dataclass(frozen=True)
class Fail:
    """End the step with a non-zero exit code; `attempts` limits it to those attempt numbers."""

    code: int = 1
    attempts: Optional[Tuple[int, ...]] = None


@dataclass(frozen=True)
class Approval:
    """Wait (node and run status 7) until approved (-> succeeded) or rejected (-> 8)."""


@dataclass(frozen=True)
class Output:
    """Record a step output, served by /outputs with its key camel-cased (API.md §9)."""

    key: str
    value: str


@dataclass(frozen=True)
class Call:
    """Run another DAG as sub-DAG runs (a `call:`/`run:` step; `parallel:` with `items`).

    One child per item (params from `params`, `{ITEM}` filled with the item; without
    `params`, the item itself), or one child with `params` when there are no items.
    `repeat` runs the call that many times (a repeat policy): earlier children move to
    `subRunsRepeated`. The step fails when a child fails (subruns.py)."""

    dag: str
    params: str = ""
    items: Optional[Tuple[str, ...]] = None
    repeat: int = 1


Action = Union[Write, Sleep, Hold, Lines, Fail, Approval, Output, Call]


def out(text: str) -> Write:
    return Write(text, "stdout")


def err(text: str) -> Write:
    return Write(text, "stderr")


def raw(text: Union[str, bytes], stream: str = "stdout") -> Write:
    return Write(text, stream, newline=False)


def sleep(seconds: float) -> Sleep:
    return Sleep(float(seconds))


def hold(gate: str) -> Hold:
    return Hold(str(gate))


def lines(count: int, template: str = "line {i}", stream: str = "stdout") -> Lines:
    return Lines(int(count), template, stream)


def fail(code: int = 1, attempts: Optional[Sequence[int]] = None) -> Fail:
    if code == 0:
        raise ValueError("fail() needs a non-zero exit code")
    return Fail(int(code), tuple(attempts) if attempts is not None else None)


def fail_on_attempt(*attempts: int, code: int = 1) -> Fail:
    """Fail only on the given attempt numbers (1 = first), e.g. for auto-retry tests."""
    return fail(code, attempts)


def call(dag: str, params: str = "", repeat: int = 1) -> Call:
    return Call(dag, params, None, int(repeat))


def parallel(dag: str, items: Sequence[str], params: str = "") -> Call:
    if not items:
        raise ValueError("parallel execution requires at least one item")
    return Call(dag, params, tuple(str(item) for item in items))


def approval() -> Approval:
    return Approval()


def output(key: str, value: str) -> Output:
    return Output(key, value)


# -- model ---------------------------------------------------------------------


@dataclass
class Step:
    name: str
    actions: List[Action] = field(default_factory=list)
    depends: List[str] = field(default_factory=list)
    continue_on_failure: bool = False
    # fail() actions only bite on attempts 1..fail_attempts (None: on every attempt).
    fail_attempts: Optional[int] = None
    command: Optional[str] = None  # shown as step.commands in the API; cosmetic

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a step needs a name")
        self.actions = list(self.actions)
        self.depends = list(self.depends)

    @property
    def is_approval(self) -> bool:
        return any(isinstance(a, Approval) for a in self.actions)

    def fails_on(self, action: Fail, attempt: int) -> bool:
        if action.attempts is not None and attempt not in action.attempts:
            return False
        return self.fail_attempts is None or attempt <= self.fail_attempts


@dataclass
class Dag:
    file: str
    steps: List[Step] = field(default_factory=list)
    name: Optional[str] = None  # the DAG name run endpoints use; defaults to file
    params: Dict[str, str] = field(default_factory=dict)  # declared defaults, in order
    log_output: str = "separate"  # or "merged": stdout and stderr share one .log file
    handlers: Dict[str, Step] = field(default_factory=dict)
    required_params: List[str] = field(default_factory=list)
    auto_retry_limit: Optional[int] = None  # DAG-level retryPolicy (v2.3.0+)
    auto_retry_delay: Optional[float] = 0.3  # None: the retry waits for srv.release_auto_retries()
    description: str = ""
    labels: List[str] = field(default_factory=list)
    schedule: List[str] = field(default_factory=list)  # cron expressions
    suspended: bool = False
    # Artifacts (2.5.0+): None = not enabled; else relative path -> content, written when
    # the run ends (lifecycle.py). {} = enabled, nothing written.
    artifacts: Optional[Dict[str, Union[str, bytes]]] = None
    # Typed params (served as `paramDefs` from 2.5.0): ParamDef dicts such as
    # {"name": "COUNT", "type": "integer", "minimum": 1}. Their names belong in `params` too.
    param_defs: List[Dict[str, Any]] = field(default_factory=list)
    # A distributed run (Dagu's workerSelector): the workerId its details carry; from 2.0,
    # step logs that reach the server in bursts, as 2.6.5's coordinator writes them for a
    # worker without shared storage (logs.py); before, written as a local run's.
    worker: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.file:
            raise ValueError("a DAG needs a file name")
        if self.name is None:
            self.name = self.file
        if self.log_output not in ("separate", "merged"):
            raise ValueError("log_output must be 'separate' or 'merged'")
        self.steps = list(self.steps)
        self.params = {str(k): "" if v is None else str(v) for k, v in dict(self.params).items()}
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate step names in DAG {self.name}: {names}")
        for step in self.steps:
            missing = [d for d in step.depends if d not in names]
            if missing:
                raise ValueError(f"step {step.name} depends on unknown steps {missing}")
        handlers: Dict[str, Step] = {}
        for key, step in dict(self.handlers).items():
            key = _HANDLER_ALIASES.get(key, key)
            if key not in HANDLER_KEYS:
                raise ValueError(f"unknown handler {key!r}; use one of {HANDLER_KEYS}")
            handlers[key] = step
        self.handlers = handlers
        if self.auto_retry_limit is not None and self.auto_retry_limit < 1:
            raise ValueError("auto_retry_limit must be >= 1 or None")

    @property
    def dag_name(self) -> str:
        assert self.name is not None
        return self.name

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)
