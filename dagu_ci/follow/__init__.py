"""Following a run to its end: the follower, the log tailer, the events it emits, sub-DAG runs
and the end-of-run checks."""
