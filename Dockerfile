# dagu-ci for CI hosts: the GitHub Action, GitLab CI jobs and Jenkins agents.
# Released as ghcr.io/OWNER/dagu-ci:X.Y.Z (.github/workflows/release.yml); build your own with
#   docker build -t dagu-ci .
ARG PYTHON_IMAGE=python:3.12-slim

# The wheel, built in a stage of its own: setuptools and the build's files never reach the image.
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY dagu_ci ./dagu_ci
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM ${PYTHON_IMAGE}

# Logs must stream live; nothing to gain from new .pyc files (pip compiled them at install) or
# pip's checks at run time.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# Dependencies first, read from pyproject.toml: this layer is rebuilt only when they change.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import subprocess, sys, tomllib; \
deps = tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']; \
subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--no-cache-dir', *deps])" \
    && rm /tmp/pyproject.toml

# Then the package itself (no dependency resolution left to do), installed system-wide, so
# `dagu-ci` is on PATH for any uid (Jenkins runs the container as the agent's user).
# The wheel is mounted from its stage, not copied: no layer keeps it.
RUN --mount=type=bind,from=wheel,source=/dist,target=/tmp/dist \
    pip install --no-cache-dir --no-deps /tmp/dist/*.whl
COPY entrypoint.py /usr/local/bin/dagu-ci-entrypoint
# The action's post-entrypoint: the same script, which reads its name as "stop --from-state".
RUN chmod 0755 /usr/local/bin/dagu-ci-entrypoint \
    && ln -s /usr/local/bin/dagu-ci-entrypoint /usr/local/bin/dagu-ci-post

# The release workflow sets these (and docker/metadata-action the rest); a local build says "dev".
ARG VERSION=dev
ARG SOURCE=""
LABEL org.opencontainers.image.title="dagu-ci" \
      org.opencontainers.image.description="Run a Dagu DAG from CI as if it were one of the pipeline's own steps" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="NOASSERTION"

# No USER: GitHub runs container actions as root (its workspace and output files need it),
# and Jenkins picks the agent's uid itself; no HOME or writable directory is needed.
# No CMD either: the action runs the image without arguments, which means "read INPUT_*".
ENTRYPOINT ["python", "/usr/local/bin/dagu-ci-entrypoint"]
