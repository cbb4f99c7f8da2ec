"""dagu-ci: run a Dagu DAG from CI as if it were one of the pipeline's own steps."""

# The one version: setuptools reads it into the package metadata (pyproject.toml's tool.setuptools.dynamic),
# and `--version` prints it without importlib.metadata (~60 ms of start-up). A literal: setuptools parses it.
__version__ = "0.1.0"
