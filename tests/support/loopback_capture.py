"""Everything that crosses the loopback interface while a test runs, as an eavesdropper on the LAN would see it:
UDP and TCP payloads by port (an AF_PACKET socket on ``lo``; needs root, as CI runs).

    with LoopbackCapture() as capture:
        ...  # place a call
    capture.udp_payloads(from_port=40002)   # [bytes, ...]
    capture.tcp_bytes(port=5061)            # both directions of every connection to or from 5061, joined
"""

from __future__ import annotations

import select
import socket
import struct
import threading
from dataclasses import dataclass

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # lo delivers each packet twice: as sent and as received; keep one copy


@dataclass(frozen=True)
class Packet:
    protocol: str  # "udp" or "tcp"
    source_port: int
    destination_port: int
    payload: bytes


class LoopbackCapture:
    def __init__(self) -> None:
        self.packets: list[Packet] = []
        self._socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._socket.bind(("lo", 0))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loopback-capture", daemon=True)

    def __enter__(self) -> LoopbackCapture:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close()

    def udp_payloads(self, from_port: int) -> list[bytes]:
        return [p.payload for p in self.packets if p.protocol == "udp" and p.source_port == from_port]

    def udp_ports(self) -> set[int]:
        return {p.source_port for p in self.packets if p.protocol == "udp"}

    def tcp_bytes(self, port: int) -> bytes:
        return b"".join(p.payload for p in self.packets
                        if p.protocol == "tcp" and port in (p.source_port, p.destination_port))

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._socket], [], [], 0.1)
            if not ready:
                continue
            frame, address = self._socket.recvfrom(65535)
            if address[2] == PACKET_OUTGOING:
                continue
            packet = _parse(frame[14:])  # lo's Ethernet header: 14 bytes of zeros
            if packet is not None:
                self.packets.append(packet)


def _parse(ip: bytes) -> Packet | None:
    if len(ip) < 20 or ip[0] >> 4 != 4:
        return None
    header = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    body = ip[header:total]
    if ip[9] == socket.IPPROTO_UDP and len(body) >= 8:
        source, destination = struct.unpack("!HH", body[:4])
        return Packet("udp", source, destination, body[8:])
    if ip[9] == socket.IPPROTO_TCP and len(body) >= 20:
        source, destination = struct.unpack("!HH", body[:4])
        return Packet("tcp", source, destination, body[(body[12] >> 4) * 4:])
    return None
