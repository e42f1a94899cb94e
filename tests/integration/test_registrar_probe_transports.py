"""The registrar probe over each account's transport (issue 16), against a real Kamailio on loopback: an OPTIONS
over UDP, TCP and TLS is answered; over TLS, a registrar certificate not to be trusted (unknown CA, another
name, expired) makes the registrar "not reachable", logged once with the reason in words."""

import logging
import time

import pytest

from tests.support.certificates import TestPki
from tests.support.processes import LOOPBACK, Kamailio, KamailioTls, free_port
from victoria_sip.adapters.sip.registrar_probe import RegistrarProbe, RegistrarTarget, probe
from victoria_sip.settings import TlsSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def pki(tmp_path) -> TestPki:
    return TestPki(tmp_path / "pki")


def tls_kamailio(tmp_path, pki: TestPki, server=None, tcp: bool = False) -> Kamailio:
    server = server or pki.issue("registrar")
    kamailio = Kamailio(tmp_path / "kamailio", tcp=tcp,
                        tls=KamailioTls(server.certificate, server.private_key, pki.ca_file))
    kamailio.start()
    return kamailio


def tls_target(kamailio: Kamailio, ca_file, **tls) -> RegistrarTarget:
    return RegistrarTarget(LOOPBACK, kamailio.tls_port, "tls", TlsSettings(ca_file=str(ca_file), **tls))


def test_the_probe_is_answered_over_udp_tcp_and_tls(tmp_path, pki):
    kamailio = tls_kamailio(tmp_path, pki, tcp=True)
    try:
        assert probe(RegistrarTarget(LOOPBACK, kamailio.port), 2.0) is None
        assert probe(RegistrarTarget(LOOPBACK, kamailio.tcp_port, "tcp"), 2.0) is None
        assert probe(tls_target(kamailio, pki.ca_file), 2.0) is None
        log = kamailio.log_path.read_text()
        for uri in (f"sip:127.0.0.1:{kamailio.tcp_port};transport=tcp", f"sip:127.0.0.1:{kamailio.tls_port};transport=tls"):
            assert f"REQ OPTIONS {uri} from sip:victoria-probe@" in log, "the probe reached Kamailio over TCP and TLS"
    finally:
        kamailio.stop()


def test_the_probe_over_tls_presents_the_client_certificate_when_the_registrar_asks(tmp_path, pki):
    server = pki.issue("registrar")
    kamailio = Kamailio(tmp_path / "kamailio", tls=KamailioTls(server.certificate, server.private_key, pki.ca_file,
                                                                require_client_cert=True))
    kamailio.start()
    try:
        client = pki.issue("victoria", client=True)
        assert probe(tls_target(kamailio, pki.ca_file, certificate=str(client.certificate),
                                private_key=str(client.private_key)), 2.0) is None
        anonymous = probe(tls_target(kamailio, pki.ca_file), 2.0)
        assert anonymous is not None and "client certificate" in anonymous, anonymous
    finally:
        kamailio.stop()


def test_the_probe_over_tls_to_a_closed_port_or_a_udp_port_is_not_reachable(tmp_path, pki):
    kamailio = tls_kamailio(tmp_path, pki)
    try:
        assert probe(RegistrarTarget(LOOPBACK, free_port(), "tls", TlsSettings(ca_file=str(pki.ca_file))), 2.0)
        # nothing listens for TCP on the UDP port: refused, not a hang
        assert probe(RegistrarTarget(LOOPBACK, kamailio.port, "tcp"), 2.0) == "Connection refused"
    finally:
        kamailio.stop()


@pytest.mark.parametrize("flaw, words", [
    ("unknown CA", "the registrar's certificate is not signed by a CA in ca_file ({ca_file})"),
    ("name mismatch", "the registrar's certificate does not cover 127.0.0.1"),
    ("expired", "the registrar's certificate has expired"),
])
def test_an_untrusted_registrar_certificate_is_not_reachable_and_logged_once_with_the_reason(
        tmp_path, pki, caplog, flaw, words):
    certificate = {
        "unknown CA": lambda: TestPki(tmp_path / "stranger", "Nobody's CA").issue("registrar"),
        "name mismatch": lambda: pki.issue("registrar", names=("pbx.example",)),
        "expired": lambda: pki.issue("registrar", days=(-30, -1)),
    }[flaw]()
    kamailio = tls_kamailio(tmp_path, pki, certificate)
    target = tls_target(kamailio, pki.ca_file)
    flips = []
    registrar_probe = RegistrarProbe([target], lambda *flip: flips.append(flip), interval=0.1, timeout=2.0)
    caplog.set_level(logging.WARNING, logger="victoria_sip.adapters.sip.registrar_probe")
    try:
        registrar_probe.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(caplog.records) < 1:
            time.sleep(0.1)
        time.sleep(1.0)  # several more probes, each refused for the same reason
    finally:
        registrar_probe.stop()
        kamailio.stop()
    assert registrar_probe.reachable[target] is False and flips == []
    expected = words.format(ca_file=pki.ca_file)
    [record] = caplog.records  # once, not once per probe
    message = record.getMessage()
    assert message.startswith(f"registrar 127.0.0.1:{kamailio.tls_port} over TLS is not reachable: {expected}"), message
    assert "OpenSSL: " in message, "OpenSSL's own words follow, to search for"
