"""dagu-ci: run a Dagu DAG from CI as if it were one of the pipeline's own steps."""

__version__ = "0.1.0"
