"""`--junit`: one testcase per DAG step, read back with a JUnit parser."""

from __future__ import annotations

import junitparser

from dagu_ci.reporters.junit import JUnitReporter
from dagu_ci.server.models import RunStatus, StepStatus
from tests.reporting import done, feed, finished, log, started, step


def read(path):
    xml = junitparser.JUnitXml.fromfile(str(path))
    (suite,) = list(xml)
    return xml, suite


def test_one_testcase_per_step_with_failures_carrying_last_lines(tmp_path):
    path = tmp_path / "reports" / "junit.xml"
    lines = [f"\x1b[31mline {n}\x1b[0m \x07" for n in range(40)]
    feed(
        JUnitReporter(str(path)),
        [
            started("build"),
            log("build", "ok"),
            done("build"),
            started("test"),
            log("test", *lines, stream="stderr"),
            done("test", StepStatus.FAILED),
            finished(
                RunStatus.FAILED,
                step("build"),
                step("test", StepStatus.FAILED),
                step("deploy", StepStatus.NOT_STARTED),
                step("cleanup", handler=True),
            ),
        ],
    )
    _, suite = read(path)
    assert (suite.name, suite.tests, suite.failures, suite.errors, suite.skipped) == ("deploy", 4, 1, 0, 1)
    cases = {case.name: case for case in suite}
    assert list(cases) == ["build", "test", "deploy", "cleanup"]
    assert cases["build"].is_passed and cases["build"].time == 1.25 and cases["build"].classname == "deploy"
    (failure,) = cases["test"].result
    assert isinstance(failure, junitparser.Failure)
    assert failure.message == "step test failed"
    assert failure.text.splitlines() == [f"line {n} " for n in range(10, 40)]  # no ANSI, no XML-illegal bytes
    assert cases["deploy"].is_skipped and cases["deploy"].result[0].message == "did not run"
    assert cases["cleanup"].classname == "deploy.handlers"
    props = {prop.name: prop.value for prop in suite.properties()}
    assert props == {
        "dagu.run_id": "r-1",
        "dagu.url": "http://dagu.test/dag-runs/deploy/r-1",
        "dagu.status": "failed",
        "dagu.exit_code": "1",
    }


def test_without_logs_a_failure_carries_the_error_dagu_recorded(tmp_path):
    path = tmp_path / "junit.xml"
    feed(
        JUnitReporter(str(path)),
        [
            finished(RunStatus.ABORTED, step("build", StepStatus.ABORTED, error="signal: killed")),
        ],
    )
    _, suite = read(path)
    (case,) = list(suite)
    assert case.result[0].message == "step build aborted" and case.result[0].text == "signal: killed"


def test_nothing_is_written_when_the_run_never_finished(tmp_path):
    path = tmp_path / "junit.xml"
    feed(JUnitReporter(str(path)), [started("build")])
    assert not path.exists()
