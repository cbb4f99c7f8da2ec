"""Buildkite: `---` groups, and the agent (a recording fake on the PATH) for annotations,
meta-data and the redactor."""

from __future__ import annotations

import json
import os
import re
import sys

from dagu_ci.hosts import detect
from tests.conftest import run_cli
from tests.fakedagu import Dag, Step, fail, out
from tests.test_reporter_github import HOSTILE

BUILDKITE = {
    "BUILDKITE": "true",
    "CI": "true",
    "BUILDKITE_BUILD_ID": "0190b2a4-7c1e-4f6d-9c55-3e3c4a1b2d11",
    "BUILDKITE_STEP_ID": "0190b2a4-8d2f-4e7a-a9b1-5f0e6c7d8e22",
    "BUILDKITE_JOB_ID": "0190b2a4-9e30-4b8c",
    "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/app/builds/88",
    "BUILDKITE_COMMIT": "abc123",
    "BUILDKITE_BRANCH": "main",
}


def fake_agent(tmp_path, exit_code=0):
    """buildkite-agent that records each call's arguments and stdin, one JSON line each."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "agent-calls.jsonl"
    script = bindir / "buildkite-agent"
    script.write_text(f"""#!{sys.executable}
import json, sys
with open({str(record)!r}, "a") as handle:
    handle.write(json.dumps({{"args": sys.argv[1:], "stdin": sys.stdin.read()}}) + "\\n")
sys.exit({exit_code})
""")
    script.chmod(0o755)
    return f"{bindir}{os.pathsep}{os.environ['PATH']}", record


def calls(record):
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def test_job_identity_stays_the_same_for_a_retried_job():
    host = detect(BUILDKITE)
    assert host.name == "buildkite"
    retried = detect({**BUILDKITE, "BUILDKITE_JOB_ID": "another-job", "BUILDKITE_RETRY_COUNT": "1"})
    assert host.job() == retried.job() == f"bk-{BUILDKITE['BUILDKITE_BUILD_ID']}-{BUILDKITE['BUILDKITE_STEP_ID']}"
    assert detect({**BUILDKITE, "BUILDKITE_PARALLEL_JOB": "2"}).job().endswith("-2")
    assert host.provenance().labels() == [
        "ci=buildkite",
        "ci-url=buildkite.com/acme/app/builds/88-0190b2a4-9e30-4b8c",
        "sha=abc123",
        "ref=main",
    ]


def test_groups_annotation_meta_data_and_redactor(fake_factory, tmp_path):
    server = fake_factory(
        Dag(
            file="deploy",
            name="deploy",
            steps=[
                Step(
                    "build",
                    [out("--- not a group"), out("+++ nor this"), out("^^^ +++")] + [out(line) for line in HOSTILE],
                ),
                Step("check", [out("it broke"), fail(2)], depends=["build"]),
            ],
        )
    )
    path, record = fake_agent(tmp_path)
    env = {**BUILDKITE, "PATH": path, "DAGU_API_TOKEN": "tok-bk", "BUILDKITE_BUILD_CHECKOUT_PATH": str(tmp_path)}
    result = run_cli("run", "deploy", "--url", server.url, "--poll-interval", "0.1", env=env)
    assert result.code == 1, result.output
    lines = result.stdout.splitlines()
    assert [line for line in lines if re.match(r"(---|\+\+\+|~~~|\^\^\^)", line)] == [
        "--- build",
        "--- check",
        "^^^ +++",
    ]
    assert "│ --- not a group" in lines

    made = calls(record)
    assert made[0] == {"args": ["redactor", "add"], "stdin": "tok-bk"}
    meta = {call["args"][2]: call["args"][3] for call in made if call["args"][:2] == ["meta-data", "set"]}
    assert meta["dagu-status"] == "failed" and meta["dagu-exit-code"] == "1"
    assert re.fullmatch(r"bk-[0-9a-f-]+", meta["dagu-run-id"]) and len(meta["dagu-run-id"]) <= 64
    (annotation,) = [call for call in made if call["args"][0] == "annotate"]
    assert annotation["args"] == ["annotate", "--style", "error", "--context", f"dagu-ci-{meta['dagu-run-id']}"]
    assert annotation["stdin"].startswith("### ❌ Dagu run of `deploy` failed")
    assert "tok-bk" not in result.output
    assert not (tmp_path / ".dagu-ci").exists()


def test_without_the_agent_the_log_alone_and_a_failing_agent_only_warns(fake_factory, tmp_path):
    server = fake_factory(Dag(file="deploy", name="deploy", steps=[Step("build", [out("ok")])]))
    alone = run_cli(
        "run",
        "deploy",
        "--url",
        server.url,
        "--poll-interval",
        "0.1",
        env={**BUILDKITE, "PATH": os.path.dirname(sys.executable)},
    )
    assert alone.code == 0 and "--- build" in alone.stdout, alone.output
    path, _ = fake_agent(tmp_path, exit_code=1)
    broken = run_cli("run", "deploy", "--url", server.url, "--poll-interval", "0.1", env={**BUILDKITE, "PATH": path})
    assert broken.code == 0, broken.output
    assert "dagu-ci: warning: buildkite-agent annotate failed (exit code 1)" in broken.stdout
