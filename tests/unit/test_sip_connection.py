"""Stream framing of SipConnection (TCP, TLS): whole messages by Content-Length, however the bytes arrive."""

from victoria_sip.adapters.sip.sip_connection import RegistrarTarget, SipConnection
from victoria_sip.settings import SipAccountSettings, TlsSettings

OK = b"SIP/2.0 200 OK\r\nCSeq: 1 OPTIONS\r\nContent-Length: 4\r\n\r\nbody"
TRYING = b"SIP/2.0 100 Trying\r\nl: 0\r\n\r\n"


def framer(*chunks: bytes) -> list[bytes | None]:
    """What the connection frames after each chunk arrives (None: not a whole message yet)."""
    connection = SipConnection(RegistrarTarget("127.0.0.1", 5060, "tcp"), timeout=1.0)
    framed = []
    for chunk in chunks:
        connection._buffer += chunk
        framed.append(connection._framed())
    return framed


def test_a_message_split_across_reads_is_framed_once_its_body_is_in():
    assert framer(OK[:10], OK[10:-2], OK[-2:]) == [None, None, OK]


def test_two_messages_in_one_read_come_out_one_by_one_and_keepalives_are_skipped():
    connection = SipConnection(RegistrarTarget("127.0.0.1", 5060, "tcp"), timeout=1.0)
    connection._buffer = b"\r\n\r\n" + TRYING + OK
    assert [connection._framed(), connection._framed(), connection._framed()] == [TRYING, OK, None]


def test_a_target_takes_the_accounts_transport_default_port_and_tls_only_over_tls():
    tls = TlsSettings(ca_file="/etc/victoria/ca.pem")

    def target(transport: str, registrar: str = "sip:pbx.example") -> RegistrarTarget:
        return RegistrarTarget.of(SipAccountSettings(name="a", registrar=registrar, user="7000", password="x",
                                                     agent="victoria", transport=transport, tls=tls))

    assert target("tls") == RegistrarTarget("pbx.example", 5061, "tls", tls)
    assert str(target("tls")) == "pbx.example:5061 over TLS"
    assert target("udp", "sip:pbx.example:5070") == RegistrarTarget("pbx.example", 5070)
    assert str(target("udp", "sip:pbx.example:5070")) == "pbx.example:5070"
    assert target("tcp").tls is None and target("tcp").port == 5060
