"""Admission by inference headroom: may one more call be answered without slowing the calls in progress?

    admission = Admission(limits, recognisers, voices, cpu)
    admission.check() -> (reason, detail) or None     # the SIP thread asks before answering an INVITE
    admission.admitted()                              # the call was answered: its cost is not measured yet

Not a fixed count: the measures are what the models do now, over the last
``window_seconds`` — how far behind the recognisers are (p95 queue delay, and
the oldest audio still waiting, so a stalled worker refuses at once), how busy
they are with the expected cost of one more call added, how long speech waits
for a voice worker, and how busy the machine's cores are. A call answered in
the last window has not shown its cost yet, so it counts at the estimated cost,
fading as the window fills with its own measurements.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from victoria_sip.domain.ports import CpuLoad, SpeechToText


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    enabled: bool = True
    window_seconds: float = 10.0
    max_stt_queue_seconds: float = 0.5  # audio handed over -> decoded, p95 (and the oldest waiting now)
    max_stt_busy: float = 0.7  # the recognisers' busy fraction with one more call's expected cost
    max_tts_queue_seconds: float = 0.5  # a sentence waiting for a free voice worker, p95
    max_cpu_busy: float = 0.9  # every core, every process (an LLM on the same machine counts)


class Admission:
    def __init__(self, limits: AdmissionLimits, recognisers: SpeechToText | None, voices: WaitMeasure | None,
                 cpu: CpuLoad | None) -> None:
        self.limits = limits
        self._recognisers = recognisers
        self._voices = voices
        self._cpu = cpu
        self._admitted: deque[float] = deque()
        self._lock = threading.Lock()

    def check(self, now: float | None = None) -> tuple[str, str] | None:
        """None if one more call fits; else the first measure over its limit and what it measured."""
        limits = self.limits
        if not limits.enabled:
            return None
        now = time.monotonic() if now is None else now
        if self._recognisers is not None:
            load = self._recognisers.measure()
            behind = max(load.queue_seconds, load.backlog_seconds)
            if behind > limits.max_stt_queue_seconds:
                return "stt_queue", (f"the recognisers are {behind:.2f} s behind (p95 over {limits.window_seconds:g} s "
                                     f"or oldest waiting; max_stt_queue_seconds = {limits.max_stt_queue_seconds:g})")
            expected = load.busy + load.busy_per_call * (self._unmeasured_calls(now) + 1)
            if expected > limits.max_stt_busy:
                return "stt_busy", (f"the recognisers would be {expected:.0%} busy with one more call ({load.busy:.0%} "
                                    f"now, {load.busy_per_call:.1%} a call, {load.workers} worker(s); "
                                    f"max_stt_busy = {limits.max_stt_busy:g})")
        if self._voices is not None:
            wait = self._voices.p95(now)
            if wait > limits.max_tts_queue_seconds:
                return "tts_queue", (f"speech waits {wait:.2f} s for a voice worker (p95; max_tts_queue_seconds = "
                                     f"{limits.max_tts_queue_seconds:g})")
        if self._cpu is not None:
            busy = self._cpu.busy()
            if busy > limits.max_cpu_busy:
                return "cpu", f"the cores are {busy:.0%} busy (max_cpu_busy = {limits.max_cpu_busy:g})"
        return None

    def admitted(self, now: float | None = None) -> None:
        with self._lock:
            self._admitted.append(time.monotonic() if now is None else now)

    def _unmeasured_calls(self, now: float) -> float:
        """Calls answered within the window, each weighted by how much of the window has not seen it yet."""
        window = self.limits.window_seconds
        with self._lock:
            while self._admitted and self._admitted[0] < now - window:
                self._admitted.popleft()
            return sum(1 - (now - t) / window for t in self._admitted)


class WaitMeasure:
    """Waits (e.g. a sentence for a free voice worker) over the last window; ``p95`` for admission."""

    def __init__(self, window_seconds: float = 10.0) -> None:
        self._window = window_seconds
        self._samples: deque[tuple[float, float]] = deque()
        self._lock = threading.Lock()

    def record(self, at: float, seconds: float) -> None:
        with self._lock:
            self._samples.append((at, seconds))

    def p95(self, now: float) -> float:
        with self._lock:
            while self._samples and self._samples[0][0] < now - self._window:
                self._samples.popleft()
            values = sorted(seconds for _, seconds in self._samples)
        return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))] if values else 0.0
