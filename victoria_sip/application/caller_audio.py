"""Part of ``CallSession``: the caller's side of the call, frame by frame.

    caller frames + their levels (from the FrameTicker) ─> VAD ─> Endpointer ─> speech started / ended
        frames of speech, with a 300 ms pre-roll ─> the call's recogniser (handed over, never waited for)
        enough speech over Victoria's voice ─> barge-in: playout stops at once
        speech ended ─> a reply task (``CallSession._answer``)

Runs on the event loop, in the ticker's pass over every call each 20 ms; the
work per frame is one webrtcvad call on loud frames and a few comparisons.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import Future
from typing import TYPE_CHECKING

import numpy as np

from victoria_sip.application.endpointing import Endpointer, SpeechEnded, SpeechStarted
from victoria_sip.application.utterance import Utterance
from victoria_sip.audio.vad import SpeechDetector
from victoria_sip.domain.ports import RecognitionStream, SpeechAudio
from victoria_sip.errors import ModelError

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
        event = self._endpointer.feed(voiced, t_ms)
        if isinstance(event, SpeechStarted):
            self._on_speech_started()
        if self._endpointer.speaking or isinstance(event, SpeechEnded):
            self._feed_stt(frame)
            self._check_barge_in()
        elif self._stt_stream is not None:  # kept only for a recogniser to hear the first syllable
            self._pre_roll.append(frame)
        if isinstance(event, SpeechEnded):
            self._on_speech_ended(event, t_ms)

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
        transcript = self._finish_utterance()
        if self._transfer is not None:  # said on hold, to nobody: finished unread, so the next turn starts clean
            log.info("call %s: speech while being put through, not answered", self.call.id)
            return
        previous = self._reply
        utterance = Utterance(end_of_speech=end_of_speech, endpoint=now)
        self._reply = asyncio.create_task(self._answer(asyncio.wrap_future(transcript), utterance, previous),
                                          name="reply")

    def _finish_utterance(self) -> Future[str]:
        try:
            return self._stt_stream.finish()
        except ModelError as exc:  # a recogniser that fails at once is answered like one that fails later
            failed: Future[str] = Future()
            failed.set_exception(exc)
            return failed

    def _feed_stt(self, frame: np.ndarray) -> None:
        if self._stt_stream is None or self._stt_failed:
            return
        self._stt_stream.accept(SpeechAudio(frame.tobytes(), self.leg.sample_rate))  # never blocks
