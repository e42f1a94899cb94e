"""Erasing calls for good: by id (a caller asked), by caller, or by age (``[history] retention_days``).

A call's rows go first (its turns with it, in one transaction), then its
recording: a file left behind by a failed unlink is named in the log, while a
recording without its row is what the recordings' own retention removes anyway.
A call in progress is never erased: its turns are still being written.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from victoria_sip.domain import Call, CallId

log = logging.getLogger("victoria.erasure")


class ErasableCalls(Protocol):
    def get_call(self, call_id: CallId) -> Call | None: ...
    def calls_from(self, caller: str) -> list[Call]: ...
    def calls_ended_before(self, cutoff: datetime, limit: int) -> list[Call]: ...
    def delete_calls(self, call_ids: Sequence[CallId]) -> int: ...


class CallInProgress(ValueError):
    """Asked to erase a call that has not ended."""


@dataclass
class Erasure:
    calls: list[str] = field(default_factory=list)
    turns: int = 0
    recordings_deleted: int = 0
    recordings_left: list[str] = field(default_factory=list)  # could not be deleted (named in the log)

    def describe(self) -> str:
        text = f"{len(self.calls)} call(s) and {self.turns} turn(s)"
        if self.recordings_deleted:
            text += f", {self.recordings_deleted} recording(s)"
        if self.recordings_left:
            text += f"; could not delete {', '.join(self.recordings_left)}"
        return text


def remove_file(path: str) -> bool:
    """Delete a recording; False if it was already gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


class CallEraser:
    def __init__(self, calls: ErasableCalls, remove: Callable[[str], bool] = remove_file) -> None:
        self._calls = calls
        self._remove = remove

    def erase(self, call_ids: Sequence[CallId]) -> Erasure:
        """These calls, all or none: ``LookupError`` names an unknown id, ``CallInProgress`` a call not over."""
        found = []
        for call_id in call_ids:
            call = self._calls.get_call(call_id)
            if call is None:
                raise LookupError(f"no call {call_id.value}")
            if not call.status.is_final:
                raise CallInProgress(f"call {call_id.value} is in progress ({call.status.value}): erase it once it "
                                     "has ended")
            found.append(call)
        return self._erase(found)

    def erase_caller(self, caller: str) -> Erasure:
        """Every ended call from this caller (as stored: a number or a SIP user); calls in progress stay."""
        return self._erase([c for c in self._calls.calls_from(caller) if c.status.is_final])

    def erase_older_than(self, days: float, now: datetime, batch: int = 500) -> Erasure:
        """Calls that ended more than ``days`` ago, ``batch`` at a time (a short write lock each)."""
        cutoff = now - timedelta(days=days)
        total = Erasure()
        while expired := self._calls.calls_ended_before(cutoff, batch):
            done = self._erase(expired)
            total.calls += done.calls
            total.turns += done.turns
            total.recordings_deleted += done.recordings_deleted
            total.recordings_left += done.recordings_left
            if len(expired) < batch:
                break
        return total

    def _erase(self, calls: list[Call]) -> Erasure:
        erasure = Erasure(calls=[c.id.value for c in calls],
                          turns=sum(len(c.conversation.turns) for c in calls))
        if not calls:
            return erasure
        self._calls.delete_calls([c.id for c in calls])
        for call in calls:
            if not call.recording:
                continue
            try:
                erasure.recordings_deleted += self._remove(call.recording)
            except OSError as exc:
                log.error("call %s erased, but not its recording %s: %s", call.id.value, call.recording, exc)
                erasure.recordings_left.append(call.recording)
        return erasure


HISTORY_CHECK_SECONDS = 3600.0


async def keep_history_for(days: float, eraser: CallEraser, now: Callable[[], datetime],
                           every: float = HISTORY_CHECK_SECONDS) -> None:
    """Erase calls older than ``days`` now and every ``every`` seconds, until cancelled. The database work runs
    in a worker thread: the event loop also carries the calls' media."""
    while True:
        try:
            erased = await asyncio.to_thread(eraser.erase_older_than, days, now())
        except Exception as exc:  # a database hiccup: try again next time, never stop serving calls
            log.error("could not erase calls older than %g days: %s", days, exc)
        else:
            if erased.calls:
                log.info("erased %s older than %g days ([history] retention_days)", erased.describe(), days)
        await asyncio.sleep(every)
