"""A "voice" that always plays one recording, whatever the text.

For an announcement-only agent (a fixed message, no TTS at all), and as the
instant TTS stand-in of the benchmarks, which isolates Victoria's own overhead
from the cost of synthesis. ``VoiceConfig.voice`` is the path of a mono 16-bit WAV.
"""

from __future__ import annotations

import threading
import wave
from pathlib import Path

from victoria_sip.domain import VoiceConfig
from victoria_sip.domain.ports import SpeechAudio
from victoria_sip.errors import ModelError


class ClipTTS:
    def __init__(self) -> None:
        self._clips: dict[str, SpeechAudio] = {}
        self._lock = threading.Lock()

    def synthesize(self, text: str, voice: VoiceConfig) -> SpeechAudio:
        with self._lock:
            if voice.voice not in self._clips:
                self._clips[voice.voice] = _read(Path(voice.voice))
            return self._clips[voice.voice]


def _read(path: Path) -> SpeechAudio:
    try:
        with wave.open(str(path)) as wav:
            if (wav.getnchannels(), wav.getsampwidth()) != (1, 2):
                raise ModelError(f"clip {path}: expected a mono 16-bit WAV")
            return SpeechAudio(wav.readframes(wav.getnframes()), wav.getframerate())
    except (OSError, wave.Error, EOFError) as exc:
        raise ModelError(f"clip {path} is missing or unreadable: {exc}") from exc
