"""One clock for every call's caller audio: each 20 ms, all calls' new frames in one pass.

A task per call waking 50 times a second costs each call a timer, a task step and
its own numpy work per frame; with a hundred calls that is the interpreter's
budget (one core, shared with pjmedia's clock thread). The ticker wakes once per
frame time for all of them: it takes each call's new whole frames, measures the
loudness of all of them in one numpy operation, and hands each call its frames
with their levels.

    ticker.add(session)      # session.caller_frames() -> (n, samples) int16; session.on_tick(frames, levels, now)
    ticker.remove(session)

Runs on the event loop; its task starts with the first call and ends with the last.
A call whose ``on_tick`` raises is dropped from the ticker and told (``session.failed``);
the others go on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

import numpy as np

from victoria_sip.audio.levels import frame_levels_dbfs

log = logging.getLogger("victoria.conversation")

FRAME_MS = 20


class Ticking(Protocol):
    def caller_frames(self) -> np.ndarray: ...  # the whole frames received since the last tick

    def on_tick(self, frames: np.ndarray, levels: np.ndarray, now: float) -> None: ...

    def failed(self, error: BaseException) -> None: ...


class FrameTicker:
    def __init__(self, frame_ms: int = FRAME_MS) -> None:
        self._period = frame_ms / 1000
        self._sessions: dict[int, Ticking] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, session: Ticking) -> None:
        self._sessions[id(session)] = session
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="frame-ticker")

    def remove(self, session: Ticking) -> None:
        self._sessions.pop(id(session), None)

    @property
    def calls(self) -> int:  # not __len__: an idle ticker must still be truthy
        return len(self._sessions)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while self._sessions:
            self.tick()
            due += self._period
            now = loop.time()
            if now > due + self._period:  # a stall: start again from now; the rings held the audio meanwhile
                due = now
            await asyncio.sleep(due - now)

    def tick(self) -> None:
        """Serve every call once: its new frames, if any, then its timers (keypad, silence, call length)."""
        sessions = list(self._sessions.values())
        batches = []
        for session in sessions:
            try:
                batches.append(session.caller_frames())
            except Exception as exc:  # noqa: BLE001 — one call's failure must not stop the others
                batches.append(None)
                self._drop(session, exc)
        levels = _levels(batches)
        now = time.monotonic()
        for session, frames, frame_levels in zip(sessions, batches, levels):
            if frames is None:
                continue
            try:
                session.on_tick(frames, frame_levels, now)
            except Exception as exc:  # noqa: BLE001 — as above
                self._drop(session, exc)

    def _drop(self, session: Ticking, error: Exception) -> None:
        self.remove(session)
        session.failed(error)


_NO_LEVELS = np.zeros(0)


def _levels(batches: list[np.ndarray | None]) -> list[np.ndarray]:
    """Each batch's per-frame loudness (dBFS), computed for all batches of one frame size at once."""
    by_size: dict[int, list[int]] = {}
    for index, frames in enumerate(batches):
        if frames is not None and len(frames):
            by_size.setdefault(frames.shape[1], []).append(index)
    levels = [_NO_LEVELS] * len(batches)
    for indices in by_size.values():
        joined = frame_levels_dbfs(np.concatenate([batches[i] for i in indices]))
        start = 0
        for i in indices:
            end = start + len(batches[i])
            levels[i] = joined[start:end]
            start = end
    return levels
