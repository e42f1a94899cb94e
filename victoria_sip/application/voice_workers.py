"""The voice's worker threads, remembering how long each synthesis waited for a free one.

    voices = VoiceWorkers(workers=2)
    await loop.run_in_executor(voices, tts.synthesize, text, voice)
    voices.waits.p95(now)          # admission: do the voices keep up?

A reply's sentence that waits for a worker is silence the caller hears; when
the waits grow, one more call would make every call's replies later.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor

from victoria_sip.application.admission import WaitMeasure


class VoiceWorkers(Executor):
    def __init__(self, workers: int, window_seconds: float = 10.0) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="tts")
        self.waits = WaitMeasure(window_seconds)

    def submit(self, fn, /, *args, **kwargs) -> Future:
        queued = time.monotonic()

        def timed():
            started = time.monotonic()
            self.waits.record(started, started - queued)
            return fn(*args, **kwargs)

        return self._pool.submit(timed)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait, cancel_futures=cancel_futures)
