"""The outbound side of a call: 20 ms frames waiting for pjmedia to ask for them.

``enqueue`` (application thread) cuts audio into frames; ``next_frame`` (pjmedia's
clock thread) returns the next one, or ``None`` when there is nothing to say and
the caller should send silence. ``clear`` empties it at once for barge-in.
A ``deque``'s append/popleft are atomic in CPython, so neither side locks.

Audio may carry a ``mark`` (an int): the moment its first frame goes out is
recorded, so the application knows what the caller has actually heard.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np


class PlayoutQueue:
    def __init__(self, frame_samples: int) -> None:
        if frame_samples <= 0:
            raise ValueError("a frame holds at least one sample")
        self.frame_samples = frame_samples
        self._frames: deque[tuple[np.ndarray, int | None]] = deque()  # (frame, mark of a first frame)
        self._started: dict[int, float] = {}
        self.frames_played = 0

    def enqueue(self, samples: np.ndarray, mark: int | None = None) -> int:
        """Append audio, zero-padding the last frame. Returns the number of frames added."""
        samples = np.asarray(samples, dtype=np.int16)
        remainder = len(samples) % self.frame_samples
        if remainder or not len(samples):
            samples = np.concatenate((samples, np.zeros(self.frame_samples - remainder, np.int16)))
        frames = samples.reshape(-1, self.frame_samples)
        self._frames.append((frames[0], mark))
        self._frames.extend((frame, None) for frame in frames[1:])
        return len(frames)

    def next_frame(self) -> np.ndarray | None:
        try:
            frame, mark = self._frames.popleft()
        except IndexError:
            return None
        if mark is not None:
            self._started[mark] = time.monotonic()
        self.frames_played += 1
        return frame

    def started_at(self, mark: int) -> float | None:
        """When the first frame of the audio enqueued with ``mark`` went out (``time.monotonic``), or None."""
        return self._started.get(mark)

    def clear(self) -> int:
        """Drop everything not yet played; returns how many frames were dropped."""
        dropped = len(self._frames)
        self._frames.clear()
        return dropped

    def __len__(self) -> int:
        return len(self._frames)
