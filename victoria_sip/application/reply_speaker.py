"""What the assistant says on one call, and the assistant turns it commits.

    caller's words (a transcript future) ─> caller turn stored ─> LLM stream ─> SentenceChunker
        ─> TTS (worker thread) ─> playout ─> assistant turn stored as heard (interrupted if cut)
    a reply prepared in a pause: the same, held until released (``Speculation``)
    fixed phrases (greeting, reprompt, goodbye), the apology after a model failure, the last reply repeated

Runs on the event loop, inside the session's reply tasks. What a reply asks
the call to do (put the caller through, hang up, hand off after failures) goes
back to the session through ``CallActions``; the session stops the voice on a
barge-in with ``stop``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Protocol

from victoria_sip.application.chunking import SentenceChunker
from victoria_sip.application.history import trim_history
from victoria_sip.application.site_tools import check_arguments, for_the_model, shown
from victoria_sip.application.tools import tools_for
from victoria_sip.application.utterance import Utterance
from victoria_sip.audio.quiet_onset import trim_quiet_onset
from victoria_sip.domain import ConversationTurn, Role, TurnLatency
from victoria_sip.domain.ports import ToolAnswer, ToolFailed, ToolRequest
from victoria_sip.errors import ModelError

if TYPE_CHECKING:
    from victoria_sip.application.call_log import CallLog
    from victoria_sip.application.call_session import ConversationModels
    from victoria_sip.application.phrases import Phrases
    from victoria_sip.application.speculation import Speculation
    from victoria_sip.domain import Agent, Call, SiteTool
    from victoria_sip.domain.ports import CallLeg, SpeechAudio, Telemetry

log = logging.getLogger("victoria.conversation")

TRANSCRIPT_TIMEOUT_SECONDS = 15.0  # end of speech -> transcript; the pool replaces a hung worker within ~10 s
MAX_FAILURES_IN_A_ROW = 2  # then the caller is handed off (fallback destination) or let go politely
TOOL_ROUNDS = 3  # site tools the model may call, one after another, for one turn of the caller


class _SpeechFailed(ModelError):
    """TTS failed on a chunk of a reply (told apart from the LLM failing, for metrics)."""


class CallActions(Protocol):
    """What a reply may ask of the call, once the reply has been stored."""

    def put_through(self, name: str, why: str) -> None: ...
    def hang_up(self) -> None: ...  # goodbye, unless the call is already ending
    def hand_off(self, why: str) -> None: ...  # to the fallback destination, or goodbye


class ReplySpeaker:
    def __init__(self, call: Call, agent: Agent, leg: CallLeg, models: ConversationModels, phrases: Phrases,
                 call_log: CallLog, telemetry: Telemetry, note: Callable[[str], Awaitable[None]],
                 actions: CallActions) -> None:
        self.call = call
        self.agent = agent
        self.leg = leg
        self._models = models
        self._phrases = phrases
        self._call_log = call_log
        self._telemetry = telemetry
        self._note = note
        self._actions = actions
        self._speaking: Utterance | None = None  # what the assistant is saying now
        self._marks = 0
        self._drained: list[asyncio.Future[None]] = []  # woken by a tick once everything queued has been played
        self._failures = 0  # model failures in a row: each one the caller heard an apology for
        self._tool_failures = 0  # site tool calls in a row that got no answer

    @property
    def audible(self) -> bool:
        """Something is being said, or still in the playout queue."""
        return self._speaking is not None or self.leg.playout_pending()

    def stop(self) -> bool:
        """Stop the voice at once if anything is audible (the reply task still commits what was heard)."""
        if not self.audible:
            return False
        self.leg.stop_playout()  # first: the caller hears us stop within a frame or two
        self._speaking = None
        return True

    def on_tick(self) -> None:
        """Wake whoever waits for the playout queue to run dry."""
        if self._drained and not self.leg.playout_pending():
            for waiter in self._drained:
                if not waiter.done():
                    waiter.set_result(None)
            self._drained.clear()

    def close(self) -> None:
        for waiter in self._drained:  # no tick will come any more
            waiter.cancel()

    # --- replies to the caller --------------------------------------------

    async def answer(self, transcript: asyncio.Future[str], utterance: Utterance,
                     previous: asyncio.Task[None] | None, speculation: Speculation | None = None) -> None:
        """The caller's turn: store their words, then reply (or release the reply prepared on them)."""
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

    async def prepare(self, speculation: Speculation) -> None:
        """A reply on the words so far, held until released: ask the LLM, synthesise, then wait to be heard."""
        utterance = speculation.utterance
        said = ConversationTurn(index=len(self.call.conversation.turns), role=Role.CALLER,
                                content=speculation.words, at=datetime.now(timezone.utc))
        try:
            await self._speak_reply(utterance, said)
        finally:
            await self._commit(utterance)

    async def _speak_reply(self, utterance: Utterance, said: ConversationTurn | None = None,
                           tool_rounds: int = TOOL_ROUNDS) -> None:
        """Ask the LLM and speak its reply; ``said``: the caller's words when they are not stored yet (a reply
        prepared in a pause); ``tool_rounds``: how many more site tools it may call before it must answer."""
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
            tool = self.agent.tool(request.name)
            if tool is not None and tool_rounds > 0:
                await self._use_site_tool(tool, request.arguments, tool_rounds)
            else:
                await self._tool_requested(request)

    async def _use_site_tool(self, tool: SiteTool, arguments: dict, tool_rounds: int) -> None:
        """Call one of the site's services for the model (the filler said if it is slow), give it the answer, and
        speak what the model makes of it. A barge-in cancels this reply task, and the request with it."""
        request = shown(tool, arguments)
        problem = check_arguments(tool, arguments)
        seconds = None
        if problem is not None:  # never sent: the model is told, and may ask again
            outcome, answer = "invalid", f"not called: the arguments do not fit the tool: {problem}"
        else:
            await self._note(f"[tool] {request}")
            started = time.monotonic()
            try:
                answer, outcome = for_the_model((await self._with_filler(tool, arguments)).text), "ok"
            except ToolFailed as exc:
                outcome, answer = exc.kind, f"failed ({exc.kind}): {exc}. Tell the caller it could not be looked up."
            seconds = time.monotonic() - started
        self._telemetry.tool_called(self.agent.name, tool.name, outcome, seconds)
        log.info("call %s: tool %s: %s%s", self.call.id, request, outcome,
                 f" in {seconds:.2f} s" if seconds is not None else f" ({problem})")
        took = TurnLatency(tool_ms=round(seconds * 1000, 1)) if seconds is not None else None
        result = self.call.conversation.add_turn(Role.TOOL, f"{tool.name}: {answer}", latency=took)
        await self._call_log.add_turn(self.call.id, result)
        failed = outcome not in ("ok", "invalid")
        self._tool_failures = self._tool_failures + 1 if failed else 0
        follow_up = Utterance()  # no end of speech: not a reply to the caller's voice, kept out of its latency
        try:
            await self._speak_reply(follow_up, tool_rounds=tool_rounds - 1)
            if failed and not follow_up.chunks:  # the model said nothing of it: never leave the caller in silence
                self._play(follow_up, self._models.apology_text, self._models.apology)
                await self._wait_for_playout()
        finally:
            await self._commit(follow_up)
        if self._tool_failures >= MAX_FAILURES_IN_A_ROW:  # as for model failures: the fallback, or goodbye
            why = f"site tools failed {self._tool_failures} times in a row"
            asyncio.current_task().add_done_callback(lambda _: self._actions.hand_off(why))

    async def _with_filler(self, tool: SiteTool, arguments: dict) -> ToolAnswer:
        """The tool's answer; if it takes longer than ``filler_after_ms``, the filler is said meanwhile."""
        if self._models.tools is None:
            raise ToolFailed("error", "this Victoria was started without a tool caller")
        answer = asyncio.ensure_future(self._models.tools.call(tool, arguments))
        try:
            done, _ = await asyncio.wait({answer}, timeout=tool.filler_after_ms / 1000)
            if not done and tool.filler:
                await self.say_phrase(tool.filler)
            return await answer
        finally:
            answer.cancel()  # a barge-in (this task cancelled): the request is abandoned

    async def _tool_requested(self, request: ToolRequest) -> None:
        """Log the model's request as a turn, then do it once this reply is stored, if it is allowed."""
        arguments = ", ".join(f"{k}={v}" for k, v in request.arguments.items())
        target = str(request.arguments.get("target", ""))
        if request.name == "transfer_call" and self.agent.destination(target) is not None:
            outcome, action = "accepted", lambda: self._actions.put_through(target, "the model asked")
        elif request.name == "end_call":
            outcome, action = "accepted", self._actions.hang_up
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

    async def say_phrase(self, text: str) -> None:
        """A fixed phrase (greeting, reprompt, goodbye...), spoken and committed."""
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
            asyncio.current_task().add_done_callback(lambda _: self._actions.hand_off(hand_off))

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


    async def repeat(self, previous: asyncio.Task[None] | None) -> None:
        """The last reply again (the caller's keypad asked), once ``previous`` has finished."""
        if previous is not None and not previous.done():
            await asyncio.gather(previous, return_exceptions=True)
        said = [t.content for t in self.call.conversation.turns if t.role is Role.ASSISTANT]
        if not said:
            return
        utterance = Utterance()
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


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
