"""SIP over TLS and SRTP (issue 16): the pjsua2 settings for each, what an INVITE says about its own encryption,
and why a TLS connection was refused, in an admin's words."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pjsua2 as pj

from victoria_sip.settings import TlsSettings

TLS_HANDSHAKE_MS = 5000  # a peer that connects and stalls mid-handshake holds a connection no longer than this
# pjsua's "mandatory" refuses a plain-RTP offer before Victoria hears of the call (nothing logged, counted or
# stored), so pjsua is told "optional" and Victoria refuses the offer herself (incoming_calls.py). The cost: her
# consultation calls from a mandatory account offer SRTP without insisting (RTP/AVP with a=crypto).
SRTP_USE = {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
            "mandatory": pj.PJMEDIA_SRTP_OPTIONAL}
SECURE_MEDIA_PROTOCOLS = (pj.PJMEDIA_TP_PROTO_RTP_SAVP, pj.PJMEDIA_TP_PROTO_RTP_SAVPF)


def tls_config(tls: TlsSettings) -> pj.TlsConfig:
    """A TLS transport presenting ``certificate`` (when set; a client certificate when the PBX asks for one),
    trusting ``ca_file``, TLS 1.2 or 1.3 only, checking the far end's chain and name unless ``verify`` is off."""
    config = pj.TlsConfig()
    config.CaListFile = tls.trusted_cas
    config.certFile = tls.certificate
    config.privKeyFile = tls.private_key
    config.proto = pj.PJ_SSL_SOCK_PROTO_TLS1_2 | pj.PJ_SSL_SOCK_PROTO_TLS1_3
    config.verifyServer = tls.verify
    config.verifyClient = False  # a PBX connecting to the listener need not have a client certificate
    config.requireClientCert = False
    config.msecTimeout = TLS_HANDSHAKE_MS
    return config


def configure_srtp(media: pj.AccountMediaConfig, mode: str) -> None:
    """SDES-keyed SRTP (RFC 4568) for an account's calls: ``off``, ``optional`` or ``mandatory``."""
    media.srtpUse = SRTP_USE[mode]
    media.srtpSecureSignaling = 0 if mode == "off" else 1  # SDES keys only over a TLS hop, never in clear
    keyings = pj.IntVector()
    keyings.append(pj.PJMEDIA_SRTP_KEYING_SDES)
    media.srtpOpt.keyings = keyings


@dataclass(frozen=True, slots=True)
class InviteSecurity:
    """What an INVITE shows of its encryption: the transport of its last hop (top Via) and whether its SDP
    offers SRTP with SDES keys."""

    signalling: str  # "tls", "tcp", "udp"
    srtp_offered: bool

    @classmethod
    def of(cls, message: str) -> InviteSecurity:
        head, _, body = message.partition("\r\n\r\n")
        via = re.search(r"^(?:Via|v)\s*:\s*SIP\s*/\s*2\.0\s*/\s*(\w+)", head, re.IGNORECASE | re.MULTILINE)
        audio = re.search(r"^m=audio \d+(?:/\d+)? (\S+)", body, re.MULTILINE)
        crypto = re.search(r"^a=crypto:", body, re.MULTILINE)
        secure_profile = audio is not None and "SAVP" in audio.group(1).upper()
        return cls(via.group(1).lower() if via else "udp", bool(crypto) and (secure_profile or audio is not None))

    def describe_offer(self) -> str:
        return "SRTP (SDES)" if self.srtp_offered else "plain RTP (no a=crypto)"


# pjlib's verify-status bits (pj_ssl_cert_verify_flag_t) in the words an admin searches the docs for
_VERIFY_PROBLEMS = (
    (1 << 0, "the certificate's issuer was not found (unknown CA: is the intermediate in the chain?)"),
    (1 << 1, "the certificate is not signed by a CA in ca_file (unknown CA, or a self-signed certificate)"),
    (1 << 2, "the certificate has expired or is not valid yet"),
    (1 << 3, "the certificate is not in a format OpenSSL reads"),
    (1 << 4, "the certificate is not meant for this use (extended key usage)"),
    (1 << 5, "the certificate's issuer does not match its CA"),
    (1 << 7, "the certificate has been revoked"),
    (1 << 8, "the certificate's chain is too long"),
    (1 << 9, "the certificate has a weak signature"),
    (1 << 30, "the certificate's names do not cover the host Victoria connected to (name mismatch)"),
)


def describe_verify_status(status: int, messages: list[str] | tuple[str, ...] = ()) -> str:
    words = [text for bit, text in _VERIFY_PROBLEMS if status & bit]
    return "; ".join(words) or "; ".join(m.strip() for m in messages if m.strip()) or f"verify status {status:#x}"
