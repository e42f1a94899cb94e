"""Writes calls and turns through the repository on one dedicated thread.

The repository is blocking (SQL); the event loop must not wait on disk, and
SQLite wants a single writer. ``await`` returns once the row is committed, so
the caller knows a turn is safe before it moves on. Once committed, the change
is published to whoever watches calls live (``call_events``).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from victoria_sip.application.call_events import CallEvent, CallEvents
from victoria_sip.domain import Call, CallId, ConversationTurn
from victoria_sip.application.telemetry import NoTelemetry
from victoria_sip.domain.ports import CallRepository, Telemetry


class CallLog:
    def __init__(self, repository: CallRepository, telemetry: Telemetry | None = None,
                 events: CallEvents | None = None) -> None:
        self._repository = repository
        self._telemetry = telemetry or NoTelemetry()
        self._events = events
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")

    async def save_call(self, call: Call) -> None:
        await self._run(self._repository.save_call, call)
        self._publish(CallEvent(call.id.value))

    async def add_turn(self, call_id: CallId, turn: ConversationTurn) -> None:
        await self._run(self._repository.add_turn, call_id, turn)
        self._telemetry.turn_persisted()
        self._publish(CallEvent(call_id.value, turn.index))

    def _publish(self, event: CallEvent) -> None:
        if self._events is not None:
            self._events.publish(event)

    def close(self) -> None:
        """Finish every queued write, then stop the writer thread."""
        self._writer.shutdown(wait=True)

    async def _run(self, function, *args) -> None:
        await asyncio.get_running_loop().run_in_executor(self._writer, function, *args)
