"""Azure Pipelines: groups, logging commands, output variables, the uploaded summary; remote
text never becomes a `##vso[` command or a `##[` format line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

from dagu_ci.hosts import detect
from dagu_ci.hosts.azure import AzureReporter, escape_data, escape_property
from dagu_ci.server.models import RunStatus
from tests.conftest import run_cli
from tests.fakedagu import Dag, Step, fail, out, output
from tests.reporting import PLAIN, Out, accepted, feed, finished, log, started, step
from tests.test_reporter_github import HOSTILE

AZURE_HOSTILE = [
    "##vso[task.setvariable variable=PATH]/tmp/evil",
    "text before ##vso[task.complete result=Failed;]done",
    "##VSO[task.setsecret]upper-case",
    "##[group]fake group",
    "##[endgroup]",
    "##[error]fake error",
    "carriage\r##vso[task.logissue type=error]x",
]
EVIL_NAME = "deploy ##vso[task.setvariable variable=X]1 ]; % \n end"


@dataclass
class Command:
    name: str
    properties: Dict[str, str]
    data: str


@dataclass
class AgentLog:
    """The job log as the agent reads it: a `##vso[` command anywhere in a line (any case),
    `##[name]` format lines, lines split at CR and LF."""

    commands: List[Command] = field(default_factory=list)
    formats: List[str] = field(default_factory=list)

    @classmethod
    def read(cls, text: str) -> "AgentLog":
        seen = cls()
        for line in re.split(r"\r\n|\r|\n", text):
            at = line.lower().find("##vso[")
            if at >= 0:
                head, _, data = line[at + 6 :].partition("]")
                name, _, props = head.partition(" ")
                properties = dict(pair.split("=", 1) for pair in props.split(";") if "=" in pair)
                seen.commands.append(Command(name, {k: unescape(v) for k, v in properties.items()}, unescape(data)))
            elif line.startswith("##["):
                seen.formats.append(line)
        return seen

    def named(self, name: str) -> List[Command]:
        return [command for command in self.commands if command.name == name]


def unescape(text: str) -> str:
    for escaped, char in (("%0D", "\r"), ("%0A", "\n"), ("%3B", ";"), ("%5D", "]"), ("%AZP25", "%")):
        text = text.replace(escaped, char)
    return text


AZURE = {
    "TF_BUILD": "True",
    "BUILD_BUILDID": "1234",
    "SYSTEM_JOBATTEMPT": "1",
    "SYSTEM_JOBID": "12f1170f-54f2-53f3-20dd-22fc7dff55f9",
    "SYSTEM_COLLECTIONURI": "https://dev.azure.com/acme/",
    "SYSTEM_TEAMPROJECT": "My Project",
    "BUILD_SOURCEVERSION": "abc123",
    "BUILD_SOURCEBRANCH": "refs/heads/main",
}


def test_detected_with_job_identity_labels_and_temp_dir(tmp_path):
    host = detect(
        {**AZURE, "AGENT_TEMPDIRECTORY": str(tmp_path / "_temp"), "BUILD_SOURCESDIRECTORY": str(tmp_path / "s")}
    )
    assert host.name == "azure"
    assert host.job() == "az-1234-1-12f1170f-54f2-53f3-20dd-22fc7dff55f9"
    assert detect({**AZURE, "SYSTEM_JOBATTEMPT": "2"}).job() != host.job()  # re-running failed jobs: a new run
    assert host.provenance().labels() == [
        "ci=azure",
        "ci-url=dev.azure.com/acme/my-20project/_build/results-buildid-1234",
        "sha=abc123",
        "ref=main",
    ]
    assert host.state_dir() == str(tmp_path / "_temp" / ".dagu-ci")


def test_escaping_reads_back_exactly():
    for text in ["a%b", "50%AZP25", "x;y]z", "line\nline\r", EVIL_NAME]:
        assert unescape(escape_property(text)) == text and unescape(escape_data(text)) == text
        assert not re.search(r"[\r\n]", escape_property(text))


def test_remote_names_and_lines_never_become_commands_or_groups(tmp_path):
    out = Out()
    reporter = AzureReporter(out, PLAIN, summary_dir=str(tmp_path), secrets_to_mask=["tok-az"])
    feed(
        reporter,
        [
            accepted(),
            started(EVIL_NAME),
            log(EVIL_NAME, *HOSTILE, *AZURE_HOSTILE),
            finished(RunStatus.SUCCEEDED, step(EVIL_NAME)),
        ],
    )
    seen = AgentLog.read(out.getvalue())
    assert {c.name for c in seen.commands} == {"task.setsecret", "task.setvariable", "task.uploadsummary"}
    assert [c.data for c in seen.named("task.setsecret")] == ["tok-az"]
    assert {c.properties["variable"] for c in seen.named("task.setvariable")} <= {
        "DAGU_RUN_ID",
        "DAGU_RUN_URL",
        "DAGU_STATUS",
        "DAGU_EXIT_CODE",
        "DAGU_OUTPUTS",
        "DAGU_DURATION",
    }
    groups = [line for line in seen.formats if line.startswith("##[group]")]
    assert len(groups) == 1 and seen.formats.count("##[endgroup]") == 1
    assert all("##vso[" not in line.lower() for line in out.getvalue().split("\n") if not line.startswith("##vso["))


def test_a_run_in_azure_pipelines(fake_factory, tmp_path):
    server = fake_factory(
        Dag(
            file="deploy",
            name="deploy",
            steps=[
                Step("build", [out(line) for line in AZURE_HOSTILE] + [output("NOTE", "50% ; done ]")]),
                Step("check", [out("checking"), out("it broke"), fail(3)], depends=["build"]),
            ],
        )
    )
    temp = tmp_path / "_temp"
    temp.mkdir()
    env = {
        **AZURE,
        "AGENT_TEMPDIRECTORY": str(temp),
        "BUILD_SOURCESDIRECTORY": str(tmp_path),
        "DAGU_API_TOKEN": "tok-az2",
    }
    result = run_cli("run", "deploy", "--url", server.url, "--poll-interval", "0.1", env=env)
    assert result.code == 1, result.output
    seen = AgentLog.read(result.stdout)
    assert [c.data for c in seen.named("task.setsecret")] == ["tok-az2"]
    assert [line for line in seen.formats if line.startswith("##[group]")] == ["##[group]build", "##[group]check"]
    (issue,) = seen.named("task.logissue")
    assert issue.properties["type"] == "error" and issue.data.endswith("checking\nit broke")
    variables = {c.properties["variable"]: c.data for c in seen.named("task.setvariable")}
    assert variables["DAGU_STATUS"] == "failed" and variables["DAGU_EXIT_CODE"] == "1"
    assert re.fullmatch(r"az-1234-1-12f1170f-54f2-53f3-20dd-22fc7dff55f9-[0-9a-f]{8}", variables["DAGU_RUN_ID"])
    assert '"50% ; done ]"' in variables["DAGU_OUTPUTS"]
    (summary,) = seen.named("task.uploadsummary")
    assert summary.data.startswith(str(temp)) and "Dagu run of `deploy` failed" in Path(summary.data).read_text()
    assert "tok-az2" not in result.stdout.split("\n", 1)[1] + result.stderr  # after the agent was told to mask it
    assert not (temp / ".dagu-ci").exists()
