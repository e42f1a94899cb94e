"""Watches RTP on the loopback wire (root only: AF_PACKET).

Every packet from a source port in ``ports`` is stamped by the kernel as it
crosses loopback (SO_TIMESTAMPNS), so the sniffer's own scheduling does not
matter. Per stream: a packet's lateness is its arrival minus its RTP timestamp,
relative to the stream's most punctual packet; missing packets are gaps in the
sequence; ``packets(stream)`` gives each packet's time, RTP timestamp and, for
PCMU, its loudness (to find speech on the wire).
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


@dataclass
class StreamReport:
    packets: int
    missing: int
    late_over_20ms: int
    worst_late_ms: float


class RtpSniffer:
    def __init__(self, ports: Container[int], clock_rate: int = 8000, interface: str = "lo") -> None:
        self._ports = ports
        self._clock_rate = clock_rate
        self._socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._socket.bind((interface, 0))
        self._socket.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self._recording = threading.Event()
        self._streams: dict[tuple[int, int, int], list[tuple[float, int, int, float]]] = defaultdict(list)
        self._thread = threading.Thread(target=self._run, name="rtp-sniffer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def record(self, on: bool) -> None:
        (self._recording.set if on else self._recording.clear)()

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
        level = rms_dbfs(g711.mulaw_decode(rtp[12:])) if rtp[1] & 0x7F == 0 else float("nan")
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
