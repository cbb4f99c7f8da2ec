"""DAGs for the CLI from a small YAML format (see examples/demo-dags.yaml).

    dags:
      - file: deploy
        name: deploy            # optional, defaults to file
        params: {VERSION: "0.0.0"}
        log_output: separate    # or merged
        required_params: []
        auto_retry_limit: null
        handlers:
          onExit: {script: [{out: cleanup}]}
        steps:
          - name: build
            depends: []
            continue_on_failure: false
            fail_attempts: null
            script:
              - out: "compiling {VERSION}"
              - err: "a warning"
              - raw: "no newline"          # or {text: ..., stream: stderr}
              - sleep: 0.5
              - lines: {count: 100, template: "line {i}"}
              - output: {key: IMAGE_TAG, value: "{VERSION}"}
              - fail: 2                     # or {code: 2, attempts: [1]}
              - approval: true

A bare list of DAGs is accepted too.
"""

from __future__ import annotations

from typing import Any, Dict, List

from .dags import Action, Dag, Step, approval, err, fail, lines, out, output, raw, sleep


class SpecError(ValueError):
    pass


def _action(item: Any, where: str) -> Action:
    if not isinstance(item, dict) or len(item) != 1:
        raise SpecError(f"{where}: each script item is a one-key mapping, got {item!r}")
    ((kind, value),) = item.items()
    if kind == "out":
        return out(str(value))
    if kind == "err":
        return err(str(value))
    if kind == "raw":
        if isinstance(value, dict):
            return raw(str(value.get("text", "")), str(value.get("stream", "stdout")))
        return raw(str(value))
    if kind == "sleep":
        return sleep(float(value))
    if kind == "lines":
        if isinstance(value, dict):
            return lines(
                int(value["count"]), str(value.get("template", "line {i}")), str(value.get("stream", "stdout"))
            )
        return lines(int(value))
    if kind == "fail":
        if isinstance(value, dict):
            return fail(int(value.get("code", 1)), value.get("attempts"))
        return fail(int(value) if value is not True else 1)
    if kind == "approval":
        return approval()
    if kind == "output":
        return output(str(value["key"]), str(value["value"]))
    raise SpecError(f"{where}: unknown script action {kind!r}")


def _step(raw_step: Dict[str, Any], where: str) -> Step:
    if "name" not in raw_step:
        raise SpecError(f"{where}: a step needs a name")
    name = str(raw_step["name"])
    script = raw_step.get("script") or []
    return Step(
        name,
        [_action(item, f"{where} step {name}") for item in script],
        depends=[str(d) for d in raw_step.get("depends") or []],
        continue_on_failure=bool(raw_step.get("continue_on_failure", False)),
        fail_attempts=raw_step.get("fail_attempts"),
        command=raw_step.get("command"),
    )


def dags_from_data(data: Any) -> List[Dag]:
    items = data.get("dags") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise SpecError("expected a list of DAGs (or a mapping with a 'dags' list)")
    result = []
    for index, item in enumerate(items):
        where = f"dag #{index + 1}"
        if not isinstance(item, dict) or "file" not in item:
            raise SpecError(f"{where}: a DAG needs a 'file'")
        handlers = {
            key: _step(dict(value, name=value.get("name", key)), f"{where} handler {key}")
            for key, value in (item.get("handlers") or {}).items()
        }
        result.append(
            Dag(
                file=str(item["file"]),
                name=item.get("name"),
                steps=[_step(s, where) for s in item.get("steps") or []],
                params={str(k): "" if v is None else str(v) for k, v in (item.get("params") or {}).items()},
                log_output=item.get("log_output", "separate"),
                handlers=handlers,
                required_params=[str(p) for p in item.get("required_params") or []],
                auto_retry_limit=item.get("auto_retry_limit"),
                auto_retry_delay=float(item.get("auto_retry_delay", 0.3)),
                description=str(item.get("description", "")),
                labels=[str(x) for x in item.get("labels") or []],
            )
        )
    return result


def load_dags(path: str) -> List[Dag]:
    import yaml  # PyYAML: a dependency of the project, only needed for this format

    with open(path, encoding="utf-8") as handle:
        return dags_from_data(yaml.safe_load(handle))
