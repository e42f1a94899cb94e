"""Where the caller's speech starts and ends, from per-frame voice decisions.

    feed(voiced, t_ms) for each 20 ms frame  ->  SpeechStarted(at_ms) ... SpeechEnded(at_ms)

Speech starts once ``start_frames`` of the last ``start_window`` frames are
voiced (a cough or a click is too short), and ends when ``hangover_ms`` have
passed since the last voiced frame. Time is an argument, so this is tested
without a clock or an event loop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    at_ms: int  # start of the first voiced frame of the window that triggered


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    at_ms: int  # end of the last voiced frame


class Endpointer:
    def __init__(self, start_frames: int, start_window: int, hangover_ms: int, frame_ms: int = 20) -> None:
        if not 1 <= start_frames <= start_window:
            raise ValueError("need 1 <= start_frames <= start_window")
        self.start_frames = start_frames
        self.hangover_ms = hangover_ms
        self.frame_ms = frame_ms
        self._window: deque[tuple[bool, int]] = deque(maxlen=start_window)
        self._voiced = 0  # voiced frames in the window, kept as frames come and go (asked every frame)
        self._speaking = False
        self._last_voiced_end = 0

    @property
    def speaking(self) -> bool:
        return self._speaking

    def voiced_in_window(self) -> int:
        return self._voiced

    def feed(self, voiced: bool, t_ms: int) -> SpeechStarted | SpeechEnded | None:
        """``t_ms`` is the start time of this frame."""
        if len(self._window) == self._window.maxlen and self._window[0][0]:
            self._voiced -= 1  # about to fall out of the window
        self._window.append((voiced, t_ms))
        if voiced:
            self._voiced += 1
            self._last_voiced_end = t_ms + self.frame_ms
        if not self._speaking:
            if self.voiced_in_window() >= self.start_frames:
                self._speaking = True
                return SpeechStarted(next(t for v, t in self._window if v))
            return None
        if t_ms + self.frame_ms - self._last_voiced_end >= self.hangover_ms:
            self._speaking = False
            self._window.clear()
            self._voiced = 0
            return SpeechEnded(self._last_voiced_end)
        return None
