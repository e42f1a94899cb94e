"""A fixed-size ring of int16 samples between one producer thread and one consumer.

The producer is pjmedia's clock thread (``push``, every 20 ms); it must never
wait, so a full ring drops the *oldest* audio and counts it (``overruns``)
rather than blocking. The consumer (``pop``) takes what is there. The lock is
held only for two ``memcpy``-sized slice copies.
"""

from __future__ import annotations

import threading

import numpy as np


class SampleRing:
    def __init__(self, capacity_samples: int) -> None:
        if capacity_samples <= 0:
            raise ValueError("a ring needs room for at least one sample")
        self._buffer = np.zeros(capacity_samples, dtype=np.int16)
        self._capacity = capacity_samples
        self._read = 0  # absolute sample counters; index = counter % capacity
        self._write = 0
        self._lock = threading.Lock()
        self.overrun_samples = 0

    def __len__(self) -> int:
        with self._lock:
            return self._write - self._read

    def push(self, samples: np.ndarray) -> None:
        samples = samples[-self._capacity :]  # only the newest fit
        n = len(samples)
        with self._lock:
            start = self._write % self._capacity
            first = min(n, self._capacity - start)
            self._buffer[start : start + first] = samples[:first]
            self._buffer[: n - first] = samples[first:]
            self._write += n
            lost = self._write - self._read - self._capacity
            if lost > 0:
                self._read += lost
                self.overrun_samples += lost

    def pop(self, max_samples: int | None = None) -> np.ndarray:
        """Take up to ``max_samples`` (default: all) of the oldest samples; empty if none."""
        with self._lock:
            available = self._write - self._read
            n = available if max_samples is None else min(max_samples, available)
            start = self._read % self._capacity
            first = min(n, self._capacity - start)
            out = np.concatenate((self._buffer[start : start + first], self._buffer[: n - first]))
            self._read += n
        return out
