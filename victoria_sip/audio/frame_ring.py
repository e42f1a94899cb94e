"""Whole 20 ms frames from pjmedia's clock thread to the conversation, with no lock and no copy on the way out.

    ring.claim() -> address of the next slot; the producer copies one frame there, then ring.commit()
    ring.take()  -> every frame committed since the last take, oldest first, shape (n, frame_samples)

One producer (the clock thread, ``claim``/``commit`` or ``write``) and one
consumer (``take``). The producer fills a slot, then bumps ``written``; the
consumer reads ``written`` once and takes the slots before it. Both counters only
grow, and the GIL orders the bump after the copy, so no lock is needed. A
consumer more than a ring behind loses the oldest frames (``overrun_frames``):
the producer never waits. ``take`` returns a view into the ring: valid until the
producer comes round to those slots again, ``capacity`` frames later.
"""

from __future__ import annotations

import numpy as np


class FrameRing:
    def __init__(self, frame_samples: int, capacity_frames: int) -> None:
        if frame_samples <= 0 or capacity_frames <= 0:
            raise ValueError("a ring needs room for at least one frame of one sample")
        self.frame_samples = frame_samples
        self.capacity = capacity_frames
        self._frames = np.zeros((capacity_frames, frame_samples), np.int16)
        self._base = self._frames.ctypes.data
        self._frame_bytes = frame_samples * 2
        self.written = 0  # frames ever committed (producer)
        self.read = 0  # frames ever taken (consumer)
        self.overrun_frames = 0

    def __len__(self) -> int:
        return min(self.written - self.read, self.capacity)

    def claim(self) -> int:
        """Address of the slot the next frame goes to (``frame_samples`` int16), for a copy from C memory."""
        return self._base + (self.written % self.capacity) * self._frame_bytes

    def commit(self) -> None:
        self.written += 1

    def write(self, samples: np.ndarray) -> None:
        """One frame from numpy; a short one is padded with silence, a long one cut."""
        slot = self._frames[self.written % self.capacity]
        n = min(len(samples), self.frame_samples)
        slot[:n] = samples[:n]
        slot[n:] = 0
        self.written += 1

    def take(self) -> np.ndarray:
        written = self.written  # read once: the producer may commit more meanwhile, taken next time
        if written - self.read > self.capacity:
            self.overrun_frames += written - self.read - self.capacity
            self.read = written - self.capacity
        n, start = written - self.read, self.read % self.capacity
        self.read = written
        if start + n <= self.capacity:
            return self._frames[start:start + n]
        return np.concatenate((self._frames[start:], self._frames[:start + n - self.capacity]))  # rare: a copy
