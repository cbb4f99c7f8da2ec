"""Commands other than `run`: the read-only ones (status, logs, dags, history, outputs) and
validate/push (dagsync)."""
