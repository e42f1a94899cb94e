"""Watches RTP on the loopback wire (root only: AF_PACKET).

Every packet from a source port in ``ports`` is stamped by the kernel as it
crosses loopback (SO_TIMESTAMPNS), so the sniffer's own scheduling does not
matter. Per stream: a packet's lateness is its arrival minus its RTP timestamp,
relative to the stream's most punctual packet; missing packets are gaps in the
sequence; ``packets(stream)`` gives each packet's time, RTP timestamp and, for
PCMU, its loudness (to find speech on the wire).

A classic BPF filter in the kernel passes only the delivered copy of UDP packets
from the watched port span, so with hundreds of calls on loopback the Python
thread sees a quarter of the traffic; ``dropped`` says whether the kernel ever
had to drop one for it (then "missing" would be the sniffer's, not Victoria's).
"""

from __future__ import annotations

import socket
import struct
import threading
from collections import defaultdict
from collections.abc import Container
from dataclasses import dataclass

import numpy as np

from victoria_sip.audio import g711
from victoria_sip.audio.levels import rms_dbfs

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
PACKET_HOST = 0
ETH_HEADER = 14
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_RCVBUFFORCE = 33
SO_ATTACH_FILTER = 26
RECEIVE_BUFFER = 64 << 20  # a second of 200 calls is ~2 MB: room for the thread to fall behind a while
SKF_AD_PKTTYPE = -0x1000 + 4  # classic BPF: load the packet type (host, outgoing ...)


@dataclass
class StreamReport:
    packets: int
    missing: int
    late_over_20ms: int
    worst_late_ms: float


class RtpSniffer:
    def __init__(self, ports: Container[int], clock_rate: int = 8000, interface: str = "lo",
                 levels: bool = True) -> None:
        self._ports = ports
        self._clock_rate = clock_rate
        self._levels = levels  # each PCMU packet's loudness (latency benches); off for plain counting
        self._socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        if isinstance(ports, range | set | frozenset) and ports:
            _attach_filter(self._socket, min(ports), max(ports) + 1)
        self._socket.bind((interface, 0))
        self._socket.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
        except OSError:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        self._socket.settimeout(0.2)
        self.dropped = 0
        self._stop = threading.Event()
        self._recording = threading.Event()
        self._streams: dict[tuple[int, int, int], list[tuple[float, int, int, float]]] = defaultdict(list)
        self._thread = threading.Thread(target=self._run, name="rtp-sniffer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def record(self, on: bool) -> None:
        (self._recording.set if on else self._recording.clear)()

    def kernel_drops(self) -> int:
        """Packets the kernel dropped for this socket since the last call (its buffer was full)."""
        _, drops = struct.unpack("II", self._socket.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        self.dropped += drops
        return drops

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._socket.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, ancillary, _, address = self._socket.recvmsg(2048, 64)
            except (TimeoutError, OSError):
                continue
            if address[2] != PACKET_HOST or not self._recording.is_set():
                continue  # loopback shows each packet twice: keep the delivered copy
            parsed = self._parse(data)
            if parsed is None:
                continue
            arrival = next((struct.unpack("qq", d[:16]) for level, kind, d in ancillary
                            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS), None)
            if arrival is None:
                continue
            key, sequence, timestamp, level = parsed
            self._streams[key].append((arrival[0] + arrival[1] / 1e9, sequence, timestamp, level))

    def _parse(self, data: bytes):
        if len(data) < ETH_HEADER + 20 + 8 + 12 or data[12:14] != b"\x08\x00":
            return None
        ip = data[ETH_HEADER:]
        header_length = (ip[0] & 0x0F) * 4
        if ip[9] != 17:  # UDP
            return None
        udp = ip[header_length:]
        source, destination = struct.unpack("!HH", udp[:4])
        if source not in self._ports:
            return None
        rtp = udp[8:]
        if rtp[0] >> 6 != 2 or rtp[1] & 0x7F >= 72:  # not RTP version 2, or RTCP
            return None
        sequence, timestamp, ssrc = struct.unpack("!HII", rtp[2:12])
        level = rms_dbfs(g711.mulaw_decode(rtp[12:])) if self._levels and rtp[1] & 0x7F == 0 else float("nan")
        return (source, destination, ssrc), sequence, timestamp, level

    def streams(self) -> dict[tuple[int, int, int], np.ndarray]:
        """(source port, destination port, SSRC) -> rows of (arrival s, RTP timestamp, dBFS)."""
        return {key: np.array([(a, ts, level) for a, _, ts, level in packets]) for key, packets in list(self._streams.items())}

    def clear(self) -> None:
        self._streams.clear()

    def reports(self) -> list[StreamReport]:
        reports = []
        for packets in list(self._streams.values()):
            if len(packets) < 10:
                continue
            first_seq, first_ts = packets[0][1], packets[0][2]
            offsets, sequences = [], []
            for arrival, sequence, timestamp, _ in packets:
                elapsed = ((timestamp - first_ts) & 0xFFFFFFFF) / self._clock_rate
                offsets.append(arrival - elapsed)
                sequences.append((sequence - first_seq) & 0xFFFF)
            punctual = min(offsets)
            late = [(o - punctual) * 1000 for o in offsets]
            expected = max(sequences) + 1
            reports.append(StreamReport(len(packets), max(0, expected - len(set(sequences))),
                                        sum(1 for v in late if v > 20), max(late)))
        return reports


def _attach_filter(sock: socket.socket, low: int, high: int) -> None:
    """Kernel-side: IPv4 UDP, unfragmented, source port in [low, high), the delivered copy only."""
    import ctypes

    def op(code: int, jt: int, jf: int, k: int) -> bytes:
        return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)

    program = b"".join([
        op(0x28, 0, 0, 12),              # ldh [12]            ethertype
        op(0x15, 0, 10, 0x0800),         # jeq IPv4 else drop
        op(0x30, 0, 0, 23),              # ldb [23]            IP protocol
        op(0x15, 0, 8, 17),              # jeq UDP else drop
        op(0x28, 0, 0, 20),              # ldh [20]            fragment offset
        op(0x45, 6, 0, 0x1FFF),          # jset -> drop (a fragment has no UDP header)
        op(0xB1, 0, 0, ETH_HEADER),      # ldxb 4*([14]&0xf)   IP header length
        op(0x48, 0, 0, ETH_HEADER),      # ldh [x+14]          UDP source port
        op(0x35, 0, 3, low),             # jge low else drop
        op(0x35, 2, 0, high),            # jge high -> drop
        op(0x20, 0, 0, SKF_AD_PKTTYPE),  # ld pkttype
        op(0x15, 1, 0, PACKET_HOST),     # jeq host -> accept
        op(0x06, 0, 0, 0),               # drop
        op(0x06, 0, 0, 0x40000),         # accept the whole packet
    ])
    buffer = ctypes.create_string_buffer(program)
    fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
