"""How busy the machine's cores are, every process counted (/proc/stat), over the last few seconds.

    meter = CpuMeter(window_seconds=10); meter.start()
    meter.busy() -> 0.0 .. 1.0

A sampler thread reads /proc/stat's aggregate line once a second; ``busy`` is
the share of non-idle time between the oldest sample in the window and now, once
the samples span ``MIN_SPAN_SECONDS``: a second of a few processes starting at
once is busy enough to refuse a call, and says nothing about the load calls bring
(seen in CI: a call refused a second after start-up while six callers started).
Where /proc/stat cannot be read, it reports 0 (admission then decides by the
models' own measures).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

log = logging.getLogger("victoria.admission")

SAMPLE_SECONDS = 1.0
MIN_JIFFIES = 100  # a second of one core
MIN_SPAN_SECONDS = 3.0


def read_cpu_times(path: str = "/proc/stat") -> tuple[int, int] | None:
    """(busy, total) jiffies of all cores since boot; None if unavailable."""
    try:
        with open(path) as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class CpuMeter:
    def __init__(self, window_seconds: float = 10.0, stat_path: str = "/proc/stat",
                 min_span_seconds: float = MIN_SPAN_SECONDS) -> None:
        self._window = window_seconds
        self._stat_path = stat_path
        self._min_span = min(min_span_seconds, window_seconds)
        self._samples: deque[tuple[float, int, int]] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        if read_cpu_times(self._stat_path) is None:
            log.warning("cannot read /proc/stat: admission does not consider the machine's CPU")
            return
        self._sample()
        threading.Thread(target=self._run, name="cpu-meter", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def busy(self) -> float:
        now = read_cpu_times(self._stat_path)
        with self._lock:
            if now is None or not self._samples:
                return 0.0
            since, busy0, total0 = self._samples[0]
        if time.monotonic() - since < self._min_span:
            return 0.0  # too short to say
        elapsed = now[1] - total0
        return (now[0] - busy0) / elapsed if elapsed >= MIN_JIFFIES else 0.0  # too short to say

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()

    def _sample(self) -> None:
        times = read_cpu_times(self._stat_path)
        if times is None:
            return
        now = time.monotonic()
        with self._lock:
            self._samples.append((now, *times))
            while len(self._samples) > 1 and self._samples[1][0] <= now - self._window:
                self._samples.popleft()
