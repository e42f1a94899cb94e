"""One caller turn, recognised in segments: the recogniser's utterance is finished at each pause.

    turn = CallerTurn(stream)
    turn.hear(audio)              # the caller's speech, as it arrives (never blocks)
    turn.partial()                # the words so far as decoded by now (no waiting: may lag a batch)
    so_far = turn.pause()         # Future[str]: every word up to this pause, ready within tens of ms
    turn.hear(audio)              # the caller went on: a new segment
    whole = turn.finish()         # Future[str]: the whole turn; the next turn starts empty

The recogniser has decoded the audio as it came, so finishing a segment at a
pause costs only its last pass: the words are known while the caller is still
silent, in time to decide how long to wait and to prepare a reply. A pause the
caller talks through costs only the recogniser's context across the split.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

from victoria_sip.domain.ports import RecognitionStream, SpeechAudio
from victoria_sip.errors import ModelError


class CallerTurn:
    def __init__(self, stream: RecognitionStream) -> None:
        self._stream = stream
        self._segments: list[Future[str]] = []
        self._open = False  # audio handed over since the last segment ended

    def hear(self, audio: SpeechAudio) -> None:
        self._stream.accept(audio)
        self._open = True

    @property
    def pauses(self) -> int:
        """Pauses the caller has made in this turn so far (segments finished)."""
        return len(self._segments)

    def partial(self) -> str:
        known = [segment.result() for segment in self._segments if segment.done() and not segment.cancelled()
                 and segment.exception() is None]
        return " ".join(words for words in (*known, self._stream.partial if self._open else "") if words)

    def pause(self) -> Future[str]:
        if self._open:
            self._segments.append(self._finish_segment())
            self._open = False
        return joined(self._segments)

    def finish(self) -> Future[str]:
        whole = self.pause()
        self._segments = []
        return whole

    def _finish_segment(self) -> Future[str]:
        try:
            return self._stream.finish()
        except ModelError as exc:  # a recogniser that fails at once is answered like one that fails later
            failed: Future[str] = Future()
            failed.set_exception(exc)
            return failed


def joined(segments: list[Future[str]]) -> Future[str]:
    """The segments' words in order, once all are known; the first failure if one fails."""
    whole: Future[str] = Future()
    segments = list(segments)
    if not segments:
        whole.set_result("")
        return whole
    lock = threading.Lock()  # segments are settled by the recogniser pool's receiver threads, maybe two at once

    def settle(_: Future[str]) -> None:
        with lock:
            if whole.done() or not all(segment.done() for segment in segments):
                return
            if any(segment.cancelled() for segment in segments):
                whole.cancel()
                return
            failure = next((segment.exception() for segment in segments if segment.exception() is not None), None)
            if failure is not None:
                whole.set_exception(failure)
            else:
                whole.set_result(" ".join(t for t in (segment.result().strip() for segment in segments) if t))

    for segment in segments:
        segment.add_done_callback(settle)
    return whole
