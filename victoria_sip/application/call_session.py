"""One answered call's conversation, read top to bottom.

    caller audio ─> VAD ─> Endpointer ─> STT stream (recogniser pool) ─> caller turn (committed)
        ─> LLM stream ─> SentenceChunker ─> TTS (worker thread) ─> playout ─> assistant turn (committed)
    (a pause: the words so far ─> a reply prepared and held ─> released the moment the turn ends on them)

Runs on the event loop. ``run`` greets the caller and joins the call to the
service's ``FrameTicker``, which every 20 ms hands it the caller's new frames
(``caller_side.py``: webrtcvad, the ``Endpointer``, the recogniser, barge-in)
and runs its timers. At a pause in the caller's speech the words so far are
recognised and a reply is prepared on them, held unheard; at the end of speech
that reply is released if the caller said nothing more, or else a reply task
asks the LLM, speaks each chunk as soon as it is synthesised, and commits the
assistant turn when playout ends. Caller speech during a reply (barge-in) clears playout at once, cancels
the reply and commits what the caller actually heard, marked interrupted.
Silence is reprompted, and a call that runs too long or stays silent is ended
politely.

The session tells the story and holds what the whole call shares (the reply
task, whether the call is ending, the reprompt clock); the work is done by its
collaborators, each with one job: ``CallerSide`` (turn-taking), ``ReplySpeaker``
(what the assistant says and commits), ``KeypadActions``, ``PutThrough``.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from victoria_sip.application.call_log import CallLog
from victoria_sip.application.caller_side import CallerSide
from victoria_sip.application.frame_ticker import FrameTicker
from victoria_sip.application.keypad_actions import KeypadActions
from victoria_sip.application.phrases import Phrases
from victoria_sip.application.put_through import PutThrough
from victoria_sip.application.reply_speaker import ReplySpeaker
from victoria_sip.application.speculation import Speculation
from victoria_sip.application.telemetry import NoTelemetry
from victoria_sip.application.utterance import Utterance
from victoria_sip.domain import Agent, Call, Role
from victoria_sip.domain.ports import (
    CallLeg,
    LanguageModel,
    Overload,
    SpeechAudio,
    SpeechToText,
    Telemetry,
    TextToSpeech,
    ToolCaller,
)
from victoria_sip.errors import ModelError

log = logging.getLogger("victoria.conversation")


@dataclass(frozen=True)
class ConversationModels:
    """The models a conversation uses, shared by every call. ``stt`` None: listen only."""

    stt: SpeechToText | None
    llm: LanguageModel
    tts: TextToSpeech
    apology: SpeechAudio
    apology_text: str
    tts_workers: Executor
    tools: ToolCaller | None = None  # the site's services, for agents with [[agents.tools]]


class CallSession:
    def __init__(self, call: Call, agent: Agent, leg: CallLeg, models: ConversationModels,
                 phrases: Phrases, call_log: CallLog, telemetry: Telemetry | None = None,
                 ticker: FrameTicker | None = None) -> None:
        self.call = call
        self.agent = agent
        self.leg = leg
        self._models = models
        self._call_log = call_log
        self._telemetry = telemetry or NoTelemetry()
        self._ticker = ticker if ticker is not None else FrameTicker()  # the service shares one among its calls
        self._stopped: asyncio.Future[None] | None = None  # run() waits on it; the ticker fails it on an error
        self._reply: asyncio.Task[None] | None = None  # what the assistant is doing now: one task at a time
        self._idle_since = time.monotonic()
        self._started = time.monotonic()
        self._reprompts = 0
        self._ending = False
        self._speaker = ReplySpeaker(call, agent, leg, models, phrases, call_log, self._telemetry, self._note, self)
        self._put_through = PutThrough(call, agent, leg, models, self._telemetry, self._speaker, self._note, self)
        self._keypad = KeypadActions(call, agent, self._speaker, self._put_through, self)
        self._caller = CallerSide(call, agent, leg, self._telemetry, self)

    @property
    def peak_dbfs(self) -> float:
        """The caller's loudest speech so far."""
        return self._caller.peak_dbfs

    # --- the story --------------------------------------------------------

    async def run(self, overload: Overload | None = None) -> None:
        """Greet, then listen and answer until the call ends (the task is cancelled) or we hang up.
        ``overload``: all assistants are busy: say so and put the caller through to the fallback destination."""
        self._stopped = asyncio.get_running_loop().create_future()
        self._ticker.add(self)
        try:
            if overload is not None:
                await self._hand_off_busy(overload)
            else:
                await self._converse()
        finally:
            self._ticker.remove(self)

    async def _converse(self) -> None:
        self._reply = asyncio.create_task(self._speaker.say_phrase(self.agent.first_message), name="greeting")
        if self._models.stt is not None:
            try:
                self._caller.open_recogniser(self._models.stt)
            except ModelError as exc:
                self._telemetry.model_error("stt")
                log.error("call %s: no speech recognition on this call: %s", self.call.id, exc)
        self._caller.listen()
        await self._stopped  # the ticker serves the call from here on

    async def _hand_off_busy(self, overload: Overload) -> None:
        """No conversation (the models are full): the busy message, the transfer, and goodbye if it fails."""
        self._caller.listen()  # for the timers; nothing is transcribed
        await self._speaker.say_phrase(self.agent.busy_message)
        await self._note(f"[busy] all assistants busy ({overload.reason}): {overload.detail}")
        self.put_through(self.agent.fallback_destination, f"all assistants busy ({overload.reason})")
        if self._reply is not None:
            await asyncio.gather(self._reply, return_exceptions=True)
        if not self._ending:  # the transfer failed: nobody here can take the call
            self.end_call()
        await self._stopped

    def caller_frames(self) -> np.ndarray:
        """The ticker's first call each pass: the caller's whole frames received since the last one."""
        return self._caller.caller_frames()

    def on_tick(self, frames: np.ndarray, levels: np.ndarray, now: float) -> None:
        """The ticker's call, every 20 ms: the caller's new frames (with their levels), then the timers."""
        self._speaker.on_tick()
        if not self._caller.listening:
            return
        self._caller.frames(frames, levels)
        self._keypad.tick(now)
        self._watch_time(now)

    def failed(self, error: BaseException) -> None:
        """The ticker could not serve this call: ``run`` ends with the error (logged as the call's crash)."""
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_exception(error)

    async def close(self) -> None:
        """The call is over: finish (commit) what was being said, stop the recogniser."""
        self._caller.close()
        if self._reply is not None and not self._reply.done():
            self._reply.cancel()
            await asyncio.gather(self._reply, return_exceptions=True)
        self._speaker.close()
        self._caller.close_recogniser()

    def _watch_time(self, now: float) -> None:
        rules = self.agent.turn_taking
        if self._ending:
            return
        if now - self._started > rules.max_call_seconds:
            log.info("call %s: maximum call duration (%.0f s) reached", self.call.id, rules.max_call_seconds)
            self.end_call()
            return
        if self._caller.speaking or self.assistant_busy():
            self._idle_since = now
        elif now - self._idle_since > rules.reprompt_after_seconds:
            self._idle_since = now
            if self._reprompts >= rules.max_reprompts:
                log.info("call %s: caller silent after %d reprompts", self.call.id, self._reprompts)
                self.end_call()
            else:
                self._reprompts += 1
                self._reply = asyncio.create_task(self._speaker.say_phrase(self.agent.reprompt_message),
                                                  name="reprompt")

    def end_politely(self) -> None:
        """Say goodbye (cutting short what is being said) and hang up: the service is shutting down."""
        if not self._ending:
            log.info("call %s: shutting down: saying goodbye", self.call.id)
            self.end_call()

    def end_call(self) -> None:
        """Goodbye, cutting short whatever is being said, then hang up."""
        self._ending = True
        self.start_reply("goodbye", self._say_goodbye)

    async def _say_goodbye(self, previous: asyncio.Task[None] | None) -> None:
        if previous is not None and not previous.done():
            previous.cancel()
            await asyncio.gather(previous, return_exceptions=True)
        self.leg.stop_playout()
        await self._speaker.say_phrase(self.agent.goodbye_message)
        self.leg.hangup()

    # --- what the collaborators ask of the call ---------------------------

    @property
    def ending(self) -> bool:
        return self._ending

    @property
    def transferring(self) -> bool:
        return self._put_through.active

    def start_reply(self, name: str, reply: Callable[[asyncio.Task[None] | None], Awaitable[None]],
                    interrupt: bool = False) -> None:
        """The assistant's next task, handed the one before it (cut short first with ``interrupt``)."""
        previous = self._interrupt() if interrupt else self._reply
        self._reply = asyncio.create_task(reply(previous), name=name)

    def answer(self, transcript: asyncio.Future[str], utterance: Utterance, previous: asyncio.Task[None] | None,
               speculation: Speculation | None) -> Awaitable[None]:
        return self._speaker.answer(transcript, utterance, previous, speculation)

    def prepare(self, speculation: Speculation) -> asyncio.Task[None]:
        return asyncio.create_task(self._speaker.prepare(speculation), name="speculation")

    def assistant_busy(self) -> bool:
        return (self._reply is not None and not self._reply.done()) or self.leg.playout_pending() \
            or self._put_through.active

    def may_barge_in(self) -> bool:
        # while putting the caller through, their voice (an "okay" over "please hold", a word on hold) must not
        # cancel the transfer: only hanging up does
        return self._speaker.audible and not self._ending and not self._put_through.active

    def barge_in(self) -> None:
        self._interrupt()

    def caller_spoke(self) -> None:
        self._reprompts = 0

    def caller_active(self) -> None:
        self._reprompts = 0
        self._idle_since = time.monotonic()

    def put_through(self, name: str, why: str) -> None:
        self._put_through.put_through(name, why)

    def connected(self) -> None:
        self._ending = True
        self.leg.hangup()  # the caller talks to the target now

    def transfer_over(self) -> None:
        self._idle_since = time.monotonic()

    def hang_up(self) -> None:
        if not self._ending:
            self.end_call()

    def hand_off(self, why: str) -> None:
        fallback = self.agent.fallback_destination
        log.warning("call %s: %s: %s", self.call.id, why, f"handing off to {fallback}" if fallback else "ending the call")
        if fallback:
            self.put_through(fallback, why)
        elif not self._ending:
            self.end_call()

    def on_keypad(self, key: str) -> None:
        """One DTMF digit from the caller."""
        self._keypad.press(key)

    def on_transfer_finished(self, status_code: int, reason: str) -> None:
        self._put_through.on_transfer_finished(status_code, reason)

    def on_consultation_answered(self, status_code: int, reason: str) -> None:
        self._put_through.on_consultation_answered(status_code, reason)

    def _interrupt(self) -> asyncio.Task[None] | None:
        """Stop what the assistant is saying (it is committed as heard); returns the reply task."""
        if self._speaker.stop() and self._reply is not None:
            self._reply.cancel()
        return self._reply

    async def _note(self, text: str) -> None:
        """A system turn: something Victoria did on the call, stored with the conversation."""
        turn = self.call.conversation.add_turn(Role.SYSTEM, text)
        await self._call_log.add_turn(self.call.id, turn)
