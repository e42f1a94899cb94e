"""One answered call's conversation, read top to bottom.

    caller audio ─> VAD ─> Endpointer ─> STT stream (recogniser pool) ─> caller turn (committed)
        ─> LLM stream ─> SentenceChunker ─> TTS (worker thread) ─> playout ─> assistant turn (committed)
    (a pause: the words so far ─> a reply prepared and held ─> released the moment the turn ends on them)

Runs on the event loop. ``run`` greets the caller and joins the call to the
service's ``FrameTicker``, which every 20 ms hands it the caller's new frames
(``caller_audio.py``: webrtcvad, the ``Endpointer``, the recogniser, barge-in)
and runs its timers. At a pause in the caller's speech the words so far are
recognised and a reply is prepared on them, held unheard; at the end of speech
that reply is released if the caller said nothing more, or else a reply task
asks the LLM, speaks each chunk as soon as it is synthesised, and commits the
assistant turn when playout ends. Caller speech during a reply (barge-in) clears playout at once, cancels
the reply and commits what the caller actually heard, marked interrupted.
Silence is reprompted, and a call that runs too long or stays silent is ended
politely. Putting the caller through lives in ``put_through.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from victoria_sip.application.call_log import CallLog
from victoria_sip.application.caller_turn import CallerTurn
from victoria_sip.application.caller_audio import PRE_ROLL_FRAMES, CallerAudioMixin
from victoria_sip.application.chunking import SentenceChunker
from victoria_sip.application.endpointing import Endpointer
from victoria_sip.application.frame_ticker import FRAME_MS, FrameTicker
from victoria_sip.application.history import trim_history
from victoria_sip.application.keypad import DigitCollector
from victoria_sip.application.keypad_actions import KeypadMixin
from victoria_sip.application.phrases import Phrases
from victoria_sip.application.put_through import PutThroughMixin
from victoria_sip.application.speculation import Speculation
from victoria_sip.application.telemetry import NoTelemetry
from victoria_sip.application.tools import tools_for
from victoria_sip.application.utterance import Utterance
from victoria_sip.audio.levels import SILENCE_DBFS
from victoria_sip.audio.quiet_onset import trim_quiet_onset
from victoria_sip.audio.vad import SpeechDetector
from victoria_sip.domain import Agent, Call, ConversationTurn, Role
from victoria_sip.domain.ports import (
    CallLeg,
    LanguageModel,
    Overload,
    RecognitionStream,
    SpeechAudio,
    SpeechToText,
    Telemetry,
    TextToSpeech,
    ToolRequest,
)
from victoria_sip.errors import ModelError

log = logging.getLogger("victoria.conversation")

TRANSCRIPT_TIMEOUT_SECONDS = 15.0  # end of speech -> transcript; the pool replaces a hung worker within ~10 s
MAX_FAILURES_IN_A_ROW = 2  # then the caller is handed off (fallback destination) or let go politely


class _SpeechFailed(ModelError):
    """TTS failed on a chunk of a reply (told apart from the LLM failing, for metrics)."""


@dataclass(frozen=True)
class ConversationModels:
    """The models a conversation uses, shared by every call. ``stt`` None: listen only."""

    stt: SpeechToText | None
    llm: LanguageModel
    tts: TextToSpeech
    apology: SpeechAudio
    apology_text: str
    tts_workers: Executor


class CallSession(CallerAudioMixin, KeypadMixin, PutThroughMixin):
    def __init__(self, call: Call, agent: Agent, leg: CallLeg, models: ConversationModels,
                 phrases: Phrases, call_log: CallLog, telemetry: Telemetry | None = None,
                 ticker: FrameTicker | None = None) -> None:
        self.call = call
        self._telemetry = telemetry or NoTelemetry()
        self.agent = agent
        self.leg = leg
        self._models = models
        self._phrases = phrases
        self._call_log = call_log
        rules = agent.turn_taking
        self._detector = SpeechDetector(leg.sample_rate, FRAME_MS, rules.vad_aggressiveness)
        self._endpointer = Endpointer(rules.start_frames, rules.start_window, rules.hangover_ms, FRAME_MS,
                                      pause_ms=rules.pause_ms)
        self._ticker = ticker if ticker is not None else FrameTicker()  # the service shares one among its calls
        self._stopped: asyncio.Future[None] | None = None  # run() waits on it; the ticker fails it on an error
        self._listening = False  # frames are taken once the recogniser is open (they wait in the leg till then)
        self._drained: list[asyncio.Future[None]] = []  # woken by a tick once everything queued has been played
        self._pending = np.zeros(0, np.int16)
        self._pre_roll: deque[np.ndarray] = deque(maxlen=PRE_ROLL_FRAMES)
        self._frame_index = 0
        self._stt_stream: RecognitionStream | None = None
        self._stt_failed = False
        self._turn: CallerTurn | None = None  # the caller's words, recognised pause by pause
        self._pauses = 0
        self._speculation: Speculation | None = None  # a reply prepared in the current pause, held
        self._marks = 0
        self._speaking: Utterance | None = None  # what the assistant is saying now
        self._reply: asyncio.Task[None] | None = None
        self._idle_since = time.monotonic()
        self._started = time.monotonic()
        self._reprompts = 0
        self._ending = False
        self._transfer: asyncio.Future[tuple[int, str]] | None = None  # set while putting the caller through
        self._consultation: asyncio.Future[tuple[int, str]] | None = None  # set while calling an attended target
        self._failures = 0  # model failures in a row: each one the caller heard an apology for
        keypad = agent.keypad
        self._keypad = DigitCollector(keypad.inter_digit_seconds, keypad.terminator, dict(keypad.escape_keys))
        self.peak_dbfs = SILENCE_DBFS

    # --- the loop ---------------------------------------------------------

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
        self._reply = asyncio.create_task(self._say_phrase(self.agent.first_message), name="greeting")
        if self._models.stt is not None:
            try:
                self._stt_stream = self._models.stt.open_stream(self.leg.sample_rate)
                self._turn = CallerTurn(self._stt_stream)
            except ModelError as exc:
                self._stt_failed = True
                self._telemetry.model_error("stt")
                log.error("call %s: no speech recognition on this call: %s", self.call.id, exc)
        self._listening = True
        await self._stopped  # the ticker serves the call from here on

    async def _hand_off_busy(self, overload: Overload) -> None:
        """No conversation (the models are full): the busy message, the transfer, and goodbye if it fails."""
        self._listening = True  # for the timers; nothing is transcribed
        await self._say_phrase(self.agent.busy_message)
        await self._note(f"[busy] all assistants busy ({overload.reason}): {overload.detail}")
        self.put_through(self.agent.fallback_destination, f"all assistants busy ({overload.reason})")
        if self._reply is not None:
            await asyncio.gather(self._reply, return_exceptions=True)
        if not self._ending:  # the transfer failed: nobody here can take the call
            self._end_call()
        await self._stopped

    def on_tick(self, frames: np.ndarray, levels: np.ndarray, now: float) -> None:
        """The ticker's call, every 20 ms: the caller's new frames (with their levels), then the timers."""
        if self._drained and not self.leg.playout_pending():
            for waiter in self._drained:
                if not waiter.done():
                    waiter.set_result(None)
            self._drained.clear()
        if not self._listening:
            return
        for frame, level in zip(frames, levels.tolist()):
            self._on_frame(frame, level)
        if self._keypad.collecting:
            self._on_keypad_result(self._keypad.tick(now))
        self._watch_time(now)

    def failed(self, error: BaseException) -> None:
        """The ticker could not serve this call: ``run`` ends with the error (logged as the call's crash)."""
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_exception(error)

    async def close(self) -> None:
        """The call is over: finish (commit) what was being said, stop the recogniser."""
        speculation, self._speculation = self._speculation, None
        if speculation is not None:
            speculation.discard()
        if self._reply is not None and not self._reply.done():
            self._reply.cancel()
            await asyncio.gather(self._reply, return_exceptions=True)
        for waiter in self._drained:  # no tick will come any more
            waiter.cancel()
        if self._stt_stream is not None:
            self._stt_stream.close()

    def _watch_time(self, now: float) -> None:
        rules = self.agent.turn_taking
        if self._ending:
            return
        if now - self._started > rules.max_call_seconds:
            log.info("call %s: maximum call duration (%.0f s) reached", self.call.id, rules.max_call_seconds)
            self._end_call()
            return
        if self._endpointer.speaking or self._assistant_busy():
            self._idle_since = now
        elif now - self._idle_since > rules.reprompt_after_seconds:
            self._idle_since = now
            if self._reprompts >= rules.max_reprompts:
                log.info("call %s: caller silent after %d reprompts", self.call.id, self._reprompts)
                self._end_call()
            else:
                self._reprompts += 1
                self._reply = asyncio.create_task(self._say_phrase(self.agent.reprompt_message), name="reprompt")

    async def _note(self, text: str) -> None:
        """A system turn: something Victoria did on the call, stored with the conversation."""
        turn = self.call.conversation.add_turn(Role.SYSTEM, text)
        await self._call_log.add_turn(self.call.id, turn)

    def _interrupt(self) -> asyncio.Task[None] | None:
        """Stop what the assistant is saying (it is committed as heard); returns the reply task."""
        if self._speaking is not None or self.leg.playout_pending():
            self.leg.stop_playout()  # first: the caller hears us stop within a frame or two
            self._speaking = None  # the reply task still holds it, to commit what was heard
            if self._reply is not None:
                self._reply.cancel()
        return self._reply

    def _assistant_busy(self) -> bool:
        return (self._reply is not None and not self._reply.done()) or self.leg.playout_pending() \
            or self._transfer is not None

    # --- the assistant speaking -------------------------------------------

    async def _answer(self, transcript: asyncio.Future[str], utterance: Utterance,
                      previous: asyncio.Task[None] | None, speculation: Speculation | None = None) -> None:
        try:
            try:
                text = (await asyncio.wait_for(transcript, TRANSCRIPT_TIMEOUT_SECONDS)).strip()
            except (TimeoutError, ModelError) as exc:
                self._settle_speculation(speculation, hit=False)
                self._telemetry.model_error("stt")
                log.error("call %s: %s", self.call.id, f"speech recognition failed: {exc}"
                          if isinstance(exc, ModelError) else f"no transcript within {TRANSCRIPT_TIMEOUT_SECONDS:.0f} s")
                await self._apologise(utterance)
                return
            utterance.stt_final = time.monotonic()
            if previous is not None and not previous.done():
                await asyncio.gather(previous, return_exceptions=True)  # a reprompt or greeting still finishing
            hit = speculation is not None and bool(text) and speculation.matches(text)
            self._settle_speculation(speculation, hit)
            if not text:
                log.info("call %s: speech without words (noise?), not answered", self.call.id)
                return
            caller_turn = self.call.conversation.add_turn(Role.CALLER, text)
            await self._call_log.add_turn(self.call.id, caller_turn)  # committed before anything of a reply is heard
            log.debug("call %s: caller said %r", self.call.id, text)
            if hit:
                speculation.release()
                await speculation.task  # cancelling this reply (a barge-in) cancels the prepared one with it
            else:
                await self._speak_reply(utterance)
        finally:
            await self._commit(utterance)

    def _settle_speculation(self, speculation: Speculation | None, hit: bool) -> None:
        if speculation is None:
            return
        if not hit:
            speculation.discard()
        self._telemetry.speculation(self.agent.name, "hit" if hit else "miss")

    async def _prepare_reply(self, speculation: Speculation) -> None:
        """A reply on the words so far, held until released: ask the LLM, synthesise, then wait to be heard."""
        utterance = speculation.utterance
        said = ConversationTurn(index=len(self.call.conversation.turns), role=Role.CALLER,
                                content=speculation.words, at=datetime.now(timezone.utc))
        try:
            await self._speak_reply(utterance, said)
        finally:
            await self._commit(utterance)

    async def _speak_reply(self, utterance: Utterance, said: ConversationTurn | None = None) -> None:
        """Ask the LLM and speak its reply; ``said``: the caller's words when they are not stored yet (a reply
        prepared in a pause)."""
        turns = [*self.call.conversation.turns, said] if said is not None else self.call.conversation.turns
        history = trim_history(turns, self.agent.history_turns, self.agent.history_tokens)
        chunker = SentenceChunker()
        if utterance.held is None:
            self._speaking = utterance
        utterance.llm_request = time.monotonic()
        requests: list[ToolRequest] = []
        # the caller must hear something within max_reply_delay of the end of their speech
        started = utterance.end_of_speech or utterance.llm_request
        first_audio_due = started + self.agent.max_reply_delay - time.monotonic() + asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout_at(first_audio_due) as first_audio:
                async for delta in self._models.llm.stream_reply(self.agent, history, tools_for(self.agent)):
                    if utterance.llm_first_token is None:
                        utterance.llm_first_token = time.monotonic()
                    if isinstance(delta, ToolRequest):
                        requests.append(delta)  # acted on once what was said before it has been heard
                        continue
                    for chunk in chunker.push(delta):
                        await self._speak_chunk(utterance, chunk)
                        first_audio.reschedule(None)
                if tail := chunker.flush():
                    await self._speak_chunk(utterance, tail)
        except TimeoutError:
            await self._may_be_heard(utterance)  # a prepared reply's failure counts only if it was to be heard
            self._telemetry.model_error("tts" if utterance.first_chunk is not None else "llm")  # who kept us waiting
            log.error("call %s: no reply within max_reply_delay (%.1f s)", self.call.id, self.agent.max_reply_delay)
            await self._apologise(utterance, hand_off=f"no reply within {self.agent.max_reply_delay:g} s")
            return
        except ModelError as exc:
            await self._may_be_heard(utterance)
            self._telemetry.model_error("tts" if isinstance(exc, _SpeechFailed) else "llm")
            log.error("call %s: no reply: %s", self.call.id, exc)
            if not utterance.chunks:
                await self._apologise(utterance)
                return
        else:
            self._failures = 0
        await self._may_be_heard(utterance)  # a prepared reply acts (a transfer, a hang-up) only once released
        await self._wait_for_playout()
        for request in requests[:1]:  # one action per reply, logged after the words that came with it
            await self._commit(utterance)
            await self._tool_requested(request)

    async def _tool_requested(self, request: ToolRequest) -> None:
        """Log the model's request as a turn, then do it once this reply is stored, if it is allowed."""
        arguments = ", ".join(f"{k}={v}" for k, v in request.arguments.items())
        target = str(request.arguments.get("target", ""))
        if request.name == "transfer_call" and self.agent.destination(target) is not None:
            outcome, action = "accepted", lambda: self.put_through(target, "the model asked")
        elif request.name == "end_call":
            outcome, action = "accepted", lambda: self._ending or self._end_call()
        else:
            outcome, action = "refused: not an allowed action or destination", None
        log.info("call %s: the model asked for %s(%s): %s", self.call.id, request.name, arguments, outcome)
        await self._note(f"[tool] {request.name}({arguments}): {outcome}")
        if action is not None:
            asyncio.current_task().add_done_callback(lambda _: action())

    async def _speak_chunk(self, utterance: Utterance, text: str) -> None:
        if utterance.first_chunk is None:
            utterance.first_chunk = time.monotonic()
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            audio = await loop.run_in_executor(self._models.tts_workers, self._models.tts.synthesize, text,
                                               self.agent.voice)
        except ModelError as exc:
            raise _SpeechFailed(str(exc)) from exc
        self._telemetry.speech_synthesised(audio.seconds, time.monotonic() - started)
        if utterance.tts_first_audio is None:
            utterance.tts_first_audio = time.monotonic()
            audio = trim_quiet_onset(audio)  # the reply's first word without the voice's lead-in silence
        await self._may_be_heard(utterance)
        self._play(utterance, text, audio)

    async def _say_phrase(self, text: str) -> None:
        utterance = Utterance()
        self._speaking = utterance
        try:
            self._play(utterance, text, self._phrases.get(self.agent, text))
            await self._wait_for_playout()
        finally:
            await self._commit(utterance)

    async def _apologise(self, utterance: Utterance, hand_off: str | None = None) -> None:
        """Say sorry; after ``MAX_FAILURES_IN_A_ROW`` of them, or at once with ``hand_off`` (why), hand off."""
        self._failures += 1
        await self._may_be_heard(utterance)
        self._play(utterance, self._models.apology_text, self._models.apology)
        await self._wait_for_playout()
        if hand_off is None and self._failures >= MAX_FAILURES_IN_A_ROW:
            hand_off = f"models failed {self._failures} times in a row"
        if hand_off is not None:
            # once this reply has been stored, not from inside it (a transfer would cancel it)
            asyncio.current_task().add_done_callback(lambda _: self._hand_off(hand_off))

    def _hand_off(self, why: str) -> None:
        fallback = self.agent.fallback_destination
        log.warning("call %s: %s: %s", self.call.id, why, f"handing off to {fallback}" if fallback else "ending the call")
        if fallback:
            self.put_through(fallback, why)
        elif not self._ending:
            self._end_call()

    async def _may_be_heard(self, utterance: Utterance) -> None:
        """A prepared reply waits here until released; then it is what the assistant is saying."""
        await utterance.may_be_heard()
        self._speaking = utterance

    def _play(self, utterance: Utterance, text: str, audio: SpeechAudio) -> None:
        self._marks += 1
        utterance.chunks.append((self._marks, text))
        self.leg.speaking(True)  # more may follow: running dry before _wait_for_playout is a gap in the voice
        self.leg.play(audio, self._marks)

    async def _wait_for_playout(self) -> None:
        """All of the utterance is queued: wait until it has been played (a tick wakes us, no polling)."""
        self.leg.speaking(False)
        if not self.leg.playout_pending():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._drained.append(waiter)
        await waiter

    async def _commit(self, utterance: Utterance) -> None:
        """Store the assistant turn as heard: chunks whose playout had started; interrupted if any was cut."""
        if self._speaking is utterance:
            self.leg.speaking(False)  # however it ended, this utterance is over
        if utterance.committed or not utterance.chunks:
            return
        utterance.committed = True
        heard = [(mark, text) for mark, text in utterance.chunks if self.leg.playout_started(mark) is not None]
        interrupted = len(heard) < len(utterance.chunks) or self.leg.playout_pending() or _cancelling()
        if self._speaking is utterance:
            self._speaking = None
        if not heard:
            return
        first_out = self.leg.playout_started(heard[0][0])
        latency = utterance.latency(first_out)
        turn = self.call.conversation.add_turn(
            Role.ASSISTANT, " ".join(text for _, text in heard), interrupted=interrupted, latency=latency,
        )
        if latency is not None:
            self._telemetry.reply_timed(self.agent.name, latency)
        await asyncio.shield(self._call_log.add_turn(self.call.id, turn))

    def end_politely(self) -> None:
        """Say goodbye (cutting short what is being said) and hang up: the service is shutting down."""
        if not self._ending:
            log.info("call %s: shutting down: saying goodbye", self.call.id)
            self._end_call()

    def _end_call(self) -> None:
        self._ending = True
        previous = self._reply
        self._reply = asyncio.create_task(self._say_goodbye(previous), name="goodbye")

    async def _say_goodbye(self, previous: asyncio.Task[None] | None) -> None:
        if previous is not None and not previous.done():
            previous.cancel()
            await asyncio.gather(previous, return_exceptions=True)
        self.leg.stop_playout()
        await self._say_phrase(self.agent.goodbye_message)
        self.leg.hangup()


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
