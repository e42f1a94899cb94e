"""Who may call Victoria: INVITEs are answered only from allowed source addresses.

A SIP port on a LAN hears from more than the PBX: scanners (friendly-scanner,
sipvicious) dial numbers looking for toll fraud. Victoria only takes calls from
the networks and hosts in ``[sip] allow_invites_from``; by default from loopback
and the registrars she registers with (the PBX that sends her the calls).
Everything else gets 403 before routing, is counted, and never reaches a model
or the database. Host names are resolved once, when the list is built.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Iterable

log = logging.getLogger("victoria.sip")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOG_EVERY_SECONDS = 10.0  # a scan sends thousands of INVITEs: one log line per interval, with the count


class InviteAllowList:
    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)
        self._refused_since_log = 0
        self._logged_at = 0.0

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> InviteAllowList:
        """Networks ("10.0.0.0/8"), addresses and host names (every address they resolve to now)."""
        networks: list[Network] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                networks.extend(_resolve(entry))
        return cls(networks)

    def allows(self, source: str) -> bool:
        """``source`` as pjsip reports it: "10.0.0.5:5060" or "[fd00::5]:5060"."""
        try:
            address = ipaddress.ip_address(_host_of(source))
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def log_refusal(self, source: str, callee: str) -> None:
        """Throttled: the first refusal at once, then at most one line per interval with the count."""
        self._refused_since_log += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_SECONDS:
            log.warning("INVITE for %s from %s refused with 403: not in [sip] allow_invites_from (%d refused "
                        "since the last report)", callee, source, self._refused_since_log)
            self._refused_since_log = 0
            self._logged_at = now


def _host_of(source: str) -> str:
    if source.startswith("["):
        return source[1:source.index("]")]
    return source.rsplit(":", 1)[0] if source.count(":") == 1 else source


def _resolve(host: str) -> list[Network]:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except OSError as exc:
        log.error("allow_invites_from: cannot resolve %r (%s); no calls will be taken from it", host, exc)
        return []
    return [ipaddress.ip_network(info[4][0]) for info in infos]
