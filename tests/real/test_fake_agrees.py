"""The fake agrees with real Dagu (issue 11 item 4): the same scripted DAGs and the same
HTTP calls on both servers, and the answers compared by SHAPE.

A shape keeps, recursively, every key, the JSON type of every value, and the values a client
acts on exactly (HTTP status, run/node `status` ints and labels, error `code` and message, the
log paging numbers and text). Values that naturally differ between two servers (timestamps,
paths, ids, pids) are compared by their format only: an RFC 3339 time, "", "-", a path.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
import requests

from tests.fakedagu import Dag, FakeDagu, Step, err, fail, lines, out, output, sleep
from tests.real import test_real_run as real_run  # the same DAG texts as the real suite

# -- the shape comparison --------------------------------------------------------------------

# Values a client acts on: compared exactly.
EXACT_KEYS = {
    "status",
    "statusLabel",
    "code",
    "message",
    "hasMore",
    "isEstimate",
    "lineCount",
    "totalLines",
    "content",
    "name",
    "dagRunId",
    "retryCount",
    "doneCount",
    "exitCode",
    "outputs",
    "type",
    "logKept",
    "stdoutKept",  # the derived "retry keeps" answer
}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _string_format(text: str) -> str:
    if text in ("", "-"):
        return repr(text)
    if RFC3339.match(text):
        return "<rfc3339>"
    if text.startswith("/"):
        return "<path>"
    return "<str>"


def shape(value: Any, key: str = "") -> Any:
    """A comparable picture of an answer: exact where a client acts on the value, else its type."""
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v, key) for v in value]
    if key in EXACT_KEYS:
        return value
    if isinstance(value, bool):
        return "<bool>"
    if isinstance(value, (int, float)):
        return "<number>"
    if isinstance(value, str):
        return _string_format(value)
    return value  # None


def shape_differences(real: Any, fake: Any, path: str = "$") -> List[str]:
    """Every place where two shapes disagree, in document order (the first is the first)."""
    if isinstance(real, dict) and isinstance(fake, dict):
        found: List[str] = []
        for key in sorted(set(real) - set(fake)):
            found.append(f"{path}.{key}: only in real ({real[key]!r})")
        for key in sorted(set(fake) - set(real)):
            found.append(f"{path}.{key}: only in fake ({fake[key]!r})")
        for key in [k for k in real if k in fake]:
            found += shape_differences(real[key], fake[key], f"{path}.{key}")
        return found
    if isinstance(real, list) and isinstance(fake, list):
        if len(real) != len(fake):
            return [f"{path}: {len(real)} items in real, {len(fake)} in fake"]
        return [d for index, (r, f) in enumerate(zip(real, fake)) for d in shape_differences(r, f, f"{path}[{index}]")]
    if real != fake or type(real) is not type(fake):
        return [f"{path}: real {real!r}, fake {fake!r}"]
    return []


@dataclass
class Answer:
    call: str  # e.g. "GET /dag-runs/ok/r1"
    status: int
    body: Any

    def shape(self) -> Any:
        return {"http": self.status, "body": shape(self.body)}


def assert_same_shapes(real: List[Answer], fake: List[Answer]) -> None:
    assert [a.call for a in real] == [a.call for a in fake], "the two drives made different calls"
    problems = []
    for r, f in zip(real, fake):
        for difference in shape_differences(r.shape(), f.shape()):
            problems.append(f"{r.call}: {difference}")
    assert not problems, "the fake disagrees with real Dagu:\n" + "\n".join(problems)


def test_shape_differences_name_the_first_disagreement():
    real = {"a": 1, "nodes": [{"status": 4, "startedAt": "2024-01-01T00:00:00Z"}]}
    fake = {"a": "1", "nodes": [{"status": 2, "startedAt": ""}]}
    assert shape_differences(shape(real), shape(fake)) == [
        "$.a: real '<number>', fake '<str>'",
        "$.nodes[0].status: real 4, fake 2",
        "$.nodes[0].startedAt: real '<rfc3339>', fake \"''\"",
    ]
    assert shape_differences(shape({"x": "2025-05-05T10:00:00+02:00"}), shape({"x": "2024-01-01T00:00:00Z"})) == []


# -- driving a server ------------------------------------------------------------------------


class Client:
    """Plain HTTP against one server's API, recording every answer."""

    def __init__(self, api: str):
        self.api = api
        self.answers: List[Answer] = []

    def call(self, method: str, path: str, record: bool = True, **kwargs: Any) -> Answer:
        response = requests.request(method, self.api + path, timeout=30, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        answer = Answer(
            f"{method} {path}" + (f" {kwargs.get('params')}" if kwargs.get("params") else ""),
            response.status_code,
            body,
        )
        if record:
            self.answers.append(answer)
        return answer

    def get(self, path: str, **kwargs: Any) -> Answer:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Optional[Dict[str, Any]] = None, **kwargs: Any) -> Answer:
        return self.call("POST", path, json=body if body is not None else {}, **kwargs)

    def details(self, name: str, run_id: str) -> Dict[str, Any]:
        return self.call("GET", f"/dag-runs/{name}/{run_id}", record=False).body.get("dagRunDetails", {})

    def wait_status(self, name: str, run_id: str, wanted: Tuple[int, ...], within: float = 120) -> None:
        deadline = time.monotonic() + within
        while True:
            answer = self.call("GET", f"/dag-runs/{name}/{run_id}", record=False)
            details = answer.body.get("dagRunDetails", {}) if answer.status == 200 else {}
            # A terminal status comes with the last step's end; the run has ended with the agent's last
            # write, about 10 ms later, the first with finishedAt (both servers): wait for that one.
            ended = details.get("status") not in (2, 3, 4, 6, 8) or details.get("finishedAt") not in (None, "", "-")
            if details.get("status") in wanted and ended:
                return
            assert time.monotonic() < deadline, f"{name}/{run_id} never reached {wanted}: {answer.body}"
            time.sleep(0.1)

    def wait_until(self, condition: Callable[[], bool], what: str, within: float = 120) -> None:
        deadline = time.monotonic() + within
        while not condition():
            assert time.monotonic() < deadline, f"never: {what}"
            time.sleep(0.1)

    def start(self, file: str, run_id: str, **body: Any) -> Answer:
        return self.post(f"/dags/{file}/start", {"dagRunId": run_id, **body})


@dataclass
class Scenario:
    yaml: str  # the DAG file for real Dagu
    dag: Dag  # the same DAG, scripted for the fake


def both(
    real_dagu,
    real_version: str,
    scenarios: Dict[str, Scenario],
    drive: Callable[[Client], None],
    fake_setup: Callable[[FakeDagu], None] = lambda srv: None,
) -> None:
    real = real_dagu({name: s.yaml for name, s in scenarios.items()})
    with FakeDagu(version=real_version) as fake:
        for scenario in scenarios.values():
            fake.add_dag(scenario.dag)
        fake_setup(fake)
        real_client, fake_client = Client(real.api), Client(fake.api_url)
        drive(real_client)
        drive(fake_client)
        assert not fake.errors, fake.errors[0]
    assert_same_shapes(real_client.answers, fake_client.answers)


# -- the DAGs -------------------------------------------------------------------------------

OK = Scenario(
    """
steps:
  - name: hello
    command: echo hello
""",
    Dag("ok", [Step("hello", [out("hello")], command="echo hello")]),
)

SLOW = Scenario(
    """
steps:
  - name: wait
    command: sh -c 'echo waiting; sleep 3'
  - name: after
    command: echo done
    depends: [wait]
""",
    Dag(
        "slow",
        [
            Step("wait", [out("waiting"), sleep(3)], command="sh -c 'echo waiting; sleep 3'"),
            Step("after", [out("done")], depends=["wait"], command="echo done"),
        ],
    ),
)

FAIL = Scenario(
    real_run.FAIL,
    Dag("fail", [Step("broken", [out("about to fail"), fail(3)], command="sh -c 'echo about to fail; exit 3'")]),
)

PARTIAL = Scenario(
    real_run.PARTIAL,
    Dag(
        "partial",
        [
            Step(
                "flaky",
                [out("soft failure"), fail(1)],
                continue_on_failure=True,
                command="sh -c 'echo soft failure; exit 1'",
            ),
            Step("after", [out("still ran")], depends=["flaky"], command="echo still ran"),
        ],
    ),
)

OUTPUT = Scenario(
    """
steps:
  - name: produce
    command: echo 42
    output: RESULT
""",
    Dag("output", [Step("produce", [out("42"), output("RESULT", "42")], command="echo 42")]),
)

LOGS = Scenario(
    """
steps:
  - name: many
    command: seq 1 3000
  - name: big
    command: seq 1 20000
  - name: warn
    command: sh -c 'echo to stdout; echo a warning >&2'
""",
    Dag(
        "logs",
        [
            Step("many", [lines(3000, "{i}")], command="seq 1 3000"),
            Step("big", [lines(20000, "{i}")], command="seq 1 20000"),
            Step("warn", [out("to stdout"), err("a warning")], command="sh -c 'echo to stdout; echo a warning >&2'"),
        ],
    ),
)

PARAMS = Scenario(
    """
params:
  - A: "x"
steps:
  - name: show
    command: echo $A
""",
    Dag("params", [Step("show", [out("{A}")], command="echo $A")], params={"A": "x"}),
)

QUEUE = Scenario(
    """
maxActiveRuns: 1
steps:
  - name: wait
    command: sleep 5
""",
    Dag("queue", [Step("wait", [sleep(5)], command="sleep 5")]),
)


def fake_holds_queue(fake: FakeDagu) -> None:
    fake.queue_delay = None  # a queued run waits until released, like one behind maxActiveRuns: 1


# -- the scenarios ---------------------------------------------------------------------------


def test_health_and_dag(real_dagu, real_version):
    def drive(c: Client) -> None:
        c.get("/health")
        c.get("/dags/ok")
        c.get("/dags/nope")
        c.get("/dag-runs/ok/never")

    both(real_dagu, real_version, {"ok": OK}, drive)


def test_a_run_while_running_and_after_success(real_dagu, real_version):
    def drive(c: Client) -> None:
        c.start("slow", "r1")
        c.wait_until(lambda: c.details("slow", "r1").get("nodes", [{}])[0].get("status") == 1, "wait runs")
        c.get("/dag-runs/slow/r1")
        c.get("/dag-runs/slow/r1/steps/wait/log", params={"stream": "stdout"})
        c.start("slow", "r1")  # the id is taken
        c.wait_status("slow", "r1", (4,))
        c.get("/dag-runs/slow/r1")
        c.post("/dag-runs/slow/r1/stop")  # it has ended
        c.get("/dag-runs/slow/r1/dequeue")  # it is not queued
        c.start("slow", "r1")  # the id is still taken

    both(real_dagu, real_version, {"slow": SLOW}, drive)


@pytest.mark.parametrize("dag, final", [("fail", 2), ("partial", 6), ("output", 4)])
def test_final_states(real_dagu, real_version, dag, final):
    def drive(c: Client) -> None:
        c.start(dag, "r1")
        c.wait_status(dag, "r1", (final,))
        c.get(f"/dag-runs/{dag}/r1")
        c.get(f"/dag-runs/{dag}/r1/outputs")
        c.get(f"/dag-runs/{dag}", params={})
        c.get("/dag-runs", params={"name": dag})

    both(real_dagu, real_version, {"fail": FAIL, "partial": PARTIAL, "output": OUTPUT}, drive)


def test_log_paging(real_dagu, real_version):
    def drive(c: Client) -> None:
        c.start("logs", "r1")
        c.wait_status("logs", "r1", (4,))
        for step in ("many", "big"):
            path = f"/dag-runs/logs/r1/steps/{step}/log"
            c.get(path, params={"stream": "stdout"})
            for offset, limit in ((1, 1000), (1001, 1000), (2001, 1000), (2500, 600)):
                c.get(path, params={"stream": "stdout", "offset": offset, "limit": limit})
            c.get(path, params={"stream": "stdout", "tail": 5})
            c.get(path, params={"stream": "stdout", "offset": 30001, "limit": 10})  # past the end
            c.get(path, params={"stream": "stderr"})
        c.get("/dag-runs/logs/r1/steps/warn/log", params={"stream": "stderr"})
        c.get("/dag-runs/logs/r1/steps/nope/log", params={"stream": "stdout"})

    both(real_dagu, real_version, {"logs": LOGS}, drive)


def test_params_the_dag_does_not_declare(real_dagu, real_version):
    def drive(c: Client) -> None:
        c.start("params", "r1", params='{"B": "y"}')
        c.wait_status("params", "r1", (4, 2))
        c.get("/dag-runs/params/r1")
        c.get("/dag-runs/params/r1/steps/show/log", params={"stream": "stdout"})

    both(real_dagu, real_version, {"params": PARAMS}, drive)


def test_queue_and_dequeue(real_dagu, real_version):
    def drive(c: Client) -> None:
        c.start("queue", "first")
        c.wait_status("queue", "first", (1,))
        c.post("/dags/queue/enqueue", {"dagRunId": "second"})
        c.get("/dag-runs/queue/second")
        c.get("/queues")
        c.get("/dag-runs/queue/second/dequeue")
        c.get("/dag-runs/queue/second")  # a queued run that never ran is gone
        c.get("/dag-runs/queue/second/dequeue")
        c.post("/dag-runs/queue/first/stop")
        c.wait_status("queue", "first", (3,))
        c.get("/dag-runs/queue/first")

    both(real_dagu, real_version, {"queue": QUEUE}, drive, fake_holds_queue)


def test_retry_reruns_the_failed_steps(real_dagu, real_version):
    def drive(c: Client) -> None:
        c.start("partial", "r1")
        c.wait_status("partial", "r1", (6,))
        before = c.details("partial", "r1")
        c.post("/dag-runs/partial/r1/retry", {"dagRunId": "r1"})
        c.wait_until(
            lambda: (
                c.details("partial", "r1") != before
                and c.details("partial", "r1")["status"] in (4, 6, 2)
                and c.details("partial", "r1").get("finishedAt") not in (None, "", "-")
            ),
            "the retry ends",
        )
        c.get("/dag-runs/partial/r1")
        after = c.details("partial", "r1")
        # What a log follower keys on: the run's log and each step's stdout path.
        c.answers.append(
            Answer(
                "retry keeps",
                0,
                {
                    "logKept": after["log"] == before["log"],
                    "stdoutKept": {
                        n["step"]["name"]: n["stdout"] == m["stdout"] for n, m in zip(after["nodes"], before["nodes"])
                    },
                },
            )
        )

    both(real_dagu, real_version, {"partial": PARTIAL}, drive)
