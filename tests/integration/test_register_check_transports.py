"""doctor's registration check (one REGISTER, then unregister) over TCP and TLS (issue 16), against a real Kamailio
on loopback: it registers (200) and takes its binding away again; a wrong password is 401 over TLS too; a
registrar certificate not to be trusted is refused with the fault in words, before any REGISTER is sent."""

import socket
import ssl
import threading

import pytest

from tests.support.certificates import TestPki
from tests.support.processes import LOOPBACK, Kamailio, KamailioTls, free_port
from victoria_sip.adapters.sip.register_check import check_registration
from victoria_sip.settings import SipAccountSettings, TlsSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def pki(tmp_path) -> TestPki:
    return TestPki(tmp_path / "pki")


def start(tmp_path, pki: TestPki, server=None, require_client_cert: bool = False) -> Kamailio:
    server = server or pki.issue("registrar")
    kamailio = Kamailio(tmp_path / "kamailio", tcp=True,
                        tls=KamailioTls(server.certificate, server.private_key, pki.ca_file, require_client_cert))
    kamailio.start()
    return kamailio


def account(registrar: str, transport: str, ca_file="", password: str = "reception-secret", **tls) -> SipAccountSettings:
    return SipAccountSettings(name="desk", registrar=f"sip:{registrar}", user="7000", password=password,
                              agent="victoria", transport=transport, tls=TlsSettings(ca_file=str(ca_file), **tls))


def test_the_check_registers_over_tcp_and_over_tls_then_unregisters(tmp_path, pki):
    kamailio = start(tmp_path, pki)
    try:
        over_tcp = check_registration(account(kamailio.tcp_registrar, "tcp"))
        over_tls = check_registration(account(kamailio.tls_registrar, "tls", pki.ca_file))
        wrong_password = check_registration(account(kamailio.tls_registrar, "tls", pki.ca_file, password="nope"))
    finally:
        kamailio.stop()
    assert (over_tcp.code, over_tcp.reason) == (200, "OK"), over_tcp
    assert (over_tls.code, over_tls.reason) == (200, "OK"), over_tls
    assert wrong_password.code == 401, wrong_password
    registers = [line for line in kamailio.log_path.read_text().splitlines() if "REQ REGISTER" in line]
    # a check: REGISTER (challenged), again with credentials, then both again to unregister; the wrong password
    # stops at its second REGISTER
    assert [line.rsplit("proto=", 1)[1] for line in registers] == ["tcp"] * 4 + ["tls"] * 6, registers


def test_the_check_presents_the_client_certificate_a_registrar_asks_for(tmp_path, pki):
    kamailio = start(tmp_path, pki, require_client_cert=True)
    client = pki.issue("victoria", client=True)
    try:
        with_certificate = check_registration(account(kamailio.tls_registrar, "tls", pki.ca_file,
                                                      certificate=str(client.certificate),
                                                      private_key=str(client.private_key)))
        without = check_registration(account(kamailio.tls_registrar, "tls", pki.ca_file))
    finally:
        kamailio.stop()
    assert with_certificate.code == 200, with_certificate
    assert without.code == 0 and "client certificate" in without.reason, without


@pytest.mark.parametrize("flaw, words", [
    ("unknown CA", "the registrar's certificate is not signed by a CA in ca_file ({ca_file})"),
    ("name mismatch", "the registrar's certificate does not cover 127.0.0.1"),
    ("expired", "the registrar's certificate has expired"),
])
def test_an_untrusted_registrar_certificate_is_refused_with_the_fault_in_words(tmp_path, pki, flaw, words):
    certificate = {
        "unknown CA": lambda: TestPki(tmp_path / "stranger", "Nobody's CA").issue("registrar"),
        "name mismatch": lambda: pki.issue("registrar", names=("pbx.example",)),
        "expired": lambda: pki.issue("registrar", days=(-30, -1)),
    }[flaw]()
    kamailio = start(tmp_path, pki, certificate)
    try:
        result = check_registration(account(kamailio.tls_registrar, "tls", pki.ca_file))
        unchecked = check_registration(account(kamailio.tls_registrar, "tls", pki.ca_file, verify=False))
    finally:
        kamailio.stop()
    expected = words.format(ca_file=pki.ca_file)
    assert result.code == 0 and result.reason.startswith(f"{kamailio.tls_registrar} over TLS: {expected}"), result
    assert unchecked.code == 200, "verify = false is the explicit opt-out"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_a_registrar_that_offers_only_an_old_tls_version_is_refused_saying_so(tmp_path, pki):
    """Kamailio cannot be made to offer TLS 1.1 here (OpenSSL's security level), so a one-shot Python server does."""
    issued = pki.issue("registrar")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued.certificate, issued.private_key)
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("ALL:@SECLEVEL=0")
    port = free_port(socket.SOCK_STREAM)
    with socket.create_server((LOOPBACK, port)) as listener:
        listener.settimeout(10)

        def serve_one():
            connection, _ = listener.accept()
            with connection:
                try:
                    context.wrap_socket(connection, server_side=True)
                except (ssl.SSLError, OSError):
                    pass  # the client hung up: that is what is being tested

        server = threading.Thread(target=serve_one, daemon=True)
        server.start()
        result = check_registration(account(f"{LOOPBACK}:{port}", "tls", pki.ca_file))
        server.join(10)
    assert result.code == 0 and "no TLS version in common" in result.reason, result
