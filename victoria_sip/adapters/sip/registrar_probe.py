"""Is the registrar there? A SIP OPTIONS ping over UDP, on its own thread (stdlib only).

pjsua refreshes a registration only when it nears expiry, so a registrar that
restarts and forgets its bindings (Kamailio with in-memory usrloc does) would
leave Victoria unreachable for up to ``expires`` seconds. The probe notices the
registrar going away and coming back, and the user agent re-registers at once.
Any SIP response (even 404 or 483) counts as "there".
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable

log = logging.getLogger(__name__)


def options_request(host: str, port: int, local_host: str, local_port: int) -> bytes:
    branch = "z9hG4bK" + uuid.uuid4().hex[:16]
    tag = uuid.uuid4().hex[:8]
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {local_host}:{local_port};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:victoria-probe@{local_host}>;tag={tag}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@{local_host}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "User-Agent: Victoria-SIP probe\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def ping(host: str, port: int, timeout: float) -> bool:
    """True if anything SIP answers an OPTIONS at host:port within ``timeout`` seconds."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][0]
    except socket.gaierror:
        return False
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
            local_host, local_port = sock.getsockname()[:2]
            sock.send(options_request(host, port, local_host, local_port))
            return sock.recv(4096).startswith(b"SIP/2.0 ")
        except OSError:  # timeout, ICMP port unreachable, no route
            return False


class RegistrarProbe:
    """Pings each registrar every ``interval`` seconds; calls ``on_change(target, reachable)`` on a flip."""

    def __init__(
        self,
        targets: list[tuple[str, int]],
        on_change: Callable[[tuple[str, int], bool], None],
        interval: float = 5.0,
        timeout: float = 2.0,
    ) -> None:
        self._targets = list(dict.fromkeys(targets))
        self._on_change = on_change
        self._interval = interval
        self._timeout = timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="registrar-probe", daemon=True)
        self.reachable: dict[tuple[str, int], bool] = {}

    def start(self) -> None:
        if self._targets:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._timeout + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            for target in self._targets:
                up = ping(*target, timeout=self._timeout)
                before = self.reachable.get(target)
                self.reachable[target] = up
                if before is not None and before != up:
                    log.warning("registrar %s:%d %s", *target, "is reachable again" if up else "stopped answering")
                    self._on_change(target, up)
            self._stop.wait(self._interval)
