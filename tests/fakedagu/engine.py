"""Run execution: attempts, step threads, status rules, queue, stop, approval, retries.

Everything that changes run state holds `Engine.lock`; waiters use `Engine.changed`.
Step threads write real files through `LogWriter`; a single flusher thread flushes
all open writers every 500 ms, like Dagu's per-node output flusher.

What a test must not race, it can hold: a step's `hold(gate)` until `release(gate)`, a
queued run until `release_queue()` (queue_delay None), a stop until `deliver_stops()`
(stop_delay None), an auto-retry until `release_auto_retries()` (auto_retry_delay None),
a run's last status write until `release_finalize()` (finalize_delay None), and the flusher
while `flushes_paused` is set.

The end of a run, as Dagu's agent writes it (runtime/agent/agent.go and runner.go, v1.30.3 and
v2.6.5; watched on a real 1.30.3):
1. the last step's end is written with the run's status already terminal (handlers are not
   steps), and without `finishedAt`;
2. the handlers run; each is written only once it has ended (never as running), and a failed
   one turns a succeeded run failed;
3. the outputs, then the last write: `finishedAt`, and an auto-retry scheduled after it.
   `finalize_delay` is the time from the last handler's end (or the last step's) to that
   write: about 10 ms on a real 1.30.3 (0.01 s here).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Callable, Dict, Iterable, List, Optional, Set, Tuple, Union

from .dags import HANDLER_KEYS, Approval, Call, Dag, Fail, Hold, Lines, Output, Sleep, Step, Write, fill
from .logs import LogWriter, WorkerLogWriter
from .params import ResolvedParams
from .versions import ACTIVE_STATUSES, TERMINAL_STATUSES, ServerVersion

FLUSH_INTERVAL = 0.5
FINALIZE_DELAY = 0.01  # last step or handler end -> the last status write, on a real 1.30.3


def rfc3339(moment: Optional[float] = None) -> str:
    """time.RFC3339 as Go prints it: second precision, local offset, Z for UTC."""
    text = datetime.fromtimestamp(time.time() if moment is None else moment).astimezone().isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def uuid7() -> str:
    """A UUIDv7, as GenDAGRunID makes when the client gives no dagRunId."""
    millis = int(time.time() * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis << 80) | (0x7 << 76) | ((rand >> 64) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def camel_key(key: str) -> str:
    """ScreamingSnakeToCamel: output names as /outputs reports them."""
    parts = [p.lower() for p in key.split("_") if p]
    return (parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])) if parts else ""


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _stamp() -> str:
    now = time.time()
    return time.strftime("%Y%m%d.%H%M%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"


@dataclass
class NodeState:
    step: Step
    status: int = 0
    started_at: str = "-"  # exec.NewNodeFromStep: "-" until the step starts
    finished_at: str = "-"
    stdout: str = ""  # paths are assigned when the step starts
    stderr: str = ""
    error: str = ""
    retry_count: int = 0
    done_count: int = 0
    approved_at: str = ""
    rejected_at: str = ""
    exit_code: Optional[int] = None
    sub_runs: List[Tuple[str, str, str]] = field(default_factory=list)  # (dagRunId, params, dagName)
    sub_runs_repeated: List[Tuple[str, str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.step.name


@dataclass
class Attempt:
    number: int  # 1 for the first attempt
    attempt_id: str
    trigger_type: str
    directory: str
    nodes: "OrderedDict[str, NodeState]"
    handlers: "OrderedDict[str, NodeState]"
    status: int = 0
    started_at: str = ""
    finished_at: str = ""
    log_file: str = ""
    outputs: Dict[str, str] = field(default_factory=dict)
    auto_retry_count: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    canceled: bool = False
    finished: bool = False  # the agent's last status write is done
    steps_done: bool = False  # every step has ended (handlers may still run)
    active_steps: int = 0
    decisions: Dict[str, str] = field(default_factory=dict)  # step -> "approve" | "reject"

    def node(self, name: str) -> Optional[NodeState]:
        if name in self.nodes:
            return self.nodes[name]
        for key, node in self.handlers.items():
            if name in (key, node.name):
                return node
        return None


class Run:
    """One dagRunId of one DAG name. Its status is its latest attempt's status."""

    def __init__(
        self,
        dag: Dag,
        name: str,
        run_id: str,
        params: ResolvedParams,
        labels: List[str],
        queued: bool,
    ):
        self.dag = dag
        self.name = name
        self.run_id = run_id
        self.resolved = params
        self.labels = list(labels)
        self.attempts: List[Attempt] = []
        self.queued_at = rfc3339() if queued else ""
        self.created_monotonic = time.monotonic()
        self.created_wall = time.time()  # the day it is filed under (the run list's default window)
        self.finished_at_monotonic: Optional[float] = None
        self.status_history: List[Tuple[float, int]] = []
        self.auto_retry_limit = dag.auto_retry_limit
        self.retry_pending = False
        self.retry_timer: Optional[threading.Timer] = None
        self.queue_release = threading.Event()
        # Sub-DAG runs (subruns.py): stored under the root run, found by id from the root.
        self.root: "Run" = self
        self.parent: Optional["Run"] = None
        self.sub_runs: "OrderedDict[str, Run]" = OrderedDict()  # on the root only

    # -- what tests inspect ---------------------------------------------------
    @property
    def params(self) -> str:
        """The params string exactly as the start/enqueue request sent it."""
        return self.resolved.raw

    @property
    def parsed_params(self) -> Dict[str, str]:
        """What the server understood from that string alone (positional keys "1", "2"...)."""
        return dict(self.resolved.received)

    @property
    def effective_params(self) -> Dict[str, str]:
        return dict(self.resolved.effective)

    @property
    def attempt(self) -> Attempt:
        return self.attempts[-1]

    @property
    def status(self) -> int:
        return self.attempt.status

    @property
    def nodes(self) -> List[NodeState]:
        return list(self.attempt.nodes.values())

    @property
    def outputs(self) -> Dict[str, str]:
        return dict(self.attempt.outputs)

    @property
    def auto_retry_count(self) -> int:
        return self.attempt.auto_retry_count

    def node(self, name: str) -> NodeState:
        found = self.attempt.node(name)
        if found is None:
            raise KeyError(name)
        return found

    def __repr__(self) -> str:
        return f"<Run {self.name}/{self.run_id} status={self.status} attempts={len(self.attempts)}>"


class Engine:
    def __init__(
        self,
        version: ServerVersion,
        log_root: str,
        stop_delay: Optional[float] = 0.1,
        env: Optional[Dict[str, str]] = None,
        finalize_delay: Optional[float] = FINALIZE_DELAY,
    ):
        self.version = version
        self.log_root = log_root
        self.stop_delay = stop_delay  # None: stops wait for deliver_stops()
        self.finalize_delay = finalize_delay  # None: the last status write waits for release_finalize()
        self.midnight: Optional[float] = None  # set by midnight_passes(): runs before it are yesterday's
        self._finalize_released = threading.Event()
        self.env = dict(env or {})
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._runs: "OrderedDict[Tuple[str, str], Run]" = OrderedDict()
        self._writers: List[LogWriter] = []
        self._writers_lock = threading.Lock()
        self._closing = threading.Event()
        self._threads: List[threading.Thread] = []
        self._released_gates: Set[str] = set()
        self._holding: Dict[str, int] = {}  # gate -> steps waiting at it now
        self._pending_stops: List[Callable[[], None]] = []
        self.dags: Dict[str, Dag] = {}  # by file name: what `call` steps run (FakeDagu's)
        self.sub_record_gate: Optional[str] = None  # a child's record waits at this gate (subruns.py)
        self.flushes_paused = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="fakedagu-flusher", daemon=True)
        self._flusher.start()

    # -- lookup ----------------------------------------------------------------
    def find(self, name: str, run_id: str) -> Optional[Run]:
        with self.lock:
            return self._runs.get((name, run_id))

    def latest(self, name: str) -> Optional[Run]:
        with self.lock:
            for run in reversed(self._runs.values()):
                if run.name == name:
                    return run
        return None

    def day_start(self) -> float:
        """Where "today" began for the run list's default window: UTC midnight, or the moment
        the test made midnight pass (midnight_passes)."""
        if self.midnight is not None:
            return self.midnight
        return time.time() // 86400 * 86400

    def all_runs(self) -> List[Run]:
        with self.lock:
            return list(self._runs.values())

    def runs_of(self, name: str) -> List[Run]:
        with self.lock:
            return [r for r in self._runs.values() if name in (r.name, r.dag.file)]

    def alive_runs(self, name: str) -> List[Run]:
        """Runs with an agent process (running), as procStore counts them for singleton."""
        with self.lock:
            return [r for r in self._runs.values() if r.name == name and r.status == 1]

    def queued_runs(self, name: str) -> List[Run]:
        with self.lock:
            return [r for r in self._runs.values() if r.name == name and r.status == 5]

    # -- creation --------------------------------------------------------------
    def create_run(
        self,
        dag: Dag,
        name: str,
        run_id: str,
        params: ResolvedParams,
        labels: List[str],
        enqueue: bool,
        queue_delay: Optional[float],
    ) -> Run:
        with self.changed:
            run = Run(dag, name, run_id, params, labels, queued=enqueue)
            self._runs[(name, run_id)] = run
            attempt = self._new_attempt(run, "manual", auto_retry_count=0)
            if enqueue:
                if not self.version.at_least(2, 0, 0):
                    # 1.x (checked on 1.30.3): the enqueue writes a status with its log path.
                    attempt.log_file = os.path.join(
                        attempt.directory, f"{_safe_name(run.name)}.{_stamp()}.{run.run_id[:8]}.log"
                    )
                self._set_status(run, attempt, 5)
                self._spawn(self._wait_in_queue, run, queue_delay, name=f"queue-{run_id}")
            else:
                self._begin(run, attempt)
            return run

    def _new_attempt(self, run: Run, trigger: str, auto_retry_count: int) -> Attempt:
        number = len(run.attempts) + 1
        directory = os.path.join(self.log_root, _safe_name(run.name), _safe_name(run.run_id), f"attempt_{number}")
        os.makedirs(directory, exist_ok=True)
        nodes = OrderedDict((s.name, NodeState(s)) for s in run.dag.steps)
        handlers = OrderedDict((k, NodeState(run.dag.handlers[k])) for k in HANDLER_KEYS if k in run.dag.handlers)
        attempt = Attempt(
            number=number,
            attempt_id=uuid.uuid4().hex[:12],
            trigger_type=trigger,
            directory=directory,
            nodes=nodes,
            handlers=handlers,
            auto_retry_count=auto_retry_count,
        )
        run.attempts.append(attempt)
        return attempt

    def _begin(self, run: Run, attempt: Attempt) -> None:
        """Start an attempt's agent: status 1 at once, so /start can answer (API.md §3.5)."""
        attempt.started_at = rfc3339()
        attempt.log_file = attempt.log_file or os.path.join(
            attempt.directory, f"{_safe_name(run.name)}.{_stamp()}.{run.run_id[:8]}.log"
        )
        if not self.version.at_least(2, 0, 0):
            # 1.x (checked on 1.30.3): once the agent runs, nodes not started show "", not "-".
            for node in list(attempt.nodes.values()) + list(attempt.handlers.values()):
                if node.status == 0:
                    node.started_at = node.finished_at = ""
        with open(attempt.log_file, "a", encoding="utf-8") as handle:
            handle.write(f'time={attempt.started_at} level=INFO msg="DAG run started" dagRunId={run.run_id}\n')
        self._set_status(run, attempt, 1)
        self._spawn(self._execute, run, attempt, name=f"run-{run.run_id}-{attempt.number}")

    # -- the agent ---------------------------------------------------------------
    def _execute(self, run: Run, attempt: Attempt) -> None:
        while True:
            with self.changed:
                if not attempt.canceled:
                    self._start_ready(run, attempt)
                if attempt.active_steps == 0:
                    break
                self.changed.wait(0.2)
        with self.changed:
            outcome = self._compute_status(attempt, final=True)
            attempt.steps_done = True
            self._refresh(run, attempt)  # already terminal: handlers are not steps
        for key in self._handlers_for(outcome):
            node = attempt.handlers.get(key)
            if node is not None:
                self._run_handler(run, attempt, node, key)
        self._await_finalize()
        with self.changed:
            outcome = self._status_now(attempt, final=True)
            attempt.finished = True
            attempt.finished_at = rfc3339()
            self._log(attempt, f'msg="DAG run finished" status={outcome}')
            self._set_status(run, attempt, outcome, final=True)
            if outcome == 2 and self._auto_retry_due(run, attempt):
                self._schedule_auto_retry(run)

    def _run_handler(self, run: Run, attempt: Attempt, node: NodeState, key: str) -> None:
        """Nothing is written when a handler starts: it shows as not started until it has ended."""
        work = NodeState(node.step)
        with self.changed:
            self._prepare_node(run, attempt, work, key)
            attempt.active_steps += 1
        self._run_step(run, attempt, work, cancel=None)
        with self.changed:
            for item in fields(NodeState):
                setattr(node, item.name, getattr(work, item.name))
            self._refresh(run, attempt)

    def _await_finalize(self) -> None:
        if self.finalize_delay is None:
            while not self._finalize_released.wait(0.05) and not self._closing.is_set():
                pass
        elif self.finalize_delay > 0:
            self._closing.wait(self.finalize_delay)

    def release_finalize(self) -> None:
        """Let every run held before its last status write (finalize_delay None) write it."""
        self._finalize_released.set()

    @staticmethod
    def _handlers_for(status: int) -> List[str]:
        first = {4: "onSuccess", 6: "onSuccess", 2: "onFailure", 8: "onFailure", 3: "onAbort"}.get(status)
        return ([first] if first else []) + ["onExit"]

    def _start_ready(self, run: Run, attempt: Attempt) -> None:
        """isReady() from runtime/runner.go, repeated until nothing changes."""
        progress = True
        while progress:
            progress = False
            for node in attempt.nodes.values():
                if node.status != 0:
                    continue
                verdict = self._readiness(attempt, node)
                if verdict == "wait":
                    continue
                progress = True
                if verdict == "start":
                    self._prepare_node(run, attempt, node, node.name)
                    attempt.active_steps += 1
                    self._spawn(self._run_step, run, attempt, node, attempt.cancel, name=f"step-{node.name}")
        self._refresh(run, attempt)

    @staticmethod
    def _readiness(attempt: Attempt, node: NodeState) -> str:
        for dep_name in node.step.depends:
            dep = attempt.nodes[dep_name]
            if dep.status in (4, 6):
                continue
            if dep.status == 2:
                if dep.step.continue_on_failure:
                    continue
                node.status, node.error = 3, "upstream failed"
                return "aborted"
            if dep.status == 5:
                node.status, node.error = 5, "upstream skipped"
                return "skipped"
            if dep.status == 3:
                node.status = 3
                return "aborted"
            if dep.status == 8:
                node.status, node.error = 3, "upstream rejected"
                return "aborted"
            return "wait"  # not started, running, waiting or retrying
        return "start"

    def _prepare_node(self, run: Run, attempt: Attempt, node: NodeState, label: str) -> None:
        base = os.path.join(attempt.directory, f"{_safe_name(label)}.{_stamp()}.{run.run_id[:8]}")
        if run.dag.log_output == "merged":
            node.stdout = node.stderr = base + ".log"
        else:
            node.stdout, node.stderr = base + ".out", base + ".err"
        node.status = 1
        node.started_at = rfc3339()
        node.finished_at = ""
        node.error = ""
        self._log(attempt, f'msg="Step started" step={node.name}')

    def _run_step(self, run: Run, attempt: Attempt, node: NodeState, cancel: Optional[threading.Event]) -> None:
        step = node.step
        values = dict(run.resolved.effective)
        # 1.x workers write the server's files themselves (shared storage), like a local run.
        remote = bool(run.dag.worker) and self.version.at_least(2, 0, 0)
        stdout = self._open_writer(node.stdout, remote)
        stderr = stdout if node.stderr == node.stdout else self._open_writer(node.stderr, remote)
        outcome, code = "ok", 0
        try:
            for action in step.actions:
                if cancel is not None and cancel.is_set():
                    outcome = "aborted"
                    break
                if isinstance(action, Write):
                    writer = stderr if action.stream == "stderr" else stdout
                    if isinstance(action.text, bytes):
                        writer.write_bytes(action.text + (b"\n" if action.newline else b""))
                    else:
                        writer.write(fill(action.text, values) + ("\n" if action.newline else ""))
                elif isinstance(action, Lines):
                    writer = stderr if action.stream == "stderr" else stdout
                    template = fill(action.template, values)
                    writer.write("".join(template.replace("{i}", str(i)) + "\n" for i in range(1, action.count + 1)))
                elif isinstance(action, Sleep):
                    if cancel is not None:
                        if cancel.wait(action.seconds):
                            outcome = "aborted"
                            break
                    else:
                        time.sleep(action.seconds)
                elif isinstance(action, Hold):
                    if not self.hold(action.gate, cancel):
                        outcome = "aborted"
                        break
                elif isinstance(action, Fail):
                    if step.fails_on(action, attempt.number):
                        outcome, code = "failed", action.code
                        break
                elif isinstance(action, Approval):
                    stdout.flush()
                    stderr.flush()
                    outcome = self._await_decision(run, attempt, node, cancel)
                    break
                elif isinstance(action, Output):
                    with self.lock:
                        attempt.outputs[camel_key(action.key)] = fill(action.value, values)
                elif isinstance(action, Call):
                    from .subruns import run_call

                    outcome, code = run_call(self, run, node, action, values, cancel, stdout)
                    if outcome != "ok":
                        break
        finally:
            # Dagu flushes and closes the outputs before it records the node's final state.
            for writer in {id(stdout): stdout, id(stderr): stderr}.values():
                self._close_writer(writer)
        with self.changed:
            if outcome == "ok" and cancel is not None and cancel.is_set():
                outcome = "aborted"
            node.finished_at = rfc3339()
            if outcome == "failed":
                node.status, node.exit_code, node.error = 2, code, f"exit status {code}"
            elif outcome == "aborted":
                node.status = 3
                if not self.version.at_least(2, 0, 0) and node.started_at not in ("", "-"):
                    node.error = "signal: terminated"  # 1.x (checked on 1.30.3)
            elif outcome == "rejected":
                node.status = 8
                node.rejected_at = node.rejected_at or rfc3339()
            else:
                node.status, node.exit_code = 4, 0
            if node.status != 3:
                node.done_count += 1
            attempt.active_steps -= 1
            self._log(attempt, f'msg="Step finished" step={node.name} status={node.status}')
            self._refresh(run, attempt)
            self.changed.notify_all()  # wake the attempt's scheduler even if the run status held

    def hold(self, gate: str, cancel: Optional[threading.Event]) -> bool:
        """Wait at `gate` until it is released (True) or the run is stopped (False)."""
        with self.changed:
            self._holding[gate] = self._holding.get(gate, 0) + 1
            self.changed.notify_all()
            try:
                while gate not in self._released_gates:
                    if (cancel is not None and cancel.is_set()) or self._closing.is_set():
                        return False
                    self.changed.wait(0.1)
                return True
            finally:
                self._holding[gate] -= 1

    def release(self, gate: str) -> None:
        """Open `gate` for good: steps holding there go on, later ones pass straight through."""
        with self.changed:
            self._released_gates.add(gate)
            self.changed.notify_all()

    def holding(self, gate: str) -> int:
        with self.lock:
            return self._holding.get(gate, 0)

    def _await_decision(self, run: Run, attempt: Attempt, node: NodeState, cancel: Optional[threading.Event]) -> str:
        with self.changed:
            node.status = 7
            self._refresh(run, attempt)
            while True:
                decision = attempt.decisions.get(node.name)
                if decision == "approve":
                    return "approved"
                if decision == "reject":
                    return "rejected"
                if cancel is not None and cancel.is_set():
                    return "aborted"
                self.changed.wait(0.1)

    # -- status rules ------------------------------------------------------------
    @staticmethod
    def _compute_status(attempt: Attempt, final: bool) -> int:
        """Runner.Status() from runtime/runner.go (handlers are not part of the plan)."""
        nodes = list(attempt.nodes.values())
        statuses = [n.status for n in nodes]
        if attempt.canceled and not all(s in (4, 5, 6) for s in statuses):
            return 3
        if 1 in statuses:
            return 1
        if 8 in statuses:
            return 8
        if 7 in statuses:
            return 7
        if 0 in statuses and not final:
            return 1
        plain_failure = any(n.status == 2 and not n.step.continue_on_failure for n in nodes)
        soft_failure = any((n.status == 2 and n.step.continue_on_failure) or n.status == 6 for n in nodes)
        succeeded = any(s in (4, 6) for s in statuses)
        if not plain_failure and soft_failure and succeeded:
            return 6
        if 2 in statuses:
            return 2
        return 4

    def _status_now(self, attempt: Attempt, final: bool) -> int:
        """The status a write carries: a failed handler turns a succeeded run failed (lastError)."""
        status = self._compute_status(attempt, final)
        if status == 4 and any(h.status == 2 for h in attempt.handlers.values()):
            return 2
        return status

    def _refresh(self, run: Run, attempt: Attempt) -> None:
        if attempt.finished or attempt.status in (0, 5) or attempt is not run.attempt:
            return
        # Terminal once every step has ended, handlers or not; finishedAt waits for the last write.
        self._set_status(run, attempt, self._status_now(attempt, final=attempt.steps_done))

    def _set_status(self, run: Run, attempt: Attempt, status: int, final: bool = False) -> None:
        """`final`: the agent's last write (finishedAt): only then has the run ended."""
        now = time.monotonic()
        if attempt.status != status or not run.status_history:
            attempt.status = status
            run.status_history.append((now, status))
        pending = status == 2 and run.retry_pending
        if final and status in TERMINAL_STATUSES and not pending:
            run.finished_at_monotonic = now
        elif status in ACTIVE_STATUSES:
            run.finished_at_monotonic = None
        self.changed.notify_all()

    # -- DAG-level auto retry (v2.3.0+) ---------------------------------------------
    def _auto_retry_due(self, run: Run, attempt: Attempt) -> bool:
        limit = run.auto_retry_limit
        return bool(self.version.has_auto_retry and limit and attempt.auto_retry_count < limit)

    def _schedule_auto_retry(self, run: Run) -> None:
        run.retry_pending = True
        run.finished_at_monotonic = None
        if run.dag.auto_retry_delay is None:
            return  # held: release_auto_retries() starts it
        timer = threading.Timer(run.dag.auto_retry_delay, self._auto_retry, args=(run,))
        timer.daemon = True
        run.retry_timer = timer
        timer.start()

    def _auto_retry(self, run: Run) -> None:
        with self.changed:
            if not run.retry_pending or self._closing.is_set():
                return
            run.retry_pending = False
            count = run.attempt.auto_retry_count + 1
            attempt = self._new_attempt(run, "retry", auto_retry_count=count)
            self._begin(run, attempt)

    def release_auto_retries(self) -> None:
        """Start every auto-retry that is due now (those with auto_retry_delay None wait for this)."""
        for run in self.all_runs():
            self._auto_retry(run)

    # -- operations the API triggers -----------------------------------------------
    def stop(self, run: Run) -> None:
        """Asynchronous, like a signal to the agent: steps abort after `stop_delay`."""
        with self.changed:
            if run.retry_pending:
                # A failed run waiting for its auto-retry: cancel the retry, mark it aborted.
                run.retry_pending = False
                if run.retry_timer is not None:
                    run.retry_timer.cancel()
                self._set_status(run, run.attempt, 3, final=True)
                return
            attempt = run.attempt

        def signal() -> None:
            with self.changed:
                attempt.canceled = True
                attempt.cancel.set()
                self.changed.notify_all()

        if self.stop_delay is None:
            with self.lock:
                self._pending_stops.append(signal)
            return
        timer = threading.Timer(self.stop_delay, signal)
        timer.daemon = True
        timer.start()

    def deliver_stops(self) -> None:
        """Signal the agents of every stop requested so far (stop_delay None holds them)."""
        with self.lock:
            pending, self._pending_stops = self._pending_stops, []
        for signal in pending:
            signal()

    def decide(self, run: Run, step: str, decision: str) -> None:
        with self.changed:
            attempt = run.attempt
            node = attempt.nodes[step]
            if decision == "approve":
                node.approved_at = rfc3339()
            else:
                node.rejected_at = rfc3339()
            attempt.decisions[step] = decision
            self.changed.notify_all()

    def dequeue(self, run: Run) -> None:
        with self.changed:
            attempt = run.attempt
            attempt.finished = True
            attempt.finished_at = rfc3339()
            self._set_status(run, attempt, 3, final=True)
            run.queue_release.set()
            if len(run.attempts) == 1:
                # Dagu hides the aborted attempt, and a run left with no attempt that ran is
                # removed (cmd/dequeue.go, every tag): it is not found any more.
                self._runs.pop((run.name, run.run_id), None)

    def release_queue(self) -> None:
        with self.lock:
            for run in self._runs.values():
                if run.status == 5:
                    run.queue_release.set()

    def _wait_in_queue(self, run: Run, delay: Optional[float]) -> None:
        released = run.queue_release.wait(delay)  # None: until released or dequeued
        with self.changed:
            if self._closing.is_set() or run.status != 5:
                return
            if not released and delay is None:
                return
            self._begin(run, run.attempt)

    def retry(self, run: Run, step: str = "") -> bool:
        """A new attempt of a finished run (same dagRunId, new log paths). False if active.

        With `step` (`dagu retry --step`), only that step runs again; the others keep
        their previous results and log files.
        """
        with self.changed:
            if run.status in ACTIVE_STATUSES or run.retry_pending or not run.attempt.finished:
                return False
            previous = run.attempt
            attempt = self._new_attempt(run, "retry", auto_retry_count=previous.auto_retry_count)
            if not self.version.at_least(2, 0, 0):
                attempt.log_file = previous.log_file  # 1.x (checked on 1.30.3): the run keeps its log
            if step:
                for name, node in attempt.nodes.items():
                    if name != step:
                        old = previous.nodes[name]
                        # The whole node state carries over (1.30.3 setupRetryPlan), its sub-runs too.
                        for key in (
                            "status",
                            "started_at",
                            "finished_at",
                            "stdout",
                            "stderr",
                            "error",
                            "exit_code",
                            "sub_runs",
                            "sub_runs_repeated",
                        ):
                            setattr(node, key, list(getattr(old, key)) if key.startswith("sub_") else getattr(old, key))
            self._begin(run, attempt)
            return True

    # -- waiting -----------------------------------------------------------------
    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.changed.wait(min(remaining, 0.1))
            return True

    # -- files -------------------------------------------------------------------
    def _open_writer(self, path: str, remote: bool = False) -> Union[LogWriter, WorkerLogWriter]:
        writer = WorkerLogWriter(path) if remote else LogWriter(path)
        with self._writers_lock:
            self._writers.append(writer)
        return writer

    def _close_writer(self, writer: LogWriter) -> None:
        writer.close()
        with self._writers_lock:
            if writer in self._writers:
                self._writers.remove(writer)

    def _flush_loop(self) -> None:
        # Each node has its own 500 ms ticker in Dagu, started with the step; so flushes
        # happen at step start + 0.5 s, + 1.0 s, ... whatever the other steps do.
        while not self._closing.wait(0.02):
            if self.flushes_paused.is_set():
                continue
            now = time.monotonic()
            with self._writers_lock:
                due = [w for w in self._writers if now >= w.next_flush]
            for writer in due:
                writer.flush()
                writer.next_flush += FLUSH_INTERVAL

    def _log(self, attempt: Attempt, message: str) -> None:
        if attempt.log_file:
            with open(attempt.log_file, "a", encoding="utf-8") as handle:
                handle.write(f"time={rfc3339()} level=INFO {message}\n")

    def _spawn(self, target: Callable, *args: object, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=f"fakedagu-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    # -- shutdown ------------------------------------------------------------------
    def shutdown(self, timeout: float = 2.0) -> None:
        """Abort everything still running and wait briefly for the threads to end."""
        with self.changed:
            self._closing.set()
            for run in self._runs.values():
                if run.retry_timer is not None:
                    run.retry_timer.cancel()
                run.queue_release.set()
                for attempt in run.attempts:
                    attempt.canceled = True
                    attempt.cancel.set()
                    for node in attempt.nodes.values():
                        if node.status == 7:
                            attempt.decisions.setdefault(node.name, "reject")
            self.changed.notify_all()
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._writers_lock:
            writers = list(self._writers)
        for writer in writers:
            writer.close()


def iter_nodes(attempt: Attempt) -> Iterable[NodeState]:
    yield from attempt.nodes.values()
    yield from attempt.handlers.values()
