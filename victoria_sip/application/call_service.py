"""Answers calls for agents: greets the caller, listens, and logs the call.

Runs on the application's event loop; the SIP adapter posts ``call_answered``
and ``call_ended`` here. Audio comes and goes through the ``CallLeg`` without
blocking. Later issues hang the conversation pipeline off ``_listen``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import numpy as np

from victoria_sip.application.call_log import CallLog
from victoria_sip.application.greetings import Greetings
from victoria_sip.audio.levels import SILENCE_DBFS, rms_dbfs
from victoria_sip.domain import Agent, Call, CallId, EndReason, MediaStats, PhoneNumber, Role
from victoria_sip.domain.ports import CallLeg

log = logging.getLogger("victoria.calls")

LISTEN_INTERVAL_SECONDS = 0.02


class _ActiveCall:
    def __init__(self, call: Call, leg: CallLeg) -> None:
        self.call = call
        self.leg = leg
        self.peak_dbfs = SILENCE_DBFS
        self.listener: asyncio.Task[None] | None = None


class CallService:
    """The ``CallHandler`` port, for the SIP adapter."""

    def __init__(
        self,
        agents: Mapping[str, Agent],
        router: Callable[[str, str | None], str | None],
        greetings: Greetings,
        call_log: CallLog,
    ) -> None:
        self._agents = agents
        self._router = router
        self._greetings = greetings
        self._call_log = call_log
        self._active: dict[CallId, _ActiveCall] = {}

    @property
    def active_calls(self) -> int:
        return len(self._active)

    def route(self, callee: str, account: str | None) -> str | None:
        return self._router(callee, account)

    async def call_answered(self, leg: CallLeg, agent_name: str) -> None:
        agent = self._agents[agent_name]
        call = Call(id=leg.call_id, agent=agent.name, caller=PhoneNumber.from_sip_uri(leg.caller), callee=leg.callee)
        call.start()
        active = self._active[call.id] = _ActiveCall(call, leg)
        leg.play(self._greetings.for_agent(agent))  # first: the caller hears us before any disk write
        active.listener = asyncio.create_task(self._listen(active), name=f"listen-{call.id}")
        await self._call_log.save_call(call)
        turn = call.conversation.add_turn(Role.ASSISTANT, agent.first_message)
        await self._call_log.add_turn(call.id, turn)
        log.info("call %s: answered by agent %r for %s; greeting playing", call.id, agent.name, call.caller)

    async def call_ended(self, call_id: CallId, reason: EndReason) -> None:
        active = self._active.pop(call_id, None)
        if active is None:
            return
        if active.listener is not None:
            active.listener.cancel()
        self._drain(active)
        received, sent = active.leg.media_stats()
        peak = active.peak_dbfs if active.peak_dbfs > SILENCE_DBFS else None
        active.call.media = MediaStats(received, sent, None if peak is None else round(peak, 1))
        active.call.end(reason)
        await self._call_log.save_call(active.call)
        log.info(
            "call %s: ended, %s, %.1f s, caller peak %s dBFS",
            call_id, reason.value, active.call.duration_seconds or 0.0, active.call.media.caller_peak_dbfs,
        )

    async def call_rejected(self, call_id: CallId, caller: str, callee: str, reason: EndReason) -> None:
        call = Call(id=call_id, agent=self._router(callee, None) or "-", caller=PhoneNumber.from_sip_uri(caller), callee=callee)
        call.reject(reason)
        await self._call_log.save_call(call)

    async def _listen(self, active: _ActiveCall) -> None:
        while True:
            self._drain(active)
            await asyncio.sleep(LISTEN_INTERVAL_SECONDS)

    @staticmethod
    def _drain(active: _ActiveCall) -> None:
        samples = np.frombuffer(active.leg.read_audio(), dtype="<i2")
        frame = active.leg.sample_rate // 50
        for start in range(0, len(samples) - frame + 1, frame):
            active.peak_dbfs = max(active.peak_dbfs, rms_dbfs(samples[start : start + frame]))
