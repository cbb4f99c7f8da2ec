"""`outputs`: a run's collected outputs, in the format of the file they go to."""

from __future__ import annotations

from typing import Optional

from dagu_ci.commands.connect import find_run
from dagu_ci.commands.output import Output
from dagu_ci.errors import UsageError
from dagu_ci.remotetext import EnvFormat, env_file
from dagu_ci.server.api import DaguClient
from dagu_ci.server.capabilities import Capabilities


def outputs(
    client: DaguClient, output: Output, dag_file: str, run_id: str, fmt: Optional[EnvFormat] = EnvFormat.ENV
) -> int:
    """FMT None: JSON. A name or value FMT cannot carry safely ends it (exit 1) before
    anything is printed, so a redirect into GITHUB_ENV never gets half a file."""
    snapshot = find_run(client, dag_file, run_id)
    if not client.api.features.outputs:
        raise UsageError(
            f"outputs need Dagu {Capabilities.needs('outputs')} or newer; {client.display_url} runs {client.api.version_text or 'an older version'}"
        )
    values = client.get_outputs(snapshot.dag_name, snapshot.run_id)
    if fmt is None:
        output.document(values)
    else:
        output.text(env_file(values, fmt))
    return 0
