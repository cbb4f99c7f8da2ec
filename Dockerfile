# dagu-ci for CI hosts: the GitHub Action (runs: image: Dockerfile), GitLab CI jobs and Jenkins agents.
# Build: docker build -t dagu-ci .
FROM python:3.12-slim

# Logs must stream live; nothing to gain from .pyc files or pip's checks at run time.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /opt/dagu-ci

# Dependencies first, read from pyproject.toml: this layer is rebuilt only when they change.
COPY pyproject.toml ./
RUN python -c "import subprocess, sys, tomllib; \
deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--no-cache-dir', *deps])"

# Then the package itself (no dependency resolution left to do), installed system-wide,
# so `dagu-ci` is on PATH for any uid (Jenkins runs the container as the agent's user).
COPY README.md ./
COPY dagu_ci ./dagu_ci
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf build ./*.egg-info
COPY entrypoint.py /usr/local/bin/dagu-ci-entrypoint
# The action's post-entrypoint: the same script, which reads its name as "stop --from-state".
RUN chmod 0755 /usr/local/bin/dagu-ci-entrypoint \
    && ln -s /usr/local/bin/dagu-ci-entrypoint /usr/local/bin/dagu-ci-post

# No USER: GitHub runs container actions as root (its workspace and output files need it),
# and Jenkins picks the agent's uid itself; no HOME or writable directory is needed.
# No CMD either: the action runs the image without arguments, which means "read INPUT_*".
ENTRYPOINT ["python", "/usr/local/bin/dagu-ci-entrypoint"]
