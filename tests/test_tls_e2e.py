"""TLS: a server certificate from a private CA, and mutual TLS with a client certificate."""

import pytest

from tests.conftest import run_cli
from tests.fakedagu import Dag, Step, out
from tests.test_run_e2e import assert_clean_error, log_lines
from tests.tlsfiles import make_tls_files


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls_files(str(tmp_path_factory.mktemp("tls")))


# CI images often set this; requests would let it override --ca-cert and --insecure.
CA_BUNDLE_ENV = {"REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt"}


def tls_server(fake_factory, tls, require_client_cert):
    dag = Dag(file="deploy", steps=[Step("s", [out("over tls")])])
    return fake_factory(dag, tls=tls.server_context(require_client_cert))


def test_private_ca(fake_factory, tls):
    server = tls_server(fake_factory, tls, require_client_cert=False)
    assert server.url.startswith("https://")
    result = run_cli(
        "run", "deploy", "--url", server.url, "--ca-cert", tls.ca, "--poll-interval", "0.1", env=CA_BUNDLE_ENV
    )
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["over tls"]


def test_unknown_ca_is_a_clear_error(fake_factory, tls):
    server = tls_server(fake_factory, tls, require_client_cert=False)
    assert_clean_error(run_cli("run", "deploy", "--url", server.url), 2, r"TLS verification failed .*--ca-cert")


def test_insecure_warns_and_works(fake_factory, tls):
    server = tls_server(fake_factory, tls, require_client_cert=False)
    result = run_cli("run", "deploy", "--url", server.url, "--insecure", "--poll-interval", "0.1", env=CA_BUNDLE_ENV)
    assert result.code == 0, result.output
    assert "TLS verification is off" in result.stdout
    assert "Warning" not in result.stderr  # no urllib3 noise


def test_mutual_tls(fake_factory, tls):
    server = tls_server(fake_factory, tls, require_client_cert=True)
    common = ("run", "deploy", "--url", server.url, "--ca-cert", tls.ca, "--poll-interval", "0.1")
    result = run_cli(*common, "--client-cert", tls.client_cert, "--client-key", tls.client_key)
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["over tls"]
    assert_clean_error(run_cli(*common), 2, r"TLS handshake .* failed.*--client-cert")


def test_client_key_without_cert_is_usage_error(tls):
    assert_clean_error(run_cli("run", "deploy", "--client-key", tls.client_key), 2, r"--client-key needs --client-cert")
