"""The outbound side of a call: 20 ms frames waiting for pjmedia to ask for them.

``enqueue`` (application thread) cuts audio into frames; ``next_frame`` (pjmedia's
clock thread) returns the next one, or ``None`` when there is nothing to say and
the caller should send silence. ``clear`` empties it at once for barge-in.
A ``deque``'s append/popleft are atomic in CPython, so neither side locks.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class PlayoutQueue:
    def __init__(self, frame_samples: int) -> None:
        if frame_samples <= 0:
            raise ValueError("a frame holds at least one sample")
        self.frame_samples = frame_samples
        self._frames: deque[np.ndarray] = deque()
        self.frames_played = 0

    def enqueue(self, samples: np.ndarray) -> int:
        """Append audio, zero-padding the last frame. Returns the number of frames added."""
        samples = np.asarray(samples, dtype=np.int16)
        remainder = len(samples) % self.frame_samples
        if remainder:
            samples = np.concatenate((samples, np.zeros(self.frame_samples - remainder, np.int16)))
        frames = samples.reshape(-1, self.frame_samples)
        self._frames.extend(frames)
        return len(frames)

    def next_frame(self) -> np.ndarray | None:
        try:
            frame = self._frames.popleft()
        except IndexError:
            return None
        self.frames_played += 1
        return frame

    def clear(self) -> int:
        """Drop everything not yet played; returns how many frames were dropped."""
        dropped = len(self._frames)
        self._frames.clear()
        return dropped

    def __len__(self) -> int:
        return len(self._frames)
