"""`dagu-ci validate`: DAG files from the repository, checked locally (file:line errors)
and then by the server's `/dags/validate` where it has one."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from dagu_ci.client import DaguClient
from dagu_ci.dagyaml import load_dag_file
from dagu_ci.errors import ExitCode, UsageError
from dagu_ci.inspect import Output


@dataclass
class Checked:
    path: str
    name: str = ""
    errors: List[str] = field(default_factory=list)
    server_checked: bool = False


def check(paths: Sequence[str], client: Optional[DaguClient]) -> List[Checked]:
    results = []
    for path in paths:
        result = Checked(path)
        try:
            text, spec = load_dag_file(path)
        except UsageError as exc:  # broken YAML or no steps: the server need not be asked
            result.errors.append(exc.message)
            results.append(result)
            continue
        result.name = str(spec.get("name") or os.path.splitext(os.path.basename(path))[0])
        if client is not None:
            found = client.validate_spec(text, result.name)
            result.server_checked = found is not None
            result.errors += [f"{path}: {error}" for error in found or []]
        results.append(result)
    return results


def validate(paths: Sequence[str], client: Optional[DaguClient], output: Output) -> int:
    results = check(paths, client)
    if output.as_json:
        output.document([{"path": r.path, "name": r.name, "valid": not r.errors, "errors": r.errors, "server_checked": r.server_checked} for r in results])
    else:
        lines = []
        for result in results:
            if result.errors:
                lines += [output.style.paint(f"invalid: {error}", "red") for error in result.errors]
            else:
                where = "locally and by the server" if result.server_checked else "locally"
                lines.append(output.style.paint(f"valid: {result.path} ({result.name}; checked {where})", "green"))
        output.lines(lines)
    return int(ExitCode.FAILED if any(r.errors for r in results) else ExitCode.SUCCEEDED)
