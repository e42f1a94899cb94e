"""The outbound side of a call: 20 ms frames waiting for pjmedia to ask for them.

``enqueue`` (application thread) cuts audio into frames; ``next_frame`` (pjmedia's
clock thread) returns the next one, or ``None`` when there is nothing to say and
the caller should send silence. ``clear`` empties it at once for barge-in.
A ``deque``'s append/popleft are atomic in CPython, so neither side locks.

Audio may carry a ``mark`` (an int): the moment its first frame goes out is
recorded, so the application knows what the caller has actually heard.

The application says when an utterance is under way (``speaking(True)``, chunk
after chunk) and when all of it is queued (``speaking(False)``). A frame asked
for in between, after the utterance's first frame went out, with none ready, is
an underflow: a gap in the voice (the next chunk came too late). Each is
counted and reported to ``on_underflow`` (on the clock thread).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import numpy as np


class PlayoutQueue:
    def __init__(self, frame_samples: int, on_underflow: Callable[[], None] | None = None) -> None:
        if frame_samples <= 0:
            raise ValueError("a frame holds at least one sample")
        self.frame_samples = frame_samples
        self._frames: deque[tuple[np.ndarray, int | None]] = deque()  # (frame, mark of a first frame)
        self._started: dict[int, float] = {}
        self.frames_played = 0
        self.underflows = 0
        self._on_underflow = on_underflow
        self._speaking = False  # an utterance is under way: more of it may still come
        self._voicing = False  # ... and its first frame has gone out

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

    def speaking(self, under_way: bool) -> None:
        self._speaking = under_way
        if not under_way:
            self._voicing = False

    def next_frame(self) -> np.ndarray | None:
        try:
            frame, mark = self._frames.popleft()
        except IndexError:
            if self._voicing and self._speaking:
                self.underflows += 1
                if self._on_underflow is not None:
                    self._on_underflow()
            return None
        if mark is not None:
            self._started[mark] = time.monotonic()
        self.frames_played += 1
        self._voicing = self._speaking
        return frame

    def started_at(self, mark: int) -> float | None:
        """When the first frame of the audio enqueued with ``mark`` went out (``time.monotonic``), or None."""
        return self._started.get(mark)

    def clear(self) -> int:
        """Drop everything not yet played (the utterance is over); returns how many frames were dropped."""
        self.speaking(False)
        dropped = len(self._frames)
        self._frames.clear()
        return dropped

    def __len__(self) -> int:
        return len(self._frames)
