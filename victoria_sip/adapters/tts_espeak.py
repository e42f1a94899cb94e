"""espeak-ng (Debian package) as a TTS: robotic but tiny, instant and always available offline."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave

from victoria_sip.domain import VoiceConfig
from victoria_sip.domain.ports import SpeechAudio
from victoria_sip.errors import ModelError

WORDS_PER_MINUTE = 160
TIMEOUT_SECONDS = 10


class EspeakTTS:
    """The ``TextToSpeech`` port over the ``espeak-ng`` command."""

    def __init__(self, executable: str = "espeak-ng") -> None:
        self._executable = executable

    def load(self, voice: str) -> None:
        if shutil.which(self._executable) is None:
            raise ModelError(f"{self._executable} is not installed (apt-get install espeak-ng)")

    def synthesize(self, text: str, voice: VoiceConfig) -> SpeechAudio:
        command = [
            self._executable,
            "-v", voice.voice,
            "-s", str(round(WORDS_PER_MINUTE * voice.speed)),
            "-p", str(round(50 * voice.pitch)),
            "--stdout",
            text,
        ]
        try:
            result = subprocess.run(command, capture_output=True, timeout=TIMEOUT_SECONDS, check=True)
        except FileNotFoundError as exc:
            raise ModelError(f"{self._executable} is not installed (apt-get install espeak-ng)") from exc
        except subprocess.TimeoutExpired as exc:
            raise ModelError(f"{self._executable} took over {TIMEOUT_SECONDS} s to speak") from exc
        except subprocess.CalledProcessError as exc:
            raise ModelError(f"{self._executable} failed: {exc.stderr.decode(errors='replace').strip()}") from exc
        return _parse_streamed_wav(result.stdout)


def _parse_streamed_wav(data: bytes) -> SpeechAudio:
    """espeak-ng streams a WAV whose size fields are placeholders: take every byte after ``data``."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
    except (wave.Error, EOFError) as exc:
        raise ModelError(f"espeak-ng produced no usable audio: {exc}") from exc
    if (width, channels) != (2, 1):
        raise ModelError(f"espeak-ng produced {channels}-channel {8 * width}-bit audio; expected mono 16-bit")
    start = data.find(b"data") + 8
    pcm = data[start : start + (len(data) - start) // 2 * 2]
    return SpeechAudio(pcm, rate)
