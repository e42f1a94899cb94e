"""Sample-rate conversion with soxr: one-shot for whole clips, streaming for live audio."""

from __future__ import annotations

import numpy as np
import soxr


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a whole int16 clip (e.g. a synthesised sentence) in one go."""
    if from_rate == to_rate:
        return np.asarray(samples, dtype=np.int16)
    return soxr.resample(np.asarray(samples, dtype=np.int16), from_rate, to_rate, quality="HQ")


class StreamResampler:
    """Resample a live stream chunk by chunk, keeping filter state across chunks.

    The output of many small ``process`` calls equals one big ``resample`` of
    the concatenation (up to the filter delay, flushed by ``flush``).
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._passthrough = from_rate == to_rate
        self._stream = None if self._passthrough else soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality="HQ")

    def process(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.int16)
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples)

    def flush(self) -> np.ndarray:
        if self._stream is None:
            return np.zeros(0, np.int16)
        return self._stream.resample_chunk(np.zeros(0, np.int16), last=True)
