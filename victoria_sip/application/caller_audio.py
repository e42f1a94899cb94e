"""Part of ``CallSession``: the caller's side of the call, frame by frame.

    caller frames + their levels (from the FrameTicker) ─> VAD ─> Endpointer ─> speech started / paused / ended
        frames of speech, with a 300 ms pre-roll ─> the call's recogniser (handed over, never waited for)
        enough speech over Victoria's voice ─> barge-in: playout stops at once
        a pause ─> the words so far (``CallerTurn``) ─> how long to wait (``turn_end``), a reply prepared, held
        speech resumed ─> the prepared reply is discarded unheard
        speech ended ─> a reply task (``CallSession._answer``): the prepared one released if the words match

Runs on the event loop, in the ticker's pass over every call each 20 ms; the
work per frame is one webrtcvad call on loud frames and a few comparisons.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from victoria_sip.application.caller_turn import CallerTurn
from victoria_sip.application.endpointing import Endpointer, SpeechEnded, SpeechPaused, SpeechResumed, SpeechStarted
from victoria_sip.application.speculation import Speculation
from victoria_sip.application.turn_end import hangover_for
from victoria_sip.application.utterance import Utterance
from victoria_sip.audio.vad import SpeechDetector
from victoria_sip.domain.ports import RecognitionStream, SpeechAudio

if TYPE_CHECKING:
    from victoria_sip.domain import Agent, Call
    from victoria_sip.domain.ports import CallLeg, Telemetry

log = logging.getLogger("victoria.conversation")

FRAME_MS = 20
PRE_ROLL_FRAMES = 15  # 300 ms before the start decision: the first syllable is not lost
_NO_FRAMES = np.zeros((0, 1), np.int16)


class CallerAudioMixin:
    call: Call
    agent: Agent
    leg: CallLeg
    peak_dbfs: float
    _telemetry: Telemetry
    _detector: SpeechDetector
    _endpointer: Endpointer
    _listening: bool
    _pending: np.ndarray
    _pre_roll: deque[np.ndarray]
    _frame_index: int
    _stt_stream: RecognitionStream | None
    _stt_failed: bool
    _turn: CallerTurn | None
    _pauses: int
    _speculation: Speculation | None
    _speaking: Utterance | None
    _reply: asyncio.Task[None] | None
    _reprompts: int
    _ending: bool
    _transfer: asyncio.Future[tuple[int, str]] | None

    def caller_frames(self) -> np.ndarray:
        """The whole frames received since the last tick, shape (n, frame samples); none until listening."""
        if not self._listening:
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
        self._reprompts = 0
        if resumed and self._speculation is not None:  # the caller only paused: what was prepared goes unheard
            self._discard_speculation()
        for frame in self._pre_roll:
            self._feed_stt(frame)
        self._pre_roll.clear()

    def _on_speech_paused(self, event: SpeechPaused, decided_ms: int) -> None:
        """The caller is quiet: recognise the words so far, wait as long as they suggest, prepare a reply."""
        if self._turn is None or self._stt_failed or self._ending or self._transfer is not None:
            return
        self._pauses += 1
        pause, paused_at = self._pauses, time.monotonic()
        self._endpointer.wait(hangover_for(self._turn.partial(), self.agent.turn_taking))  # refined once final
        end_of_speech = paused_at - (decided_ms + FRAME_MS - event.at_ms) / 1000
        so_far = asyncio.wrap_future(self._turn.pause())
        so_far.add_done_callback(lambda words: self._heard_so_far(words, pause, end_of_speech))

    def _heard_so_far(self, words: asyncio.Future[str], pause: int, end_of_speech: float) -> None:
        if pause != self._pauses or not self._endpointer.paused or words.cancelled() or words.exception():
            return  # the caller went on (or the turn ended) meanwhile; a failure is met at the end of the turn
        text = words.result()
        rules = self.agent.turn_taking
        self._endpointer.wait(hangover_for(text, rules))
        if rules.speculate and text.strip() and self._speculation is None and not self._assistant_busy():
            utterance = Utterance(end_of_speech=end_of_speech, stt_final=time.monotonic())
            self._speculation = Speculation(text, utterance)
            self._speculation.task = asyncio.create_task(self._prepare_reply(self._speculation), name="speculation")

    def _discard_speculation(self) -> None:
        speculation, self._speculation = self._speculation, None
        if speculation is not None:
            speculation.discard()
            self._telemetry.speculation(self.agent.name, "miss")

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
        speculation, self._speculation = self._speculation, None
        if self._turn is None or self._stt_failed or self._ending:
            if speculation is not None:
                speculation.discard()
            return
        transcript = self._turn.finish()
        if self._transfer is not None:  # said on hold, to nobody: finished unread, so the next turn starts clean
            log.info("call %s: speech while being put through, not answered", self.call.id)
            if speculation is not None:
                speculation.discard()
            return
        previous = self._reply
        utterance = Utterance(end_of_speech=end_of_speech, endpoint=now)
        if speculation is not None:
            speculation.utterance.endpoint = now
        self._reply = asyncio.create_task(
            self._answer(asyncio.wrap_future(transcript), utterance, previous, speculation), name="reply")

    def _feed_stt(self, frame: np.ndarray) -> None:
        if self._turn is None or self._stt_failed:
            return
        self._turn.hear(SpeechAudio(frame.tobytes(), self.leg.sample_rate))  # never blocks
