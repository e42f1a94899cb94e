"""PocketSphinx: the embedded offline English recogniser (its en-us model ships inside the PyPI wheel).

Much less accurate than Vosk with a good model, but it needs no download, so
Victoria converses in English out of the box. Each stream gets a ``Decoder`` of
its own (PocketSphinx cannot share one between streams). A decoder takes ~0.25 s
to create and ~90 MB, so closed streams give theirs back to a pool: the pool
grows to the most streams seen at once, and opening a stream is then free. The
recogniser pool opens a stream per utterance, so that is the callers speaking
at the same moment, not the calls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from victoria_sip.domain.ports import SpeechAudio
from victoria_sip.errors import ModelError

SAMPLE_RATES = (8000, 16000)


class PocketSphinxSTT:
    def __init__(self) -> None:
        self._idle: dict[int, list] = {rate: [] for rate in SAMPLE_RATES}  # decoders of closed streams
        self._lock = threading.Lock()
        self.decoders_created = 0

    def load(self) -> None:
        """Check the embedded model loads (at start-up, not at the first call); the decoder is kept."""
        self.open_stream(16000).close()

    def open_stream(self, sample_rate: int) -> PocketSphinxStream:
        if sample_rate not in SAMPLE_RATES:
            raise ModelError(f"PocketSphinx takes {SAMPLE_RATES} Hz audio, not {sample_rate}")
        with self._lock:
            if self._idle[sample_rate]:
                return PocketSphinxStream(self._idle[sample_rate].pop(), sample_rate, self._give_back)
        try:
            from pocketsphinx import Decoder

            decoder = Decoder(samprate=sample_rate, loglevel="FATAL")
        except (ImportError, RuntimeError, ValueError) as exc:
            raise ModelError(f"PocketSphinx could not load its en-us model: {exc}") from exc
        self.decoders_created += 1
        return PocketSphinxStream(decoder, sample_rate, self._give_back)

    def prepare_spare(self, sample_rate: int = 16000) -> None:
        """Load a decoder ahead of need (~0.25 s, ~90 MB) if none is idle: call when there is nothing else to do."""
        with self._lock:
            if self._idle[sample_rate]:
                return
        self.open_stream(sample_rate).close()

    def _give_back(self, decoder, sample_rate: int) -> None:
        with self._lock:
            self._idle[sample_rate].append(decoder)


class PocketSphinxStream:
    def __init__(self, decoder, sample_rate: int, give_back: Callable[[object, int], None]) -> None:
        self._decoder = decoder
        self.sample_rate = sample_rate
        self._in_utterance = False
        self._lock = threading.Lock()
        self._give_back = give_back

    def accept(self, audio: SpeechAudio) -> str:
        if audio.sample_rate != self.sample_rate:
            raise ValueError(f"this stream takes {self.sample_rate} Hz audio, got {audio.sample_rate}")
        with self._lock:
            try:
                if not self._in_utterance:
                    self._decoder.start_utt()
                    self._in_utterance = True
                self._decoder.process_raw(audio.pcm, False, False)
                hypothesis = self._decoder.hyp()
            except RuntimeError as exc:
                raise ModelError(f"PocketSphinx failed while recognising: {exc}") from exc
        return hypothesis.hypstr if hypothesis else ""

    def finish(self) -> str:
        with self._lock:
            if not self._in_utterance:
                return ""
            try:
                self._decoder.end_utt()
                hypothesis = self._decoder.hyp()
            except RuntimeError as exc:
                raise ModelError(f"PocketSphinx failed to finalise: {exc}") from exc
            finally:
                self._in_utterance = False
        return hypothesis.hypstr.strip() if hypothesis else ""

    def close(self) -> None:
        """Back to the pool, with no utterance left open (the next call starts clean)."""
        with self._lock:
            decoder, self._decoder = self._decoder, None
            if decoder is None:
                return
            if self._in_utterance:
                try:
                    decoder.end_utt()
                except RuntimeError:
                    return  # a decoder in an unknown state is dropped, not reused
                self._in_utterance = False
        self._give_back(decoder, self.sample_rate)
