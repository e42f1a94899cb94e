"""How long audio spends inside pjmedia, both ways: a call answered by an echo, timed on the wire.

    sudo python -m bench media-delay [--clicks 20]

Victoria's own SIP user agent (``SipUserAgent``, configured as in ``serve``)
answers a SIPp call; the handler echoes every frame it reads straight back
onto the playout queue (polling every 2 ms), so no model and no endpointing is
on the path. SIPp streams clicks (20 ms bursts a second apart). The kernel
stamps each RTP packet on loopback: a click's round trip is the first loud
packet Victoria sends minus the first loud packet it received. That is
pjmedia's inbound path (jitter buffer, decode, bridge) plus its outbound path
(bridge, encode), plus at most one 2 ms poll of ours.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from bench.rtp_sniffer import RtpSniffer
from tests.support.processes import LOOPBACK, free_port
from victoria_sip.adapters.sip import SipUserAgent
from victoria_sip.audio import g711
from victoria_sip.settings import HostPort, SipSettings
from victoria_sip.domain import CallId, EndReason
from victoria_sip.domain.ports import CallLeg, SpeechAudio

RESULTS = Path(__file__).parent / "results"
SCENARIO = Path(__file__).parents[1] / "tests" / "support" / "sipp" / "uac_speech_pcmu.xml"
RTP_BASE = 21000
LOUD_DBFS = -30.0


class EchoHandler:
    """A ``CallHandler`` that plays back whatever the caller sends, as soon as it arrives."""

    def __init__(self) -> None:
        self.tasks: dict[CallId, asyncio.Task[None]] = {}
        self.answered = threading.Event()

    def route(self, callee: str, account: str | None) -> str | None:
        return "echo"

    def admit(self, agent: str) -> None:
        return None  # every call is taken: this bench measures the media path alone

    async def call_answered(self, leg: CallLeg, agent: str, overload=None) -> None:
        self.tasks[leg.call_id] = asyncio.create_task(self._echo(leg))
        self.answered.set()

    async def call_ended(self, call_id: CallId, reason: EndReason) -> None:
        if task := self.tasks.pop(call_id, None):
            task.cancel()

    async def call_rejected(self, call_id: CallId, caller: str, callee: str, reason: EndReason) -> None:
        pass

    async def keypad_pressed(self, call_id: CallId, key: str) -> None:
        pass

    @staticmethod
    async def _echo(leg: CallLeg) -> None:
        while True:
            audio = leg.read_audio()
            if audio:
                leg.play(SpeechAudio(audio, leg.sample_rate))
            await asyncio.sleep(0.002)


def clicks_file(work: Path, clicks: int) -> Path:
    rate = 8000
    second = np.zeros(rate, np.int16)
    t = np.arange(rate // 50) / rate
    second[: rate // 50] = (12000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    audio = np.concatenate([np.zeros(rate, np.int16)] + [second] * clicks)
    path = work / "clicks.ulaw"
    path.write_bytes(g711.mulaw_encode(audio).tobytes())
    return path


def onsets(rows: np.ndarray) -> list[float]:
    """Arrival times of the first loud packet of each burst."""
    times, last = [], -10.0
    for arrival, _, level in rows:
        if level > LOUD_DBFS and arrival - last > 0.5:
            times.append(arrival)
        if level > LOUD_DBFS:
            last = arrival
    return times


async def run(clicks: int, work: Path, sample_rate: int) -> list[float]:
    sip_port, media_port = free_port(), RTP_BASE + 500
    handler = EchoHandler()
    settings = SipSettings(listen=HostPort(LOOPBACK, sip_port), rtp_port=RTP_BASE, rtp_port_range=100)
    user_agent = SipUserAgent(settings, handler, asyncio.get_running_loop(), sample_rate=sample_rate)
    sniffer = RtpSniffer(set(range(RTP_BASE, RTP_BASE + 100)) | {media_port})
    sniffer.start()
    sniffer.record(True)
    await asyncio.get_running_loop().run_in_executor(None, user_agent.start)
    scenario = work / "uac.xml"
    scenario.write_text(SCENARIO.read_text().replace("@SPEECH@", str(clicks_file(work, clicks)))
                        .replace("@PAUSE_MS@", str((clicks + 2) * 1000)))
    sipp = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(scenario), "-s", "7000", f"{LOOPBACK}:{sip_port}", "-i", LOOPBACK, "-p", str(free_port()),
        "-mi", LOOPBACK, "-mp", str(media_port), "-m", "1", "-nostdin", "-timeout", f"{clicks + 30}s",
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await asyncio.wait_for(sipp.wait(), clicks + 40)
    finally:
        sniffer.record(False)
        await asyncio.get_running_loop().run_in_executor(None, user_agent.stop)
        sniffer.stop()
    streams = sniffer.streams()
    inbound = [rows for (source, _, _), rows in streams.items() if source == media_port]
    outbound = [rows for (source, _, _), rows in streams.items() if source != media_port]
    if not inbound or not outbound:
        raise SystemExit(f"no RTP seen both ways (streams: {list(streams)})")
    sent, echoed = onsets(inbound[0]), onsets(outbound[0])
    trips = []
    for t in sent:
        later = [e - t for e in echoed if 0 < e - t < 0.8]
        if later:
            trips.append(min(later) * 1000)
    return trips


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench media-delay")
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--bridge-rate", type=int, default=16000, help="pjmedia's conference bridge clock rate")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("the RTP sniffer needs root (AF_PACKET)")
    work = Path(tempfile.mkdtemp(prefix="victoria-media-delay-"))
    trips = asyncio.run(run(args.clicks, work, args.bridge_rate))
    if not trips:
        raise SystemExit("no click came back")
    median, p95 = np.percentile(trips, 50), np.percentile(trips, 95)
    print(f"pjmedia round trip (PCMU, echo in Victoria's media port, bridge {args.bridge_rate} Hz), "
          f"{len(trips)} of {args.clicks} clicks; {os.cpu_count()} cores")
    print(f"  wire in -> wire out: median {median:.1f} ms, p95 {p95:.1f} ms, min {min(trips):.1f} ms")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "media-delay.json"
    out.write_text(json.dumps({"bridge_rate": args.bridge_rate, "trips_ms": trips, "median_ms": median,
                               "p95_ms": p95}, indent=2))
    print(f"saved {out}")
