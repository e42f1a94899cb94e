"""What an INVITE says about its own encryption, consultation URIs over the account's transport, and TLS
verification failures in words (issue 16)."""

from victoria_sip.adapters.sip.secure_transport import InviteSecurity, describe_verify_status
from victoria_sip.adapters.sip.transfers import over_transport

SRTP_OFFER = (
    "INVITE sip:7000@127.0.0.1:5061;transport=tls SIP/2.0\r\n"
    "Via: SIP/2.0/TLS 127.0.0.1:40001;rport;branch=z9hG4bKabc\r\n"
    "Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKdef\r\n"
    "Content-Type: application/sdp\r\n\r\n"
    "v=0\r\nm=audio 4000 RTP/SAVP 0 101\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
)
PLAIN_OFFER = (
    "INVITE sip:7000@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/udp 127.0.0.1:5070;branch=z9hG4bKx\r\n\r\n"
    "v=0\r\nm=audio 4000 RTP/AVP 0 8 101\r\n"
)


def test_the_top_via_names_the_last_hop_and_the_sdp_says_whether_srtp_is_offered():
    assert InviteSecurity.of(SRTP_OFFER) == InviteSecurity("tls", True)
    assert InviteSecurity.of(PLAIN_OFFER) == InviteSecurity("udp", False)
    # RTP/SAVP without keys is not SDES: nothing Victoria could decrypt with
    assert not InviteSecurity.of(SRTP_OFFER.replace("a=crypto", "a=fingerprint")).srtp_offered
    # "optional" SRTP offers keys on a plain profile: still an offer Victoria can take encrypted
    assert InviteSecurity.of(SRTP_OFFER.replace("RTP/SAVP", "RTP/AVP")).srtp_offered
    assert InviteSecurity.of("").signalling == "udp"


def test_a_consultation_call_keeps_the_accounts_transport_unless_the_uri_names_one():
    assert over_transport("sip:operator@pbx.example", "tls") == "sip:operator@pbx.example;transport=tls"
    assert over_transport("sip:op@pbx:5061;user=phone", "tls") == "sip:op@pbx:5061;transport=tls;user=phone"
    assert over_transport("sip:op@pbx;transport=TCP", "tls") == "sip:op@pbx;transport=TCP"
    assert over_transport("sips:op@pbx", "tls") == "sips:op@pbx"
    assert over_transport("sip:op@pbx", "udp") == "sip:op@pbx"


def test_verification_failures_are_said_in_words():
    assert "unknown CA" in describe_verify_status(1) and "unknown CA" in describe_verify_status(2)
    assert "expired" in describe_verify_status(1 << 2)
    assert "name mismatch" in describe_verify_status(1 << 30)
    assert describe_verify_status(1 << 31, ["Unknown verification error"]) == "Unknown verification error"
