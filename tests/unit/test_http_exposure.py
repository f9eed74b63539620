"""Where the API may listen: off loopback only with TLS (``http.tls``) or an explicit
``http.allow_plaintext: true`` (a TLS-terminating proxy in front); refused otherwise, at start
and by ``ivr check-config``, naming service.yaml and the key. With TLS the endpoint is
Twisted's SSL endpoint over the configured files."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint, serverFromString
from twisted.internet.testing import MemoryReactor

from hotline.cli import main as ivr_main
from hotline.endpoints import http_endpoint, http_exposure_problems, is_loopback
from ivr.config import DEFAULT_CONFIG_DIR, HTTPListen, TLSFiles

SERVICE_YAML = Path("/etc/hotline/service.yaml")


def self_signed(directory: Path) -> TLSFiles:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hotline.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert:1.pem", directory / "key=1.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return TLSFiles(cert_file=str(cert_file), key_file=str(key_file))


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("", False), ("::", False), ("10.0.0.5", False),
    ("hotline.example", False),
])
def test_loopback(host: str, loopback: bool) -> None:
    """Loopback is 127/8, ::1 and localhost; every interface and other names are not."""
    assert is_loopback(host) is loopback


def test_plaintext_off_loopback_is_refused_with_file_and_key() -> None:
    """``http.host: 0.0.0.0`` without ``http.tls`` is one problem naming service.yaml and
    ``http.host``, saying how to fix it."""
    (problem,) = http_exposure_problems(HTTPListen(host="0.0.0.0", port=8090), SERVICE_YAML)
    assert problem.startswith(f"{SERVICE_YAML}: http.host: 0.0.0.0 is not a loopback address")
    assert "http.tls" in problem and "http.allow_plaintext: true" in problem


def test_allowed_on_loopback_behind_a_proxy_or_with_tls(tmp_path: Path) -> None:
    """Loopback, an explicit ``allow_plaintext`` or TLS files that exist are all accepted."""
    tls = self_signed(tmp_path)
    for http in (HTTPListen(port=8090),
                 HTTPListen(host="0.0.0.0", port=8090, allow_plaintext=True),
                 HTTPListen(host="0.0.0.0", port=8090, tls=tls)):
        assert http_exposure_problems(http, SERVICE_YAML) == []


def test_missing_tls_files_are_named(tmp_path: Path) -> None:
    """A TLS certificate or key that is not there is a problem naming ``http.tls.<key>``."""
    http = HTTPListen(host="0.0.0.0", port=8443,
                      tls=TLSFiles(cert_file=str(tmp_path / "no.pem"), key_file="/nope.key"))
    problems = http_exposure_problems(http, SERVICE_YAML)
    assert [p.split(": ")[1] for p in problems] == ["http.tls.cert_file", "http.tls.key_file"]


def test_endpoint_strings() -> None:
    """Plain HTTP is a ``tcp:`` endpoint on the interface; with TLS an ``ssl:`` endpoint
    with the key and certificate, colons in an IPv6 host or a path escaped."""
    assert http_endpoint(HTTPListen(port=8090)) == "tcp:8090:interface=127.0.0.1"
    assert http_endpoint(HTTPListen(host="::1", port=8090)) == r"tcp:8090:interface=\:\:1"
    tls = TLSFiles(cert_file="/etc/hotline/tls/cert.pem", key_file="/etc/hotline/tls/a:b.key")
    assert http_endpoint(HTTPListen(host="10.0.0.5", port=8443, tls=tls)) == (
        r"ssl:8443:interface=10.0.0.5:privateKey=/etc/hotline/tls/a\:b.key"
        ":certKey=/etc/hotline/tls/cert.pem"
    )


def test_tls_endpoint_is_twisted_ssl_over_the_files(tmp_path: Path) -> None:
    """The ``ssl:`` string builds Twisted's SSL server endpoint from the real files (paths
    with ``:`` and ``=`` included), listening on the configured interface and port."""
    tls = self_signed(tmp_path)
    reactor = MemoryReactor()
    endpoint = serverFromString(reactor, http_endpoint(
        HTTPListen(host="127.0.0.1", port=8443, tls=tls)))
    assert isinstance(endpoint, SSL4ServerEndpoint)
    assert (endpoint._port, endpoint._interface) == (8443, "127.0.0.1")
    plain = serverFromString(reactor, http_endpoint(HTTPListen(port=8090)))
    assert isinstance(plain, TCP4ServerEndpoint)


def test_check_config_refuses_plaintext_off_loopback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``ivr check-config`` with ``HOTLINE__HTTP__HOST=0.0.0.0`` exits 1 naming
    service.yaml's ``http.host``; ``HOTLINE__HTTP__ALLOW_PLAINTEXT=true`` makes it pass."""
    config_dir = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config_dir)
    monkeypatch.setenv("HOTLINE__SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("HOTLINE__ASTERISK__SOUNDS_DIR", str(tmp_path / "sounds"))
    monkeypatch.setenv("HOTLINE__HTTP__HOST", "0.0.0.0")
    assert ivr_main(["--config", str(config_dir), "check-config"]) == 1
    assert f"{config_dir / 'service.yaml'}: http.host: 0.0.0.0" in capsys.readouterr().err
    monkeypatch.setenv("HOTLINE__HTTP__ALLOW_PLAINTEXT", "true")
    assert ivr_main(["--config", str(config_dir), "check-config"]) == 0
