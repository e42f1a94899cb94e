"""The TLS Kamailio fixture itself (issue 16): its TLS listener completes a handshake with a client trusting the
test CA, answers SIP over it, refuses a client trusting another CA, and asks for a client certificate only when
told to; the UDP listener beside it still answers."""

import socket
import ssl
import subprocess
import uuid

import pytest

from tests.support.certificates import TestPki
from tests.support.processes import LOOPBACK, Kamailio, KamailioTls
from victoria_sip.adapters.sip.registrar_probe import ping

pytestmark = pytest.mark.integration


@pytest.fixture
def pki(tmp_path) -> TestPki:
    return TestPki(tmp_path / "pki")


def start(tmp_path, pki: TestPki, require_client_cert: bool = False) -> Kamailio:
    server = pki.issue("registrar")
    kamailio = Kamailio(tmp_path / "kamailio", tls=KamailioTls(server.certificate, server.private_key, pki.ca_file,
                                                                require_client_cert))
    kamailio.start()
    return kamailio


def options_over_tls(port: int, context: ssl.SSLContext, timeout: float = 5.0) -> str:
    """The status line Kamailio answers an OPTIONS with, over a fresh TLS connection."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=LOOPBACK) as tls:
            local_host, local_port = tls.getsockname()[:2]
            tls.sendall((f"OPTIONS sip:{LOOPBACK}:{port};transport=tls SIP/2.0\r\n"
                         f"Via: SIP/2.0/TLS {local_host}:{local_port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
                         f"Max-Forwards: 70\r\nFrom: <sip:test@{LOOPBACK}>;tag={uuid.uuid4().hex[:8]}\r\n"
                         f"To: <sip:{LOOPBACK}:{port}>\r\nCall-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\n"
                         "Content-Length: 0\r\n\r\n").encode())
            return tls.recv(4096).decode(errors="replace").split("\r\n", 1)[0]


def test_the_tls_listener_shakes_hands_with_openssl_and_answers_sip(tmp_path, pki):
    kamailio = start(tmp_path, pki)
    try:
        handshake = subprocess.run(["openssl", "s_client", "-connect", kamailio.tls_registrar, "-CAfile",
                                    str(pki.ca_file), "-verify_return_error", "-brief"],
                                   input="", capture_output=True, text=True, timeout=15)
        assert handshake.returncode == 0, handshake.stderr
        assert "Verification: OK" in handshake.stderr, handshake.stderr
        context = ssl.create_default_context(cafile=pki.ca_file)
        assert options_over_tls(kamailio.tls_port, context) == "SIP/2.0 200 OK"
        assert ping(LOOPBACK, kamailio.port, 2.0), "the UDP listener answers as before"
    finally:
        kamailio.stop()


def test_a_client_trusting_another_ca_is_refused(tmp_path, pki):
    kamailio = start(tmp_path, pki)
    try:
        stranger = TestPki(tmp_path / "stranger", "Nobody's CA")
        with pytest.raises(ssl.SSLCertVerificationError):
            options_over_tls(kamailio.tls_port, ssl.create_default_context(cafile=stranger.ca_file))
    finally:
        kamailio.stop()


def test_with_require_client_cert_only_a_client_with_a_certificate_from_the_ca_gets_an_answer(tmp_path, pki):
    kamailio = start(tmp_path, pki, require_client_cert=True)
    try:
        anonymous = ssl.create_default_context(cafile=pki.ca_file)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            # TLS 1.3 reports the missing certificate after the handshake, at the first read
            options_over_tls(kamailio.tls_port, anonymous)
        client = pki.issue("victoria", client=True)
        known = ssl.create_default_context(cafile=pki.ca_file)
        known.load_cert_chain(client.certificate, client.private_key)
        assert options_over_tls(kamailio.tls_port, known) == "SIP/2.0 200 OK"
    finally:
        kamailio.stop()
