"""One run of a DAG from start to exit code: the request and plan, the start (or attach), the run's
lifecycle with its policies and state file, the backstop that stops the remote run, artifacts and
the result; the runner wires them together for the commands."""
