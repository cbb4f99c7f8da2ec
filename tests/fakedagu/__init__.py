"""A fake Dagu server for tests: real HTTP, scripted runs, real log files.

from tests.fakedagu import FakeDagu, Dag, Step, out, err, raw, sleep, hold, lines, fail, approval

with FakeDagu(version="2.6.5") as srv:
    srv.add_dag(Dag(file="deploy", steps=[Step("build", [out("hello")])]))
    ...  # point a client at srv.url
"""

from .dags import (
    Action,
    Approval,
    Dag,
    Fail,
    Hold,
    Lines,
    Output,
    Sleep,
    Step,
    Write,
    approval,
    call,
    err,
    fail,
    fail_on_attempt,
    hold,
    lines,
    out,
    output,
    parallel,
    raw,
    sleep,
)
from .engine import Attempt, NodeState, Run
from .server import FakeDagu, Fault, RequestRecord
from .versions import ServerVersion, node_status_label, status_label
from .yamlspec import load_dags

__all__ = [
    "Action",
    "Approval",
    "Attempt",
    "Dag",
    "Fail",
    "FakeDagu",
    "Fault",
    "Hold",
    "Lines",
    "NodeState",
    "Output",
    "RequestRecord",
    "Run",
    "ServerVersion",
    "Sleep",
    "Step",
    "Write",
    "approval",
    "call",
    "err",
    "fail",
    "fail_on_attempt",
    "hold",
    "lines",
    "load_dags",
    "node_status_label",
    "out",
    "output",
    "parallel",
    "raw",
    "sleep",
    "status_label",
]
