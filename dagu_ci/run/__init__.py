"""One run of a DAG from start to exit code: the runner, its state file, the backstop that stops
the remote run, artifacts and the result."""
