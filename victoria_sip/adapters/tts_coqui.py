"""Coqui TTS (``coqui-tts``, PyTorch): the high-quality voice, an optional extra (``pip install .[coqui]``).

``VoiceConfig.voice`` is either a directory holding ``model.pth`` and
``config.json`` (a trained or downloaded model on local disk), or a Coqui model
name such as ``tts_models/en/ljspeech/vits``, which Coqui's model manager
downloads into its cache the first time (not possible on an air-gapped host:
pull it once elsewhere and point at the directory). ``speaker`` picks a voice
of a multi-speaker model; ``speed`` sets a VITS-family model's length scale. Models
load once, on first use or in ``load``; synthesis runs on the caller's worker thread.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np

from victoria_sip.domain import VoiceConfig
from victoria_sip.domain.ports import SpeechAudio
from victoria_sip.errors import ModelError

log = logging.getLogger("victoria.tts.coqui")

INSTALL_HINT = "install the Coqui extra: pip install 'victoria-sip[coqui]'"


class CoquiTTS:
    def __init__(self) -> None:
        self._models: dict[str, tuple[object, threading.Lock]] = {}
        self._lock = threading.Lock()

    def load(self, voice: str) -> None:
        self._model(voice)

    def synthesize(self, text: str, voice: VoiceConfig) -> SpeechAudio:
        model, model_lock = self._model(voice.voice)
        kwargs = {"speaker": voice.speaker} if voice.speaker else {}
        network = model.synthesizer.tts_model
        try:
            with model_lock:  # one synthesis per model at a time: the speed is set on the shared network
                if hasattr(network, "length_scale"):  # VITS family: speed is the inverse of the length scale
                    network.length_scale = 1.0 / voice.speed
                samples = model.tts(text, split_sentences=False, **kwargs)
        except Exception as exc:  # torch and Coqui raise many types
            raise ModelError(f"Coqui voice {voice.voice!r} failed to speak: {exc}") from exc
        pcm = (np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767).astype("<i2")
        return SpeechAudio(pcm.tobytes(), int(model.synthesizer.output_sample_rate))

    def _model(self, name: str):
        with self._lock:
            if name not in self._models:
                self._models[name] = (self._load(name), threading.Lock())
            return self._models[name]

    @staticmethod
    def _load(name: str):
        try:
            from TTS.api import TTS
        except ImportError as exc:
            raise ModelError(f"Coqui TTS is not installed ({exc}); {INSTALL_HINT}") from exc
        started = time.monotonic()
        path = Path(name)
        try:
            if path.suffix == ".pth" or path.is_dir():
                model_file = path if path.suffix == ".pth" else path / "model.pth"
                config_file = model_file.with_name("config.json")
                for required in (model_file, config_file):
                    if not required.is_file():
                        raise ModelError(f"Coqui voice {name!r}: {required} not found")
                model = TTS(model_path=str(model_file), config_path=str(config_file), progress_bar=False)
            else:
                model = TTS(model_name=name, progress_bar=True)  # downloads on first use
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"Coqui voice {name!r} could not be loaded: {exc}") from exc
        log.info("Coqui voice %s loaded in %.1f s", name, time.monotonic() - started)
        return model
