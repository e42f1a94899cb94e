"""One answered call's conversation, read top to bottom.

    caller audio ─> VAD ─> Endpointer ─> STT stream (worker thread) ─> caller turn (committed)
        ─> LLM stream ─> SentenceChunker ─> TTS (worker thread) ─> playout ─> assistant turn (committed)

Runs on the event loop. ``run`` polls the leg every 20 ms: each frame is
judged by webrtcvad, the ``Endpointer`` turns that into speech start/end, and
frames of speech (with a short pre-roll) go to the call's recogniser on its own
worker thread. At the end of speech a reply task asks the LLM, speaks each
chunk as soon as it is synthesised, and commits the assistant turn when playout
ends. Caller speech during a reply (barge-in) clears playout at once, cancels
the reply and commits what the caller actually heard, marked interrupted.
Silence is reprompted, and a call that runs too long or stays silent is ended
politely.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from victoria_sip.application.announcement import announcement, summarise
from victoria_sip.application.call_log import CallLog
from victoria_sip.application.chunking import SentenceChunker
from victoria_sip.application.endpointing import Endpointer, SpeechEnded, SpeechStarted
from victoria_sip.application.history import trim_history
from victoria_sip.application.keypad import DigitCollector, EscapeKey, KeypadEntry
from victoria_sip.application.phrases import Phrases
from victoria_sip.application.telemetry import NoTelemetry
from victoria_sip.application.tools import tools_for
from victoria_sip.audio.hold_chime import hold_chime
from victoria_sip.audio.levels import rms_dbfs
from victoria_sip.audio.vad import SpeechDetector
from victoria_sip.domain import Agent, Call, Destination, Role, TurnLatency
from victoria_sip.domain.ports import (
    CallLeg, LanguageModel, RecognitionStream, SpeechAudio, SpeechToText, Telemetry, TextToSpeech, ToolRequest,
)
from victoria_sip.errors import ModelError

log = logging.getLogger("victoria.conversation")

FRAME_MS = 20
PRE_ROLL_FRAMES = 15  # 300 ms before the start decision: the first syllable is not lost
PLAYOUT_POLL_SECONDS = 0.02
MAX_FAILURES_IN_A_ROW = 2  # then the caller is handed off (fallback destination) or let go politely
TRANSFER_TIMEOUT_SECONDS = 20.0  # REFER sent -> final NOTIFY (the target rings meanwhile)
TARGET_RING_SECONDS = 25.0  # attended transfer: how long the target's phone may ring before the caller is told
DTMF_SECONDS_PER_KEY = 0.3  # a key's tone (~160 ms) and the gap after it


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


@dataclass
class _Utterance:
    """One assistant turn being spoken: its chunks (mark, text) and its timings."""

    chunks: list[tuple[int, str]] = field(default_factory=list)
    end_of_speech: float | None = None  # monotonic; None for phrases not answering the caller
    endpoint: float | None = None
    stt_final: float | None = None
    llm_request: float | None = None
    llm_first_token: float | None = None
    first_chunk: float | None = None
    tts_first_audio: float | None = None
    committed: bool = False

    def latency(self, first_frame_out: float | None) -> TurnLatency | None:
        if self.end_of_speech is None:
            return None

        def ms(t: float | None) -> float | None:
            return None if t is None else round((t - self.end_of_speech) * 1000, 1)

        return TurnLatency(
            stt_final_ms=ms(self.stt_final), llm_first_token_ms=ms(self.llm_first_token),
            tts_first_audio_ms=ms(self.tts_first_audio), first_frame_out_ms=ms(first_frame_out),
            endpoint_ms=ms(self.endpoint), llm_request_ms=ms(self.llm_request), first_chunk_ms=ms(self.first_chunk),
        )


class CallSession:
    def __init__(self, call: Call, agent: Agent, leg: CallLeg, models: ConversationModels,
                 phrases: Phrases, call_log: CallLog, telemetry: Telemetry | None = None) -> None:
        self.call = call
        self._telemetry = telemetry or NoTelemetry()
        self.agent = agent
        self.leg = leg
        self._models = models
        self._phrases = phrases
        self._call_log = call_log
        rules = agent.turn_taking
        self._detector = SpeechDetector(leg.sample_rate, FRAME_MS, rules.vad_aggressiveness)
        self._endpointer = Endpointer(rules.start_frames, rules.start_window, rules.hangover_ms, FRAME_MS)
        self._pending = np.zeros(0, np.int16)
        self._pre_roll: deque[np.ndarray] = deque(maxlen=PRE_ROLL_FRAMES)
        self._frame_index = 0
        self._stt_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"stt-{call.id.value[:8]}")
        self._stt_stream: RecognitionStream | None = None
        self._stt_opening: Future[RecognitionStream] | None = None
        self._stt_failed = False
        self._marks = 0
        self._speaking: _Utterance | None = None  # what the assistant is saying now
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
        self.peak_dbfs = -120.0

    # --- the loop ---------------------------------------------------------

    async def run(self) -> None:
        """Greet, then listen and answer until the call ends (the task is cancelled) or we hang up."""
        self._reply = asyncio.create_task(self._say_phrase(self.agent.first_message), name="greeting")
        if self._models.stt is not None:  # while the greeting plays
            try:
                self._stt_opening = self._stt_worker.submit(self._models.stt.open_stream, self.leg.sample_rate)
                self._stt_stream = await asyncio.wrap_future(self._stt_opening)
            except ModelError as exc:
                self._stt_failed = True
                self._telemetry.model_error("stt")
                log.error("call %s: no speech recognition on this call: %s", self.call.id, exc)
        while True:
            self._process_audio()
            self._on_keypad_result(self._keypad.tick(time.monotonic()))
            self._watch_time()
            await asyncio.sleep(FRAME_MS / 1000)

    async def close(self) -> None:
        """The call is over: finish (commit) what was being said, stop the recogniser."""
        if self._reply is not None and not self._reply.done():
            self._reply.cancel()
            await asyncio.gather(self._reply, return_exceptions=True)
        if self._stt_opening is not None:
            self._stt_worker.submit(self._close_stt_stream)  # after the open, however late it finishes
        self._stt_worker.shutdown(wait=False)

    def _close_stt_stream(self) -> None:
        """On the STT worker: give back the call's recogniser (a PocketSphinx decoder goes back to its pool)."""
        if self._stt_opening.cancelled() or self._stt_opening.exception() is not None:
            return
        try:
            self._stt_opening.result().close()
        except ModelError as exc:
            log.warning("call %s: could not close its recogniser: %s", self.call.id, exc)

    def _process_audio(self) -> None:
        samples = np.frombuffer(self.leg.read_audio(), dtype="<i2")
        if not len(samples):
            return
        buffered = np.concatenate((self._pending, samples))
        size = self._detector.frame_samples
        whole = len(buffered) // size * size
        self._pending = buffered[whole:]
        for frame in buffered[:whole].reshape(-1, size):
            self._on_frame(frame)

    def _on_frame(self, frame: np.ndarray) -> None:
        t_ms = self._frame_index * FRAME_MS
        self._frame_index += 1
        voiced = self._detector.is_speech(frame)
        if voiced:
            self.peak_dbfs = max(self.peak_dbfs, rms_dbfs(frame))
        event = self._endpointer.feed(voiced, t_ms)
        if isinstance(event, SpeechStarted):
            self._on_speech_started()
        if self._endpointer.speaking or isinstance(event, SpeechEnded):
            self._feed_stt(frame)
            self._check_barge_in()
        else:
            self._pre_roll.append(frame)
        if isinstance(event, SpeechEnded):
            self._on_speech_ended(event, t_ms)

    def _watch_time(self) -> None:
        now = time.monotonic()
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

    # --- the caller's keypad -------------------------------------------------

    def on_keypad(self, key: str) -> None:
        """One DTMF digit from the caller."""
        self._reprompts = 0
        self._idle_since = time.monotonic()
        self._on_keypad_result(self._keypad.press(key, time.monotonic()))

    def _on_keypad_result(self, result: KeypadEntry | EscapeKey | None) -> None:
        if result is None or self._ending:
            return
        if self._transfer is not None and not (isinstance(result, EscapeKey) and result.action == "hangup"):
            log.info("call %s: key ignored while the caller is being put through", self.call.id)
            return
        if isinstance(result, EscapeKey):
            log.info("call %s: escape key %s: %s", self.call.id, result.key, result.action)
            if result.action == "hangup":
                self._end_call()
            elif result.action == "repeat":
                previous = self._interrupt()
                self._reply = asyncio.create_task(self._repeat_last_reply(previous), name="repeat")
            elif result.action.startswith("transfer:"):
                self.put_through(result.action.removeprefix("transfer:"), f"caller pressed {result.key}")
            return
        if not result.digits:
            return  # the terminator alone
        log.info("call %s: keypad entry of %d digit(s)", self.call.id, len(result.digits))
        now = time.monotonic()
        previous = self._interrupt()
        transcript = asyncio.get_running_loop().create_future()
        transcript.set_result(f"[keypad] {result.digits}")
        utterance = _Utterance(end_of_speech=now, endpoint=now)
        self._reply = asyncio.create_task(self._answer(transcript, utterance, previous), name="keypad-reply")

    # --- putting the caller through -----------------------------------------

    def put_through(self, name: str, why: str) -> None:
        """Transfer the caller to one of the agent's named destinations (never anything else)."""
        destination = self.agent.destination(name)
        if destination is None or self._transfer is not None or self._ending:
            log.warning("call %s: no transfer to %r (%s)", self.call.id, name,
                        "not a destination of this agent" if destination is None else "busy ending or transferring")
            return
        previous = self._interrupt()
        self._transfer = asyncio.get_running_loop().create_future()
        self._reply = asyncio.create_task(self._transfer_to(destination, why, previous), name="transfer")

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
            await self._say_phrase(self.agent.transfer_message)
            if destination.attended:
                code, reason = await self._attended_transfer(destination)
            else:
                self.leg.transfer(destination.uri)
                code, reason = await _outcome(self._transfer, TRANSFER_TIMEOUT_SECONDS)
            ok = 200 <= code < 300
            await self._note(f"[transfer] to {destination.name} ({why}): {'connected' if ok else 'failed'}, "
                             f"{code} {reason}".strip())
            if ok:
                self._ending = True
                self.leg.hangup()  # the caller talks to the target now
                return
            log.warning("call %s: transfer to %s failed (%d %s); staying on the call", self.call.id,
                        destination.name, code, reason)
            await self._say_phrase(self.agent.transfer_failed_message)
        finally:
            self._transfer = None
            self._idle_since = time.monotonic()

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

    async def _repeat_last_reply(self, previous: asyncio.Task[None] | None) -> None:
        if previous is not None and not previous.done():
            await asyncio.gather(previous, return_exceptions=True)
        said = [t.content for t in self.call.conversation.turns if t.role is Role.ASSISTANT]
        if not said:
            return
        utterance = _Utterance()
        self._speaking = utterance
        chunker = SentenceChunker()  # sentence by sentence, as the first time: the first one starts soon
        chunks = chunker.push(said[-1]) + [tail for tail in (chunker.flush(),) if tail]
        try:
            for chunk in chunks:
                await self._speak_chunk(utterance, chunk)
            await self._wait_for_playout()
        except ModelError as exc:
            log.error("call %s: could not repeat the last reply: %s", self.call.id, exc)
        finally:
            await self._commit(utterance)

    def _assistant_busy(self) -> bool:
        return (self._reply is not None and not self._reply.done()) or self.leg.playout_pending() \
            or self._transfer is not None

    # --- caller speech ----------------------------------------------------

    def _on_speech_started(self) -> None:
        self._reprompts = 0
        for frame in self._pre_roll:
            self._feed_stt(frame)
        self._pre_roll.clear()

    def _check_barge_in(self) -> None:
        rules = self.agent.turn_taking
        audible = self._speaking is not None or self.leg.playout_pending()
        # while putting the caller through, their voice (an "okay" over "please hold", a word on hold) must not
        # cancel the transfer: only hanging up does
        if not (rules.barge_in and audible and not self._ending and self._transfer is None):
            return
        if self._endpointer.voiced_in_window() >= rules.barge_in_frames:
            self._interrupt()
            self._telemetry.barge_in(self.agent.name)
            log.info("call %s: barge-in, playout stopped", self.call.id)

    def _on_speech_ended(self, event: SpeechEnded, decided_ms: int) -> None:
        now = time.monotonic()
        end_of_speech = now - (decided_ms + FRAME_MS - event.at_ms) / 1000
        if self._stt_stream is None or self._stt_failed or self._ending:
            return
        if self._transfer is not None:  # said on hold, to nobody: finished unread, so the next turn starts clean
            self._stt_worker.submit(self._stt_stream.finish)
            log.info("call %s: speech while being put through, not answered", self.call.id)
            return
        transcript = asyncio.wrap_future(self._stt_worker.submit(self._stt_stream.finish))
        previous = self._reply
        utterance = _Utterance(end_of_speech=end_of_speech, endpoint=now)
        self._reply = asyncio.create_task(self._answer(transcript, utterance, previous), name="reply")

    def _feed_stt(self, frame: np.ndarray) -> None:
        if self._stt_stream is None or self._stt_failed:
            return
        audio = SpeechAudio(frame.tobytes(), self.leg.sample_rate)
        self._stt_worker.submit(self._stt_stream.accept, audio).add_done_callback(self._on_stt_accepted)

    def _on_stt_accepted(self, future) -> None:
        if not future.cancelled() and isinstance(future.exception(), ModelError) and not self._stt_failed:
            self._stt_failed = True  # logged once; the reply path plays the apology
            self._telemetry.model_error("stt")
            log.error("call %s: speech recognition failed: %s", self.call.id, future.exception())

    # --- the assistant speaking -------------------------------------------

    async def _answer(self, transcript: asyncio.Future[str], utterance: _Utterance,
                      previous: asyncio.Task[None] | None) -> None:
        try:
            try:
                text = (await transcript).strip()
            except ModelError as exc:
                self._telemetry.model_error("stt")
                log.error("call %s: speech recognition failed: %s", self.call.id, exc)
                await self._apologise(utterance)
                return
            utterance.stt_final = time.monotonic()
            if previous is not None and not previous.done():
                await asyncio.gather(previous, return_exceptions=True)  # a reprompt or greeting still finishing
            if not text:
                log.info("call %s: speech without words (noise?), not answered", self.call.id)
                return
            caller_turn = self.call.conversation.add_turn(Role.CALLER, text)
            await self._call_log.add_turn(self.call.id, caller_turn)  # committed before the LLM is asked
            log.debug("call %s: caller said %r", self.call.id, text)
            await self._speak_reply(utterance)
        finally:
            await self._commit(utterance)

    async def _speak_reply(self, utterance: _Utterance) -> None:
        history = trim_history(self.call.conversation.turns, self.agent.history_turns, self.agent.history_tokens)
        chunker = SentenceChunker()
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
            self._telemetry.model_error("tts" if utterance.first_chunk is not None else "llm")  # who kept us waiting
            log.error("call %s: no reply within max_reply_delay (%.1f s)", self.call.id, self.agent.max_reply_delay)
            await self._apologise(utterance, hand_off=f"no reply within {self.agent.max_reply_delay:g} s")
            return
        except ModelError as exc:
            self._telemetry.model_error("tts" if isinstance(exc, _SpeechFailed) else "llm")
            log.error("call %s: no reply: %s", self.call.id, exc)
            if not utterance.chunks:
                await self._apologise(utterance)
                return
        else:
            self._failures = 0
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

    async def _speak_chunk(self, utterance: _Utterance, text: str) -> None:
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
        self._play(utterance, text, audio)

    async def _say_phrase(self, text: str) -> None:
        utterance = _Utterance()
        self._speaking = utterance
        try:
            self._play(utterance, text, self._phrases.get(self.agent, text))
            await self._wait_for_playout()
        finally:
            await self._commit(utterance)

    async def _apologise(self, utterance: _Utterance, hand_off: str | None = None) -> None:
        """Say sorry; after ``MAX_FAILURES_IN_A_ROW`` of them, or at once with ``hand_off`` (why), hand off."""
        self._failures += 1
        self._speaking = utterance
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

    def _play(self, utterance: _Utterance, text: str, audio: SpeechAudio) -> None:
        self._marks += 1
        utterance.chunks.append((self._marks, text))
        self.leg.play(audio, self._marks)

    async def _wait_for_playout(self) -> None:
        while self.leg.playout_pending():
            await asyncio.sleep(PLAYOUT_POLL_SECONDS)

    async def _commit(self, utterance: _Utterance) -> None:
        """Store the assistant turn as heard: chunks whose playout had started; interrupted if any was cut."""
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

    async def _on_stt_worker(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._stt_worker, function, *args)


async def _outcome(future: asyncio.Future[tuple[int, str]], timeout: float) -> tuple[int, str]:
    """A SIP outcome the adapter reports later (status code, reason); 408 if none comes within ``timeout``."""
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout)
    except TimeoutError:
        return 408, f"no final answer within {timeout:.0f} s"


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
