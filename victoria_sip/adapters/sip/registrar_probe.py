"""Is the registrar there? A SIP OPTIONS ping over each account's transport (UDP, TCP or TLS), on its own
thread (stdlib only).

pjsua refreshes a registration only when it nears expiry, so a registrar that
restarts and forgets its bindings (Kamailio with in-memory usrloc does) would
leave Victoria unreachable for up to ``expires`` seconds. The probe notices the
registrar going away and coming back, and the user agent re-registers at once.
Any SIP response (even 404 or 483) counts as "there"; a TLS handshake that fails
(a certificate not to be trusted, no common TLS version) counts as "not there",
and the probe logs why, once each time the reason changes.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable

from victoria_sip.adapters.sip.sip_connection import RegistrarTarget, SipConnection

log = logging.getLogger(__name__)

__all__ = ["RegistrarProbe", "RegistrarTarget", "options_request", "ping", "probe"]


def options_request(target: RegistrarTarget, local: str, via: str) -> bytes:
    branch = "z9hG4bK" + uuid.uuid4().hex[:16]
    tag = uuid.uuid4().hex[:8]
    uri = f"sip:{target.host}:{target.port}" + ("" if via == "UDP" else f";transport={via.lower()}")
    local_host = local.rsplit(":", 1)[0]
    return (
        f"OPTIONS {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/{via} {local};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:victoria-probe@{local_host}>;tag={tag}\r\n"
        f"To: <{uri}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@{local_host}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "User-Agent: Victoria-SIP probe\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def probe(target: RegistrarTarget, timeout: float) -> str | None:
    """None if anything SIP answers an OPTIONS at ``target`` within ``timeout`` seconds, else why not."""
    try:
        with SipConnection(target, timeout) as sip:
            sip.send(options_request(target, sip.local, sip.via))
            if sip.receive().startswith("SIP/2.0 "):
                return None
            return "the answer was not SIP"
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as exc:  # TLS refused, connection refused or reset, ICMP port unreachable, no route, no name
        return exc.strerror or str(exc) or type(exc).__name__


def ping(host: str, port: int, timeout: float) -> bool:
    """True if anything SIP answers an OPTIONS over UDP at host:port within ``timeout`` seconds."""
    return probe(RegistrarTarget(host, port), timeout) is None


class RegistrarProbe:
    """Pings each registrar every ``interval`` seconds; calls ``on_change(target, reachable)`` on a flip."""

    def __init__(
        self,
        targets: list[RegistrarTarget],
        on_change: Callable[[RegistrarTarget, bool], None],
        interval: float = 5.0,
        timeout: float = 2.0,
    ) -> None:
        self._targets = list(dict.fromkeys(targets))
        self._on_change = on_change
        self._interval = interval
        self._timeout = timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="registrar-probe", daemon=True)
        self.reachable: dict[RegistrarTarget, bool] = {}
        self.reasons: dict[RegistrarTarget, str | None] = {}  # why each is not reachable; None: it is

    def start(self) -> None:
        if self._targets:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            # a TLS target may take a connect and a handshake, each up to ``timeout``
            self._thread.join(timeout=2 * self._timeout + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            for target in self._targets:
                self._record(target, probe(target, self._timeout))
            self._stop.wait(self._interval)

    def _record(self, target: RegistrarTarget, reason: str | None) -> None:
        up = reason is None
        before = self.reachable.get(target)
        changed = target not in self.reasons or self.reasons[target] != reason
        self.reachable[target], self.reasons[target] = up, reason
        if before is not None and before != up:
            log.warning("registrar %s %s", target, "is reachable again" if up else f"stopped answering: {reason}")
            self._on_change(target, up)
        elif changed and not up:  # the first failure, or a new reason for one (a certificate replaced, still bad)
            log.warning("registrar %s is not reachable: %s", target, reason)
