"""TLS for Victoria's own stdlib SIP clients (the registrar probe, doctor's registration check): the client
context an account's TLS settings call for, and why a handshake with the registrar failed, in an admin's words.

pjsua2 does its own TLS (secure_transport.py); this is the same policy in Python's ``ssl``: TLS 1.2 or later,
the account's CAs, the registrar's name checked unless ``verify`` is off, the client certificate when set.
"""

from __future__ import annotations

import ssl

from victoria_sip.settings import TlsSettings

# OpenSSL's X509_V_ERR_* codes, as SSLCertVerificationError.verify_code carries them
_UNKNOWN_CA = {2, 18, 19, 20, 21}  # issuer not found, self-signed leaf or chain, leaf signature unverifiable
_NOT_YET_VALID, _EXPIRED, _INVALID_PURPOSE, _REVOKED = 9, 10, 26, 23
_NAME_MISMATCH = {62, 64}  # host name, IP address
# OpenSSL's reason names for a handshake that failed before any certificate was judged
_NO_SHARED_CIPHER = {"NO_SHARED_CIPHER", "SSLV3_ALERT_HANDSHAKE_FAILURE", "NO_CIPHERS_AVAILABLE"}
_NO_SHARED_VERSION = {"UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE",
                      "UNKNOWN_PROTOCOL"}
_NOT_TLS = {"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE"}
_CLIENT_CERT_REFUSED = {"TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_BAD_CERTIFICATE",
                        "TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
                        "SSLV3_ALERT_CERTIFICATE_EXPIRED", "TLSV1_ALERT_ACCESS_DENIED"}


class TlsRefused(ConnectionError):
    """The TLS handshake with the registrar failed; the message says why in an admin's words."""


def client_context(tls: TlsSettings) -> ssl.SSLContext:
    """A client context trusting ``tls.trusted_cas``, checking the server's chain and name unless ``verify`` is
    off, TLS 1.2 or later, presenting ``certificate`` when set (for a registrar that asks: mutual TLS)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.verify:
        context.load_verify_locations(cafile=tls.trusted_cas)
    else:  # the explicit opt-out config.py logs
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.certificate:
        context.load_cert_chain(tls.certificate, tls.private_key)
    return context


def describe_tls_error(exc: ssl.SSLError, host: str, ca_file: str) -> str:
    """Why the handshake with the registrar at ``host`` failed, with OpenSSL's own words after it (to search for).

    SSLCertVerificationError(unable to get local issuer certificate) ->
        "the registrar's certificate is not signed by a CA in ca_file (/etc/victoria/ca.pem);
         OpenSSL: unable to get local issuer certificate"
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"{_certificate_fault(exc.verify_code, host, ca_file)}; OpenSSL: {exc.verify_message}"
    openssl = f"OpenSSL: {exc.reason or exc}"
    if isinstance(exc, ssl.SSLEOFError):
        return f"the registrar closed the connection during the TLS handshake; {openssl}"
    if exc.reason in _NO_SHARED_CIPHER:
        return f"Victoria and the registrar have no TLS cipher in common; {openssl}"
    if exc.reason in _NO_SHARED_VERSION:
        return f"Victoria and the registrar have no TLS version in common (Victoria needs TLS 1.2 or later); {openssl}"
    if exc.reason in _NOT_TLS:
        return f"the registrar does not speak TLS on this port (is it its UDP/TCP port?); {openssl}"
    if exc.reason in _CLIENT_CERT_REFUSED:
        return ("the registrar refused Victoria's client certificate, or wants one and the account has none "
                f"(certificate, private_key); {openssl}")
    return f"the TLS handshake failed; {openssl}"


def _certificate_fault(code: int, host: str, ca_file: str) -> str:
    if code in _UNKNOWN_CA:
        return f"the registrar's certificate is not signed by a CA in ca_file ({ca_file})"
    if code in _NAME_MISMATCH:
        return f"the registrar's certificate does not cover {host} (its names are another host's)"
    if code == _EXPIRED:
        return "the registrar's certificate has expired"
    if code == _NOT_YET_VALID:
        return "the registrar's certificate is not valid yet (is a clock wrong?)"
    if code == _INVALID_PURPOSE:
        return "the registrar's certificate is not meant for a TLS server (extended key usage)"
    if code == _REVOKED:
        return "the registrar's certificate has been revoked"
    return "the registrar's certificate was refused"
