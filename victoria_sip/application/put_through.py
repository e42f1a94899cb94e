"""Putting the caller through to one of the agent's destinations.

    put_through(name, why) ─> "please hold" ─> blind: REFER ─> final NOTIFY
                                           └─> attended: call the target (hold chime for the caller), press its
                                               keys, announce the caller in one line, REFER with Replaces
    connected: a system turn, Victoria hangs up; failed: a system turn, "sorry", the call goes on

Only names the agent lists are ever dialled. Runs on the event loop as the
session's reply task (started through ``Switchboard``); the SIP adapter reports
outcomes through ``on_transfer_finished`` and ``on_consultation_answered``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from victoria_sip.application.announcement import announcement, summarise
from victoria_sip.audio.hold_chime import hold_chime
from victoria_sip.domain.ports import SpeechAudio
from victoria_sip.errors import ModelError

if TYPE_CHECKING:
    from victoria_sip.application.call_session import ConversationModels
    from victoria_sip.domain import Agent, Call, Destination
    from victoria_sip.application.reply_speaker import ReplySpeaker
    from victoria_sip.domain.ports import CallLeg, Telemetry

log = logging.getLogger("victoria.conversation")

PLAYOUT_POLL_SECONDS = 0.02
TRANSFER_TIMEOUT_SECONDS = 20.0  # REFER sent -> final NOTIFY (the target rings meanwhile)
TARGET_RING_SECONDS = 25.0  # attended transfer: how long the target's phone may ring before the caller is told
DTMF_SECONDS_PER_KEY = 0.3  # a key's tone (~160 ms) and the gap after it


class Switchboard(Protocol):
    """What putting the caller through asks of the call."""

    @property
    def ending(self) -> bool: ...
    def start_reply(self, name: str, reply: Callable[[asyncio.Task[None] | None], Awaitable[None]],
                    interrupt: bool = False) -> None: ...
    def connected(self) -> None: ...  # the caller talks to the target now: the call is over for Victoria
    def transfer_over(self) -> None: ...  # connected or not, the caller is no longer on hold


class PutThrough:
    def __init__(self, call: Call, agent: Agent, leg: CallLeg, models: ConversationModels, telemetry: Telemetry,
                 speaker: ReplySpeaker, note: Callable[[str], Awaitable[None]], switchboard: Switchboard) -> None:
        self.call = call
        self.agent = agent
        self.leg = leg
        self._models = models
        self._telemetry = telemetry
        self._speaker = speaker
        self._note = note
        self._switchboard = switchboard
        self._transfer: asyncio.Future[tuple[int, str]] | None = None  # set while putting the caller through
        self._consultation: asyncio.Future[tuple[int, str]] | None = None  # set while calling an attended target

    @property
    def active(self) -> bool:
        """The caller is being put through: what they say or press is not answered."""
        return self._transfer is not None

    def put_through(self, name: str, why: str) -> None:
        """Transfer the caller to one of the agent's named destinations (never anything else)."""
        destination = self.agent.destination(name)
        if destination is None or self._transfer is not None or self._switchboard.ending:
            log.warning("call %s: no transfer to %r (%s)", self.call.id, name,
                        "not a destination of this agent" if destination is None else "busy ending or transferring")
            return
        self._transfer = asyncio.get_running_loop().create_future()
        self._switchboard.start_reply("transfer", lambda previous: self._transfer_to(destination, why, previous),
                                      interrupt=True)

    def on_transfer_finished(self, status_code: int, reason: str) -> None:
        if self._transfer is not None and not self._transfer.done():
            self._transfer.set_result((status_code, reason))

    def on_consultation_answered(self, status_code: int, reason: str) -> None:
        if self._consultation is not None and not self._consultation.done():
            self._consultation.set_result((status_code, reason))

    async def _transfer_to(self, destination: Destination, why: str, previous: asyncio.Task[None] | None) -> None:
        if previous is not None and not previous.done():
            await asyncio.gather(previous, return_exceptions=True)
        try:
            await self._speaker.say_phrase(self.agent.transfer_message)
            if destination.attended:
                code, reason = await self._attended_transfer(destination)
            else:
                self.leg.transfer(destination.uri)
                code, reason = await _outcome(self._transfer, TRANSFER_TIMEOUT_SECONDS)
            ok = 200 <= code < 300
            await self._note(f"[transfer] to {destination.name} ({why}): {'connected' if ok else 'failed'}, "
                             f"{code} {reason}".strip())
            if ok:
                self._switchboard.connected()
                return
            log.warning("call %s: transfer to %s failed (%d %s); staying on the call", self.call.id,
                        destination.name, code, reason)
            await self._speaker.say_phrase(self.agent.transfer_failed_message)
        finally:
            self._transfer = None
            self._switchboard.transfer_over()

    async def _attended_transfer(self, destination: Destination) -> tuple[int, str]:
        """Call the target, press its keys, announce the caller in one line, then connect the two (Replaces).
        The caller waits meanwhile; whatever happens, Victoria's call to the target ends here."""
        summary = asyncio.create_task(summarise(self._models.llm, self.agent, self.call.conversation.turns,
                                                self.agent.max_reply_delay))  # while the target's phone rings
        hold = asyncio.create_task(self._hold_caller(), name="hold")
        self._consultation = asyncio.get_running_loop().create_future()
        consultation = self.leg.consult(destination.uri)
        try:
            code, reason = await _outcome(self._consultation, TARGET_RING_SECONDS)
            if not 200 <= code < 300:
                return code, f"{reason} (calling {destination.name})"
            if destination.dtmf:
                consultation.send_digits(destination.dtmf)
                await asyncio.sleep(DTMF_SECONDS_PER_KEY * len(destination.dtmf))
            text = announcement(self.agent, await summary)
            audio = await asyncio.get_running_loop().run_in_executor(
                self._models.tts_workers, self._models.tts.synthesize, text, self.agent.voice)
            consultation.play(audio)
            while consultation.playout_pending():
                await asyncio.sleep(PLAYOUT_POLL_SECONDS)
            await self._note(f"[announce] to {destination.name}: {text}")
            self.leg.transfer_to_consultation(consultation)
            return await _outcome(self._transfer, TRANSFER_TIMEOUT_SECONDS)
        except ModelError as exc:
            self._telemetry.model_error("tts")
            return 500, f"could not announce the caller: {exc}"
        finally:
            summary.cancel()
            hold.cancel()  # stopped here, not in the task: what Victoria says next must not be cut by it
            self.leg.stop_playout()
            self._consultation = None
            consultation.hangup()  # after a transfer the target has already left it: nothing is sent

    async def _hold_caller(self) -> None:
        """Until cancelled: the hold chime, cycle after cycle, so the caller knows the line is alive."""
        chime = SpeechAudio(hold_chime(self.leg.sample_rate), self.leg.sample_rate)
        while True:
            if not self.leg.playout_pending():
                self.leg.play(chime)
            await asyncio.sleep(PLAYOUT_POLL_SECONDS)


async def _outcome(future: asyncio.Future[tuple[int, str]], timeout: float) -> tuple[int, str]:
    """A SIP outcome the adapter reports later (status code, reason); 408 if none comes within ``timeout``."""
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout)
    except TimeoutError:
        return 408, f"no final answer within {timeout:.0f} s"
