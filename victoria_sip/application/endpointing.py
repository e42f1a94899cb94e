"""Where the caller's speech starts, pauses and ends, from per-frame voice decisions.

    feed(voiced, t_ms) for each 20 ms frame
        ->  SpeechStarted(at_ms) ... [SpeechPaused(at_ms) ... SpeechResumed(at_ms) ...] ... SpeechEnded(at_ms)
    wait(hangover_ms)                        how long this pause may last before the turn is over

Speech starts once ``start_frames`` of the last ``start_window`` frames are
voiced (a cough or a click is too short), pauses after ``pause_ms`` of silence
(the words so far may be the whole turn: time to recognise them and prepare a
reply), and ends when the hangover has passed since the last voiced frame. The
hangover is ``hangover_ms`` until ``wait`` sets it for the pause at hand (short
after a finished question, long after "and" or "um"); a voiced frame in a pause
resumes the turn and brings the default back. Time is an argument, so this is
tested without a clock or an event loop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    at_ms: int  # start of the first voiced frame of the window that triggered


@dataclass(frozen=True, slots=True)
class SpeechPaused:
    at_ms: int  # end of the last voiced frame


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    at_ms: int  # start of the voiced frame that ended the pause


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    at_ms: int  # end of the last voiced frame


class Endpointer:
    def __init__(self, start_frames: int, start_window: int, hangover_ms: int, frame_ms: int = 20,
                 pause_ms: int | None = None) -> None:
        if not 1 <= start_frames <= start_window:
            raise ValueError("need 1 <= start_frames <= start_window")
        if pause_ms is not None and not 0 < pause_ms <= hangover_ms:
            raise ValueError("need 0 < pause_ms <= hangover_ms")
        self.start_frames = start_frames
        self.hangover_ms = hangover_ms
        self.pause_ms = pause_ms
        self.frame_ms = frame_ms
        self._hangover_ms = hangover_ms  # of the pause at hand
        self._paused = False
        self._window: deque[tuple[bool, int]] = deque(maxlen=start_window)
        self._voiced = 0  # voiced frames in the window, kept as frames come and go (asked every frame)
        self._speaking = False
        self._last_voiced_end = 0

    @property
    def speaking(self) -> bool:
        return self._speaking

    @property
    def paused(self) -> bool:
        return self._paused

    def voiced_in_window(self) -> int:
        return self._voiced

    def wait(self, hangover_ms: int) -> None:
        """How long the pause at hand may last before the turn ends (no shorter than a pause)."""
        if self._paused:
            self._hangover_ms = max(hangover_ms, self.pause_ms or 0)

    def feed(self, voiced: bool, t_ms: int) -> SpeechStarted | SpeechPaused | SpeechResumed | SpeechEnded | None:
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
        if voiced:
            if self._paused:
                self._paused, self._hangover_ms = False, self.hangover_ms
                return SpeechResumed(t_ms)
            return None
        silence_ms = t_ms + self.frame_ms - self._last_voiced_end
        if silence_ms >= self._hangover_ms:
            self._speaking, self._paused, self._hangover_ms = False, False, self.hangover_ms
            self._window.clear()
            self._voiced = 0
            return SpeechEnded(self._last_voiced_end)
        if self.pause_ms is not None and not self._paused and silence_ms >= self.pause_ms:
            self._paused = True
            return SpeechPaused(self._last_voiced_end)
        return None
