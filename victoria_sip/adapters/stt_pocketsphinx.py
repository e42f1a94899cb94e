"""PocketSphinx: the embedded offline English recogniser (its en-us model ships inside the PyPI wheel).

Much less accurate than Vosk with a good model, but it needs no download, so
Victoria converses in English out of the box. Each call gets its own
``Decoder`` (PocketSphinx cannot share one model between decoders; ~0.4 s to
create, done on the call's STT worker while the greeting plays).
"""

from __future__ import annotations

import threading

from victoria_sip.domain.ports import SpeechAudio
from victoria_sip.errors import ModelError

SAMPLE_RATES = (8000, 16000)


class PocketSphinxSTT:
    def load(self) -> None:
        """Check the embedded model loads (at start-up, not at the first call)."""
        self.open_stream(16000)

    def open_stream(self, sample_rate: int) -> PocketSphinxStream:
        if sample_rate not in SAMPLE_RATES:
            raise ModelError(f"PocketSphinx takes {SAMPLE_RATES} Hz audio, not {sample_rate}")
        try:
            from pocketsphinx import Decoder

            return PocketSphinxStream(Decoder(samprate=sample_rate, loglevel="FATAL"), sample_rate)
        except (ImportError, RuntimeError, ValueError) as exc:
            raise ModelError(f"PocketSphinx could not load its en-us model: {exc}") from exc


class PocketSphinxStream:
    def __init__(self, decoder, sample_rate: int) -> None:
        self._decoder = decoder
        self.sample_rate = sample_rate
        self._in_utterance = False
        self._lock = threading.Lock()

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
