"""The run list's default window: without fromDate or toDate, every Dagu version (1.17.0 to
2.6.5, filedagrun's prepareListOptions) lists only the runs filed since UTC midnight. Found on
real 1.30.3: `history` right after midnight listed nothing. What dagu-ci lists it must ask
for whole: `history`, `status DAG latest` before 1.22.10, and --cancel-superseded."""

from __future__ import annotations

import json
import signal

from tests.conftest import run_cli, start_cli
from tests.fakedagu import Dag, Step, hold, out
from tests.test_run_e2e import FAST


def test_history_lists_runs_from_before_midnight(fake_factory):
    server = fake_factory(Dag(file="nightly", steps=[Step("s", [out("done")])]), version="1.30.3")
    assert run_cli("run", "nightly", "--url", server.url, *FAST, "--run-id", "yesterday").code == 0
    server.midnight_passes()
    assert run_cli("run", "nightly", "--url", server.url, *FAST, "--run-id", "today").code == 0
    history = run_cli("history", "nightly", "--url", server.url, "--json")
    assert history.code == 0, history.output
    assert [run["run_id"] for run in json.loads(history.stdout)] == ["today", "yesterday"], history.output


def test_latest_is_found_from_before_midnight_where_the_list_gives_it(fake_factory):
    server = fake_factory(Dag(file="nightly", steps=[Step("s", [out("done")])]), version="1.17.0")
    assert run_cli("run", "nightly", "--url", server.url, *FAST, "--run-id", "yesterday").code == 0
    server.midnight_passes()
    status = run_cli("status", "nightly", "--url", server.url, "--json")
    assert status.code == 0, status.output
    assert json.loads(status.stdout)["run_id"] == "yesterday"


def test_cancel_superseded_stops_a_run_of_the_group_started_before_midnight(fake_factory):
    server = fake_factory(Dag(file="deploy", steps=[Step("long", [out("working"), hold("never")])]), version="2.6.5")
    older = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "main-1", "--cancel-superseded", "main")
    server.wait_for_status("deploy", "main-1", {1})
    server.midnight_passes()
    newer = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "main-2", "--cancel-superseded", "main")
    newer.wait_for("superseded: stopping run main-1")
    server.wait_for_status("deploy", "main-1", {3})
    assert older.finish().code == 3
    newer.send_signal(signal.SIGTERM)
    newer.finish()
