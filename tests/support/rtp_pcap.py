"""Impaired RTP for SIPp's ``play_pcap_audio``: a pcap the test builds from a μ-law file, with packets lost,
delayed (jitter) and swapped (reordering) on purpose. SIPp sends each packet at its pcap time, so the
impairments reach Victoria as a real bad network would deliver them, without kernel support (netem).

    stats = write_impaired_pcap(ulaw, out, loss=0.05, jitter_ms=30, reorder=0.02, seed=7)
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

PTIME = 0.020
SAMPLES_PER_PACKET = 160  # 20 ms of 8 kHz PCMU
ADDRESS = bytes([127, 0, 0, 1])


def write_impaired_pcap(ulaw: Path, out: Path, *, loss: float = 0.0, jitter_ms: float = 0.0, reorder: float = 0.0,
                        seed: int = 1) -> dict[str, int]:
    """Write ``ulaw`` as 20 ms RTP packets (PT 0) to ``out``; returns how many were sent, lost, swapped."""
    rng = random.Random(seed)
    audio = ulaw.read_bytes()
    packets = []  # (send time, rtp packet)
    lost = 0
    for index, start in enumerate(range(0, len(audio) - SAMPLES_PER_PACKET + 1, SAMPLES_PER_PACKET)):
        if index > 0 and rng.random() < loss:
            lost += 1
            continue
        header = struct.pack("!BBHII", 0x80, 0x80 if index == 0 else 0x00, index & 0xFFFF,
                             index * SAMPLES_PER_PACKET, 0x5EED5EED)
        delay = rng.uniform(0, jitter_ms / 1000) if jitter_ms else 0.0
        packets.append((index * PTIME + delay, header + audio[start:start + SAMPLES_PER_PACKET]))
    packets.sort(key=lambda p: p[0])  # jitter: sent late, in time order (SIPp waits for each timestamp)
    swapped = 0
    i = 1
    while i < len(packets):
        if rng.random() < reorder:  # this one overtakes the one before it
            (t1, a), (t2, b) = packets[i - 1], packets[i]
            packets[i - 1], packets[i] = (t1, b), (t2, a)
            swapped += 1
            i += 2
        else:
            i += 1
    with open(out, "wb") as pcap:
        pcap.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet link type
        for at, rtp in packets:
            frame = _ethernet_ipv4_udp(rtp)
            seconds = int(at)
            pcap.write(struct.pack("<IIII", seconds, int((at - seconds) * 1e6), len(frame), len(frame)) + frame)
    return {"sent": len(packets), "lost": lost, "swapped": swapped}


def _ethernet_ipv4_udp(payload: bytes, port: int = 6000) -> bytes:
    udp = struct.pack("!HHHH", port, port, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, ADDRESS, ADDRESS)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return b"\x00" * 12 + b"\x08\x00" + ip + udp


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
