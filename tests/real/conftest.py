"""The real-server suite: each test runs against every real Dagu version built in
.tools/dagu (see builds.py) that has the feature it needs.

A wanted version that could not be built is named, with the reason, at the end of the run,
and in CI (CI=true) a session without any real server fails: see tests/conftest.py, whose
hooks also run in the xdist controller, which never loads this file.
"""

from __future__ import annotations

from typing import Callable, Iterator, List

import pytest

from tests.real import builds
from tests.real.server import RealDagu


def _version_key(version: str) -> tuple:
    return tuple(int(part) for part in version.split("."))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "real_version" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("dagu")
    since = _version_key(marker.kwargs.get("since", "0.0.0")) if marker else (0, 0, 0)
    before = _version_key(marker.kwargs.get("before", "99.0.0")) if marker else (99, 0, 0)
    versions = [v for v in sorted(builds.available(), key=_version_key) if since <= _version_key(v) < before]
    if versions:
        metafunc.parametrize("real_version", versions)
    else:
        wanted = [w.version for w in builds.WANTED if since <= _version_key(w.version) < before]
        # Not silent: the summary says which versions are missing, and why.
        metafunc.parametrize(
            "real_version",
            [
                pytest.param(
                    None,
                    marks=pytest.mark.skip(reason=f"no real Dagu built among {', '.join(wanted)}: see the summary"),
                )
            ],
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dagu(since=, before=): the real Dagu versions a test applies to")


@pytest.fixture
def real_dagu(real_version: str) -> Iterator[Callable[..., RealDagu]]:
    """make(dags={name: yaml}, auth=..., base_path=..., tls=...) -> a started server."""
    started: List[RealDagu] = []

    def make(dags=None, **options) -> RealDagu:  # type: ignore[no-untyped-def]
        server = RealDagu(real_version, builds.BY_VERSION[real_version].binary, **options)
        started.append(server)
        return server.start(dags)

    yield make
    for server in started:
        server.stop()
