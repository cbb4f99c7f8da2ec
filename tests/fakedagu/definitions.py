"""DAG definitions, the files behind `/dags/{fileName}`: read, replace, create, delete.

Facts from Dagu's Go code (dagucloud/dagu): the handlers in internal/frontend/api/v2/dags.go
(v1.17.0), internal/service/frontend/api/v2/dags.go (v1.30.3) and
internal/service/frontend/api/v1/dags.go (v2.0.0, v2.6.5); the store's UpdateSpec/Create in
internal/persistence/filedag/store.go (1.x) and internal/persis/filedag/store.go (2.x).

* Every one of them is keyed by the file name (the base name without .yaml), not by the
  DAG's `name:`.
* GET /dags/{fileName}/spec (1.17.0+): 200 `{dag, spec, errors}`; `spec` is the file's
  text as stored, `errors` the loader's complaints, null when there are none (a nil Go
  slice). No such file: 404 not_found "DAG not found" on 2.x, and on 1.x the same code
  with status 500 (handleError's type switch keeps the 500, API.md §11).
* PUT /dags/{fileName}/spec `{spec}` (1.17.0+): the store loads and validates the text
  before it writes, and writes nothing when that fails; the errors come back in a 200
  `{errors: [...]}`. Success is 200 `{"errors": null}` on 2.x, and on 1.x a 200 with an
  empty body (the handler returns no response object; the strict wrapper writes nothing).
  A file that does not exist is a 500 internal_error ("failed to locate DAG" is not
  mapped to 404); from 2.6.0 that lookup comes before the permission check.
* POST /dags `{name, spec}` -> 201 `{name}` (1.17.0+). `spec` is read from 1.23.0 (the
  release that added /dags/validate): validated first, 400 bad_request with the errors
  joined by "; ". Before 1.23.0, or with a blank spec, a template is written. An existing
  file: 409 already_exists with an empty message. From 2.0.0 the name is checked
  (core.ValidateDAGName: `^[a-zA-Z0-9_.-]+$`, at most 40 characters, 400); 1.x takes any
  name.
* DELETE /dags/{fileName} -> 204; no such file: 404 "DAG X not found".
* Writes need `server.permissions.writeDAGs` (403 forbidden "Permission denied") and, from
  1.26.0, a role that may write DAGs: developer, manager or admin (403 "Insufficient
  permissions"; an operator key may run DAGs but not change them). `srv.dag_writes_allowed
  = False` makes the fake refuse them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

import yaml

from . import render
from .dags import Dag
from .lifecycle import dag_from_spec
from .transport import Reply

if TYPE_CHECKING:  # pragma: no cover
    from .api import DaguAPI, Request

DAG_NAME_RE = re.compile(r"^[a-zA-Z0-9_.-]+$")
TEMPLATE_1_17 = "steps:\n  - name: step1\n    command: echo hello\n"  # before 1.21.0
TEMPLATE = "steps:\n  - command: echo hello\n"


def spec_text(dag: Dag) -> str:
    """A DAG file for a Dag added in Python (add_dag): what GET .../spec shows for it."""
    document: Dict[str, Any] = {}
    if dag.dag_name != dag.file:
        document["name"] = dag.dag_name
    if dag.params:
        document["params"] = [{key: value} for key, value in dag.params.items()]
    document["steps"] = [
        {"name": step.name, "command": step.command or "true", **({"depends": step.depends} if step.depends else {})}
        for step in dag.steps
    ]
    return yaml.safe_dump(document, sort_keys=False)


def dag_name_problem(name: str) -> Optional[str]:
    """core.ValidateDAGName's refusal, as POST /dags words it (2.0.0+)."""
    if not name:
        return "DAG name must not be empty"
    if name in (".", ".."):
        return "name must only contain alphanumeric characters, dashes, dots, and underscores"
    if len(name) > 40:
        return "name must be less than 40 characters"
    if not DAG_NAME_RE.match(name):
        return "name must only contain alphanumeric characters, dashes, dots, and underscores"
    return None


class Definitions:
    """Handlers and state for the DAG files themselves."""

    def __init__(self, api: "DaguAPI"):
        self.api = api
        self.v = api.v
        self.dags = api.dags
        # Text written through the API, with the Dag it became (add_dag replaces the Dag).
        self._texts: Dict[str, Tuple[Dag, str]] = {}
        self.writes_allowed = True

    def add_routes(self, add: Callable[..., None], api: str) -> None:
        add("POST", api, "/dags", self.create, body=True)
        add("DELETE", api, "/dags/{file}", self.delete)
        add("GET", api, "/dags/{file}/spec", self.get_spec)
        add("PUT", api, "/dags/{file}/spec", self.put_spec, body=True)

    def text_of(self, file: str) -> Optional[str]:
        """The DAG file's text; None when there is no such file."""
        dag = self.dags.get(file)
        if dag is None:
            return None
        stored = self._texts.get(file)
        return stored[1] if stored and stored[0] is dag else spec_text(dag)

    # -- helpers ---------------------------------------------------------------
    def _refusal(self) -> Optional[Reply]:
        if self.writes_allowed:
            return None
        return Reply.error(
            403, "forbidden", "Insufficient permissions" if self.v.checks_write_role else "Permission denied"
        )

    def _store(self, file: str, text: str) -> List[str]:
        """Write the file (the Dag it defines replaces the old one); the loader's errors."""
        dag, problem = dag_from_spec(text, "", default_name=file)
        if dag is None:
            return [problem or "invalid DAG definition"]
        dag.file = file
        with self.api.engine.lock:
            old = self.dags.get(file)
            dag.suspended = bool(old and old.suspended)  # a separate flag file in Dagu
            self.dags[file] = dag
            self._texts[file] = (dag, text)
        return []

    @staticmethod
    def _errors(text: str) -> List[str]:
        from .api import validate_spec

        return validate_spec(text)

    # -- handlers --------------------------------------------------------------
    def get_spec(self, request: "Request") -> Reply:
        file = request.params["file"]
        text = self.text_of(file)
        if text is None:
            return Reply.error(404 if self.v.flavor == "v2x" else 500, "not_found", "DAG not found")
        errors = self._errors(text)
        return Reply.json(
            200, {"dag": render.dag_details(self.v, self.dags[file]), "spec": text, "errors": errors or None}
        )

    def put_spec(self, request: "Request", body: Dict[str, Any]) -> Reply:
        file = request.params["file"]
        exists = file in self.dags
        lookup_first = self.v.at_least(2, 6, 0)
        if lookup_first and not exists:
            return self.api._generic_500()
        refusal = self._refusal()
        if refusal is not None:
            return refusal
        errors = self._errors(body.get("spec") or "")
        if not errors:
            if not exists:
                return self.api._generic_500()
            errors = self._store(file, body.get("spec") or "")
        if errors:
            return Reply.json(200, {"errors": errors})
        return Reply.empty(200) if self.v.flavor == "v1x" else Reply.json(200, {"errors": None})

    def create(self, request: "Request", body: Dict[str, Any]) -> Reply:
        v = self.v
        name = body.get("name") or ""
        late_refusal = v.at_least(2, 6, 0)  # after the name and spec checks (workspace rules)
        refusal = None if late_refusal else self._refusal()
        if refusal is not None:
            return refusal
        problem = dag_name_problem(name) if v.checks_dag_names else None
        if problem:
            return Reply.error(400, "bad_request", problem)
        text = (body.get("spec") or "") if v.has_validate else ""
        if text.strip():
            errors = self._errors(text)
            if errors:
                return Reply.error(400, "bad_request", "; ".join(errors))
        else:
            text = TEMPLATE if v.at_least(1, 21, 0) else TEMPLATE_1_17
        refusal = self._refusal() if late_refusal else None
        if refusal is not None:
            return refusal
        if name in self.dags:
            return Reply.error(409, "already_exists", "")
        errors = self._store(name, text)
        if errors:
            return Reply.error(400, "bad_request", "; ".join(errors))
        return Reply.json(201, {"name": name})

    def delete(self, request: "Request") -> Reply:
        file = request.params["file"]
        missing = Reply.error(404, "not_found", f"DAG {file} not found")
        if self.v.at_least(2, 6, 0) and file not in self.dags:
            return missing
        refusal = self._refusal()
        if refusal is not None:
            return refusal
        with self.api.engine.lock:
            if self.dags.pop(file, None) is None:
                return missing
            self._texts.pop(file, None)
        return Reply.empty(204)
