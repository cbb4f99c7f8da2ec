"""Commands other than `run`, `follow` and `retry` (those are run.runner's): one module per
command (status, logs, dags, history, outputs, start, stop; validate and push in dagsync),
and what they share: `output` (where they write) and `connect` (the client, the run)."""
