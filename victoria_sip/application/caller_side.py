"""The caller's side of the call, frame by frame: turn-taking.

    caller frames + their levels (from the FrameTicker) ─> VAD ─> Endpointer ─> speech started / paused / ended
        frames of speech, with a 300 ms pre-roll ─> the call's recogniser (handed over, never waited for)
        enough speech over Victoria's voice ─> barge-in: playout stops at once
        a pause ─> the words so far (``CallerTurn``) ─> how long to wait (``turn_end``), a reply prepared, held
        speech resumed ─> the prepared reply is discarded unheard
        speech ended ─> a reply task (``ReplySpeaker.answer``): the prepared one released if the words match

Runs on the event loop, in the ticker's pass over every call each 20 ms; the
work per frame is one webrtcvad call on loud frames and a few comparisons.
What it needs of the rest of the call (is it ending, is Victoria audible, start
a reply) it asks through ``TurnHost``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

from victoria_sip.application.caller_turn import CallerTurn
from victoria_sip.application.endpointing import Endpointer, SpeechEnded, SpeechPaused, SpeechResumed, SpeechStarted
from victoria_sip.application.speculation import Speculation
from victoria_sip.application.turn_end import hangover_for
from victoria_sip.application.utterance import Utterance
from victoria_sip.audio.levels import SILENCE_DBFS
from victoria_sip.audio.vad import SpeechDetector
from victoria_sip.domain.ports import RecognitionStream, SpeechAudio
from victoria_sip.errors import ModelError

if TYPE_CHECKING:
    from victoria_sip.domain import Agent, Call
    from victoria_sip.domain.ports import CallLeg, SpeechToText, Telemetry

log = logging.getLogger("victoria.conversation")

FRAME_MS = 20
PRE_ROLL_FRAMES = 15  # 300 ms before the start decision: the first syllable is not lost
_NO_FRAMES = np.zeros((0, 1), np.int16)


class TurnHost(Protocol):
    """What the caller's side asks of the call."""

    @property
    def ending(self) -> bool: ...
    @property
    def transferring(self) -> bool: ...  # the caller is being put through: their words are not answered
    def assistant_busy(self) -> bool: ...
    def may_barge_in(self) -> bool: ...  # Victoria is audible and may be cut short
    def barge_in(self) -> None: ...
    def caller_spoke(self) -> None: ...
    def prepare(self, speculation: Speculation) -> asyncio.Task[None]: ...
    def start_reply(self, name: str, reply: Callable[[asyncio.Task[None] | None], Awaitable[None]],
                    interrupt: bool = False) -> None: ...
    def answer(self, transcript: asyncio.Future[str], utterance: Utterance, previous: asyncio.Task[None] | None,
               speculation: Speculation | None) -> Awaitable[None]: ...


class CallerSide:
    def __init__(self, call: Call, agent: Agent, leg: CallLeg, telemetry: Telemetry, host: TurnHost) -> None:
        self.call = call
        self.agent = agent
        self.leg = leg
        self._telemetry = telemetry
        self._host = host
        rules = agent.turn_taking
        self._detector = SpeechDetector(leg.sample_rate, FRAME_MS, rules.vad_aggressiveness)
        self._endpointer = Endpointer(rules.start_frames, rules.start_window, rules.hangover_ms, FRAME_MS,
                                      pause_ms=rules.pause_ms)
        self.listening = False  # frames are taken once the recogniser is open (they wait in the leg till then)
        self._pending = np.zeros(0, np.int16)
        self._pre_roll: deque[np.ndarray] = deque(maxlen=PRE_ROLL_FRAMES)
        self._frame_index = 0
        self._stt_stream: RecognitionStream | None = None
        self._stt_failed = False
        self._turn: CallerTurn | None = None  # the caller's words, recognised pause by pause
        self._pauses = 0
        self._speculation: Speculation | None = None  # a reply prepared in the current pause, held
        self.peak_dbfs = SILENCE_DBFS

    @property
    def speaking(self) -> bool:
        return self._endpointer.speaking

    def open_recogniser(self, stt: SpeechToText) -> None:
        """The call's recogniser; raises ``ModelError`` (then the call goes on without one)."""
        try:
            self._stt_stream = stt.open_stream(self.leg.sample_rate)
            self._turn = CallerTurn(self._stt_stream)
        except ModelError:
            self._stt_failed = True
            raise

    def listen(self) -> None:
        self.listening = True

    def frames(self, frames: np.ndarray, levels: np.ndarray) -> None:
        """The caller's new frames, with their levels, from the ticker."""
        for frame, level in zip(frames, levels.tolist()):
            self._on_frame(frame, level)

    def close(self) -> None:
        """The call is over: a reply prepared in a pause will never be heard."""
        speculation, self._speculation = self._speculation, None
        if speculation is not None:
            speculation.discard()

    def close_recogniser(self) -> None:
        """Stop the recogniser: last of all, once the reply task has ended."""
        if self._stt_stream is not None:
            self._stt_stream.close()

    def caller_frames(self) -> np.ndarray:
        """The whole frames received since the last tick, shape (n, frame samples); none until listening."""
        if not self.listening:
            return _NO_FRAMES  # the recogniser is still opening: audio waits in the leg's ring meanwhile
        samples = np.frombuffer(self.leg.read_audio(), dtype="<i2")
        if len(self._pending):
            samples = np.concatenate((self._pending, samples))
        size = self._detector.frame_samples
        whole = len(samples) - len(samples) % size
        self._pending = samples[whole:]
        return samples[:whole].reshape(-1, size)

    def _on_frame(self, frame: np.ndarray, level_dbfs: float) -> None:
        t_ms = self._frame_index * FRAME_MS
        self._frame_index += 1
        voiced = self._detector.is_speech_at(frame, level_dbfs)
        if voiced:
            self.peak_dbfs = max(self.peak_dbfs, level_dbfs)
        was_paused = self._endpointer.paused
        event = self._endpointer.feed(voiced, t_ms)
        if isinstance(event, (SpeechStarted, SpeechResumed)):
            self._on_speech_started(resumed=isinstance(event, SpeechResumed))
        if (self._endpointer.speaking and not self._endpointer.paused) or \
                (isinstance(event, SpeechEnded) and not was_paused):
            self._feed_stt(frame)
            self._check_barge_in()
        elif self._stt_stream is not None:  # kept only for a recogniser to hear the first syllable
            self._pre_roll.append(frame)
        if isinstance(event, SpeechPaused):
            self._on_speech_paused(event, t_ms)
        elif isinstance(event, SpeechEnded):
            self._on_speech_ended(event, t_ms)

    def _on_speech_started(self, resumed: bool = False) -> None:
        self._host.caller_spoke()
        if resumed and self._speculation is not None:  # the caller only paused: what was prepared goes unheard
            self._discard_speculation()
        for frame in self._pre_roll:
            self._feed_stt(frame)
        self._pre_roll.clear()

    def _on_speech_paused(self, event: SpeechPaused, decided_ms: int) -> None:
        """The caller is quiet: recognise the words so far, wait as long as they suggest, prepare a reply."""
        if self._turn is None or self._stt_failed or self._host.ending or self._host.transferring:
            return
        self._pauses += 1
        pause, paused_at = self._pauses, time.monotonic()
        earlier = self._turn.pauses
        self._endpointer.wait(hangover_for(self._turn.partial(), self.agent.turn_taking, earlier))  # refined below
        end_of_speech = paused_at - (decided_ms + FRAME_MS - event.at_ms) / 1000
        so_far = asyncio.wrap_future(self._turn.pause())
        so_far.add_done_callback(lambda words: self._heard_so_far(words, pause, earlier, end_of_speech))

    def _heard_so_far(self, words: asyncio.Future[str], pause: int, earlier: int, end_of_speech: float) -> None:
        if pause != self._pauses or not self._endpointer.paused or words.cancelled() or words.exception():
            return  # the caller went on (or the turn ended) meanwhile; a failure is met at the end of the turn
        text = words.result()
        rules = self.agent.turn_taking
        self._endpointer.wait(hangover_for(text, rules, earlier))
        if rules.speculate and text.strip() and self._speculation is None and not self._host.assistant_busy():
            utterance = Utterance(end_of_speech=end_of_speech, stt_final=time.monotonic())
            self._speculation = Speculation(text, utterance)
            self._speculation.task = self._host.prepare(self._speculation)

    def _discard_speculation(self) -> None:
        speculation, self._speculation = self._speculation, None
        if speculation is not None:
            speculation.discard()
            self._telemetry.speculation(self.agent.name, "miss")

    def _check_barge_in(self) -> None:
        rules = self.agent.turn_taking
        if not (rules.barge_in and self._host.may_barge_in()):
            return
        if self._endpointer.voiced_in_window() >= rules.barge_in_frames:
            self._host.barge_in()
            self._telemetry.barge_in(self.agent.name)
            log.info("call %s: barge-in, playout stopped", self.call.id)

    def _on_speech_ended(self, event: SpeechEnded, decided_ms: int) -> None:
        now = time.monotonic()
        end_of_speech = now - (decided_ms + FRAME_MS - event.at_ms) / 1000
        speculation, self._speculation = self._speculation, None
        if self._turn is None or self._stt_failed or self._host.ending:
            if speculation is not None:
                speculation.discard()
            return
        transcript = self._turn.finish()
        if self._host.transferring:  # said on hold, to nobody: finished unread, so the next turn starts clean
            log.info("call %s: speech while being put through, not answered", self.call.id)
            if speculation is not None:
                speculation.discard()
            return
        utterance = Utterance(end_of_speech=end_of_speech, endpoint=now)
        if speculation is not None:
            speculation.utterance.endpoint = now
        words = asyncio.wrap_future(transcript)
        self._host.start_reply("reply", lambda previous: self._host.answer(words, utterance, previous, speculation))

    def _feed_stt(self, frame: np.ndarray) -> None:
        if self._turn is None or self._stt_failed:
            return
        self._turn.hear(SpeechAudio(frame.tobytes(), self.leg.sample_rate))  # never blocks
