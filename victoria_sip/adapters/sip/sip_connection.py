"""One SIP client connection to a registrar for Victoria's own stdlib tools (the registrar probe, doctor's
registration check), over the account's transport: UDP (one message a datagram), TCP or TLS (a byte stream,
each message framed by its Content-Length). Blocking, with one timeout for every step; whichever thread opens it
uses it.

    with SipConnection(RegistrarTarget.of(account), timeout=2.0) as sip:
        sip.send(request)            # Via: SIP/2.0/{sip.via} {sip.local}
        response = sip.receive()     # one whole SIP message
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

from victoria_sip.adapters.sip.tls_client import TlsRefused, client_context, describe_tls_error
from victoria_sip.settings import SipAccountSettings, TlsSettings, registrar_target

MAX_MESSAGE = 65535  # a registrar's answer to OPTIONS or REGISTER is far smaller; more is not SIP we want
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class RegistrarTarget:
    """Where an account's SIP goes: host, port and transport, and the TLS settings when over TLS."""

    host: str
    port: int
    transport: str = "udp"
    tls: TlsSettings | None = None

    @classmethod
    def of(cls, account: SipAccountSettings) -> RegistrarTarget:
        host, port = registrar_target(account.registrar, account.transport)
        # other transports ignore TLS settings: accounts on one UDP registrar are one target
        return cls(host, port, account.transport, account.tls if account.transport == "tls" else None)

    def __str__(self) -> str:
        where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        return where if self.transport == "udp" else f"{where} over {self.transport.upper()}"


class SipConnection:
    """A connected socket to ``target``; raises OSError (TimeoutError, ConnectionError, ``TlsRefused``)."""

    def __init__(self, target: RegistrarTarget, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self.via = target.transport.upper()  # the Via and Contact transport of what we send
        self._sock: socket.socket | None = None
        self._buffer = b""

    def __enter__(self) -> SipConnection:
        family = socket.getaddrinfo(self.target.host, self.target.port)[0][0]  # gaierror is an OSError
        address = (self.target.host, self.target.port)
        if self.target.transport == "udp":
            self._sock = socket.socket(family, socket.SOCK_DGRAM)
        else:
            self._sock = socket.create_connection(address, self.timeout)
        try:
            self._sock.settimeout(self.timeout)
            if self.target.transport == "udp":
                self._sock.connect(address)
            elif self.target.transport == "tls":
                self._sock = self._handshake(self._sock)
        except BaseException:
            self._sock.close()  # __exit__ runs only after __enter__ returned
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        if self._sock is not None:
            self._sock.close()

    @property
    def local(self) -> str:
        """host:port of our end, for Via and Contact."""
        host, port = self._sock.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def send(self, message: bytes) -> None:
        with self._tls_errors():
            self._sock.sendall(message)

    def receive(self) -> str:
        """The next whole SIP message the registrar sends."""
        with self._tls_errors():
            if self.target.transport == "udp":
                return self._sock.recv(MAX_MESSAGE).decode(errors="replace")
            while (message := self._framed()) is None:
                data = self._sock.recv(MAX_MESSAGE)
                if not data:
                    raise ConnectionError(f"{self.target} closed the connection")
                self._buffer += data
            return message.decode(errors="replace")

    def _framed(self) -> bytes | None:
        """One message off the front of the stream buffer, once all of it (head and body) has arrived."""
        self._buffer = self._buffer.lstrip(b"\r\n")  # keep-alive CRLFs (RFC 5626) between messages
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if len(self._buffer) > MAX_MESSAGE:
                raise ConnectionError(f"{self.target} sent no SIP message head in {MAX_MESSAGE} bytes")
            return None
        length = _CONTENT_LENGTH.search(self._buffer[:head_end])
        end = head_end + 4 + (int(length.group(1)) if length else 0)  # a stream message must say; 0 if not
        if len(self._buffer) < end:
            return None
        message, self._buffer = self._buffer[:end], self._buffer[end:]
        return message

    def _handshake(self, sock: socket.socket) -> ssl.SSLSocket:
        context = client_context(self.target.tls or TlsSettings())
        with self._tls_errors():
            # Python's ssl matches an IP address against the certificate's IP SANs, a name against its DNS SANs
            return context.wrap_socket(sock, server_hostname=self.target.host)

    @contextlib.contextmanager
    def _tls_errors(self) -> Iterator[None]:
        """ssl.SSLError -> TlsRefused, the reason in words; TLS 1.3 reports a refused client certificate only at
        the first read, so reads and writes go through this too."""
        try:
            yield
        except ssl.SSLError as exc:
            ca_file = (self.target.tls or TlsSettings()).trusted_cas
            raise TlsRefused(describe_tls_error(exc, self.target.host, ca_file)) from exc
