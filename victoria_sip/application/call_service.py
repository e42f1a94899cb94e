"""Answers calls for agents: one ``CallSession`` per answered call, and the call's record.

Runs on the application's event loop; the SIP adapter posts ``call_answered``,
``call_ended`` and ``call_rejected`` here (the ``CallHandler`` port).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from victoria_sip.application.admission import Admission
from victoria_sip.application.call_log import CallLog
from victoria_sip.application.call_session import CallSession, ConversationModels
from victoria_sip.application.frame_ticker import FrameTicker
from victoria_sip.application.phrases import Phrases
from victoria_sip.application.telemetry import NoTelemetry
from victoria_sip.audio.levels import SILENCE_DBFS
from victoria_sip.domain import Agent, Call, CallId, EndReason, MediaStats, PhoneNumber
from victoria_sip.domain.ports import CallLeg, Overload, Telemetry
from victoria_sip.logs import current_call_id

log = logging.getLogger("victoria.calls")


class CallService:
    def __init__(
        self,
        agents: Mapping[str, Agent],
        router: Callable[[str, str | None], str | None],
        phrases: Phrases,
        call_log: CallLog,
        models: ConversationModels,
        telemetry: Telemetry | None = None,
        admission: Admission | None = None,
    ) -> None:
        self._agents = agents
        self._telemetry = telemetry or NoTelemetry()
        self._router = router
        self._phrases = phrases
        self._call_log = call_log
        self._models = models
        self._admission = admission  # None: every call up to max_concurrent_calls is answered
        self._active: dict[CallId, tuple[CallSession, asyncio.Task[None]]] = {}
        self._ticker = FrameTicker()  # one clock for every call's audio, not a task per call waking 50 times a second

    def route(self, callee: str, account: str | None) -> str | None:
        return self._router(callee, account)

    def reload(self, agents: Mapping[str, Agent], router: Callable[[str, str | None], str | None]) -> None:
        """New agent definitions for the calls that come next; calls in progress keep theirs."""
        self._agents, self._router = agents, router

    def admit(self, agent_name: str) -> Overload | None:
        """On the SIP thread, before answering: is there headroom for one more conversation?"""
        if self._admission is None:
            return None
        refusal = self._admission.check()
        if refusal is None:
            self._admission.admitted()
            return None
        reason, detail = refusal
        self._telemetry.admission_refused(reason)
        agent = self._agents.get(agent_name)
        return Overload(reason, detail, hand_off=agent is not None and bool(agent.fallback_destination))

    async def call_answered(self, leg: CallLeg, agent_name: str, overload: Overload | None = None) -> None:
        agent = self._agents.get(agent_name)
        if agent is None:  # routed just before a reload removed the agent
            log.error("call from %s: agent %r no longer exists (configuration reloaded); hanging up",
                      leg.caller, agent_name)
            leg.hangup()
            return
        call = Call(id=leg.call_id, agent=agent.name, caller=PhoneNumber.from_sip_uri(leg.caller), callee=leg.callee,
                    encryption=leg.encryption, channel=leg.channel)
        call.start()
        session = CallSession(call, agent, leg, self._models, self._phrases, self._call_log, self._telemetry,
                              self._ticker)
        current_call_id.set(call.id.value)  # the session's tasks inherit it: their log lines carry the call id
        task = asyncio.create_task(session.run(overload), name=f"call-{call.id}")
        task.add_done_callback(lambda t: _log_crash(call.id, t))
        self._active[call.id] = (session, task)
        self._telemetry.call_answered(agent.name)
        await self._call_log.save_call(call)
        log.info("call %s: answered by agent %r for %s", call.id, agent.name, call.caller)

    async def call_ended(self, call_id: CallId, reason: EndReason) -> None:
        entry = self._active.pop(call_id, None)
        if entry is None:
            return
        session, task = entry
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await session.close()
        call = session.call
        received, sent = session.leg.media_stats()
        peak = round(session.peak_dbfs, 1) if session.peak_dbfs > SILENCE_DBFS else None
        call.media = MediaStats(received, sent, peak)
        call.recording = session.leg.recording_path()
        call.end(reason)
        self._telemetry.call_ended(call.agent, reason)
        await self._call_log.save_call(call)
        log.info("call %s: ended, %s, %.1f s, %d turns", call_id, reason.value, call.duration_seconds or 0.0,
                 len(call.conversation.turns))

    async def transfer_finished(self, call_id: CallId, status_code: int, reason: str) -> None:
        entry = self._active.get(call_id)
        if entry is not None:
            entry[0].on_transfer_finished(status_code, reason)

    async def consultation_answered(self, call_id: CallId, status_code: int, reason: str) -> None:
        entry = self._active.get(call_id)
        if entry is not None:
            entry[0].on_consultation_answered(status_code, reason)

    async def keypad_pressed(self, call_id: CallId, key: str) -> None:
        entry = self._active.get(call_id)
        if entry is not None:
            entry[0].on_keypad(key)

    @property
    def active_calls(self) -> int:
        return len(self._active)

    async def wait_until_idle(self, timeout: float) -> bool:
        """Wait for every call in progress to end, up to ``timeout`` seconds; True if none is left."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._active and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        return not self._active

    def end_all_calls(self) -> None:
        """Each call in progress says goodbye and hangs up."""
        for session, _ in self._active.values():
            session.end_politely()

    async def call_rejected(self, call_id: CallId, caller: str, callee: str, reason: EndReason) -> None:
        call = Call(id=call_id, agent=self._router(callee, None) or "-", caller=PhoneNumber.from_sip_uri(caller), callee=callee)
        call.reject(reason)
        self._telemetry.call_rejected(call.agent, reason)
        await self._call_log.save_call(call)


def _log_crash(call_id: CallId, task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("call %s: conversation stopped by an error", call_id, exc_info=task.exception())
