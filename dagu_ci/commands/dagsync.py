"""DAG files kept in the repository, against a Dagu server.

`validate` checks them: locally (file:line errors), then by the server's `/dags/validate`
where it has one. `push` installs them: each file is the DAG file of its base name without
.yaml/.yml, the key Dagu's `/dags/{fileName}` endpoints use (not the `name:` inside).

Push changes nothing unless all of it can be done: it checks every file, then reads every
DAG's current text (`GET /dags/{fileName}/spec`), and only then writes (`PUT .../spec`, or
`POST /dags` with --create). If a write still fails (before 1.23 only the write itself
checks a text on the server; a connection can drop), the writes made so far are undone:
the old text is put back, a DAG it created is deleted.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from dagu_ci.commands.output import Output
from dagu_ci.errors import DaguCIError, ExitCode, UsageError
from dagu_ci.server.api import DaguClient
from dagu_ci.server.client import ApiError
from dagu_ci.server.dagyaml import load_dag_file
from dagu_ci.stdio import tell

# What Dagu takes as a file name in /dags/{fileName} (2.3.1+) and as a new DAG's name
# (POST /dags, 2.0.0+: core.ValidateDAGName, which also caps it at 40 characters).
DAG_FILE_RE = re.compile(r"^[a-zA-Z0-9_.-]+$")
NEW_NAME_MAX = 40

COLORS = {"valid": "green", "created": "green", "updated": "green", "unchanged": "dim", "undone": "yellow"}


def dag_file_name(path: str) -> str:
    """The DAG's key on the server: the file's base name without .yaml or .yml."""
    stem, extension = os.path.splitext(os.path.basename(path))
    return stem if extension.lower() in (".yaml", ".yml") else os.path.basename(path)


@dataclass
class Checked:
    path: str
    name: str = ""
    errors: List[str] = field(default_factory=list)
    server_checked: bool = False
    text: str = ""

    @property
    def file(self) -> str:
        return dag_file_name(self.path)


def check(paths: Sequence[str], client: Optional[DaguClient]) -> List[Checked]:
    results = []
    for path in paths:
        result = Checked(path)
        try:
            result.text, spec = load_dag_file(path)
        except UsageError as exc:  # broken YAML or no steps: the server need not be asked
            result.errors.append(exc.message)
            results.append(result)
            continue
        result.name = str(spec.get("name") or os.path.splitext(os.path.basename(path))[0])
        if client is not None:
            found = client.validate_spec(result.text, result.name)
            result.server_checked = found is not None
            result.errors += [f"{path}: {error}" for error in found or []]
        results.append(result)
    return results


def _line(output: Output, word: str, text: str) -> str:
    return output.style.paint(f"{word}: {text}", COLORS.get(word, "red"))


def validate(paths: Sequence[str], client: Optional[DaguClient], output: Output) -> int:
    results = check(paths, client)
    if output.as_json:
        output.document(
            [
                {
                    "path": r.path,
                    "name": r.name,
                    "valid": not r.errors,
                    "errors": r.errors,
                    "server_checked": r.server_checked,
                }
                for r in results
            ]
        )
    else:
        lines = []
        for result in results:
            if result.errors:
                lines += [_line(output, "invalid", error) for error in result.errors]
            else:
                where = "locally and by the server" if result.server_checked else "locally"
                lines.append(_line(output, "valid", f"{result.path} ({result.name}; checked {where})"))
        output.lines(lines)
    return int(ExitCode.FAILED if any(r.errors for r in results) else ExitCode.SUCCEEDED)


# -- push -------------------------------------------------------------------------


@dataclass
class Pushed:
    """One file's fate: created, updated, unchanged; or invalid, missing, refused (its
    `errors` say why), skipped (another file's problem stopped the push), undone."""

    checked: Checked
    result: str
    old: Optional[str] = None  # the server's text before the push; None: no such DAG
    errors: List[str] = field(default_factory=list)
    placed: bool = False  # a DAG file now exists that push created (undo deletes it)

    def to_dict(self) -> Dict[str, object]:
        c = self.checked
        return {"path": c.path, "file": c.file, "name": c.name, "result": self.result, "errors": self.errors}


def refuse_duplicates(paths: Sequence[str]) -> None:
    """Two paths for one DAG file would overwrite each other: a usage error."""
    seen: Dict[str, List[str]] = defaultdict(list)
    for path in paths:
        seen[dag_file_name(path)].append(path)
    for file, given in seen.items():
        if len(given) > 1:
            raise UsageError(
                f"{' and '.join(given[:2])} are both the DAG file {file!r} on the server: push one of them"
            )


def push(paths: Sequence[str], client: DaguClient, output: Output, create: bool) -> int:
    refuse_duplicates(paths)
    items = [Pushed(c, "skipped", errors=list(c.errors)) for c in check(paths, client)]
    for item in items:
        if not item.errors and not DAG_FILE_RE.match(item.checked.file):
            item.errors.append(
                f"{item.checked.path}: Dagu takes only letters, digits, '_', '.' and '-' in a DAG file name"
            )
        if item.errors:
            item.result = "invalid"
    if not any(item.errors for item in items):
        _plan(client, items, create)
    if any(item.errors for item in items):
        return _report(output, items, f"nothing changed on {client.display_url}")
    done: List[Pushed] = []
    for item in (i for i in items if i.result != "unchanged"):
        try:
            errors = _write(client, item)
        except DaguCIError as exc:
            exc.message = f"{exc.message}; {_undo(client, done + [item], '', uncertain=_may_have_landed(exc))}"
            raise
        if errors:
            item.result, item.errors = "refused", [f"{item.checked.path}: {error}" for error in errors]
            return _report(output, items, _undo(client, done + [item], f" on {client.display_url}"))
        done.append(item)
    return _report(output, items, "")


def _plan(client: DaguClient, items: List[Pushed], create: bool) -> None:
    """What each file needs, from the server's current text; problems in `errors`."""
    for item in items:
        c = item.checked
        item.old = client.get_spec(c.file)
        if item.old is None and not create:
            item.result = "missing"
            item.errors.append(f"{c.path}: {c.file} is not on {client.display_url}; --create adds it")
        elif item.old is None and len(c.file) > NEW_NAME_MAX:
            item.result = "invalid"
            item.errors.append(f"{c.path}: a new DAG's file name has at most {NEW_NAME_MAX} characters in Dagu")
        else:
            item.result = "created" if item.old is None else "unchanged" if item.old == c.text else "updated"
    for item in items:
        if not item.errors and any(i.errors for i in items):
            item.result = "skipped"


def _write(client: DaguClient, item: Pushed) -> List[str]:
    c = item.checked
    if item.result == "updated":
        return client.put_spec(c.file, c.text)
    errors = client.create_dag(c.file, c.text)
    if errors:
        return errors
    item.placed = True
    return [] if client.creates_with_spec else client.put_spec(c.file, c.text)


def _may_have_landed(exc: DaguCIError) -> bool:
    """A refusal (401, 403, another 4xx) wrote nothing; after a lost answer or a 5xx the
    write may have happened."""
    return not isinstance(exc, UsageError) and not (isinstance(exc, ApiError) and exc.status < 500)


def _undo(client: DaguClient, items: List[Pushed], where: str, uncertain: bool = False) -> str:
    """Put back what the writes changed, newest first; one sentence on how it went
    (`where`: " on URL", or "").

    The last item is the one that failed: a refused update wrote nothing, but after a lost
    answer (`uncertain`) its old text goes back too, and a DAG it may have created goes."""
    *earlier, last = items
    targets = list(reversed(earlier + ([last] if uncertain or last.placed else [])))
    for index, item in enumerate(targets):
        try:
            if item.old is None:
                client.delete_dag(item.checked.file)
            else:
                client.put_spec(item.checked.file, item.old)
        except DaguCIError as exc:  # the rest would most likely fail the same way: not tried
            left = ", ".join(i.checked.path for i in targets[index:])
            return f"could not undo the push of {left}{where}: {exc.message}"
        if item is not last:
            item.result = "undone"
    undid = f" (undid {len(earlier)} earlier write{'s' if len(earlier) > 1 else ''})" if earlier else ""
    return f"nothing changed{where}{undid}"


def _report(output: Output, items: List[Pushed], outcome: str) -> int:
    failed = any(item.errors for item in items)
    code = int(ExitCode.FAILED if failed else ExitCode.SUCCEEDED)
    if output.as_json:
        output.document([item.to_dict() for item in items])
        if failed:  # for people: stderr, so stdout stays the document
            tell(f"push: {outcome}")
        return code
    lines = []
    for item in items:
        if item.errors:
            lines += [_line(output, item.result, error) for error in item.errors]
        elif not failed:
            lines.append(_line(output, item.result, f"{item.checked.path} ({item.checked.file})"))
    if failed:
        lines.append(_line(output, "push", outcome))
    output.lines(lines)
    return code
