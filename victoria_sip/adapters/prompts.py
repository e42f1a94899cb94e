"""Recorded prompts from media/: NAME.wav (what is played) with NAME.txt (what the transcript says)."""

from __future__ import annotations

import wave
from pathlib import Path

from victoria_sip.domain.ports import SpeechAudio
from victoria_sip.errors import ModelError


def load_prompt(stem: Path) -> tuple[str, SpeechAudio]:
    wav_path, text_path = stem.with_suffix(".wav"), stem.with_suffix(".txt")
    try:
        text = text_path.read_text(encoding="utf-8").strip()
        with wave.open(str(wav_path)) as wav:
            if (wav.getnchannels(), wav.getsampwidth()) != (1, 2):
                raise ModelError(f"{wav_path}: expected mono 16-bit audio")
            return text, SpeechAudio(wav.readframes(wav.getnframes()), wav.getframerate())
    except (OSError, wave.Error, EOFError) as exc:
        raise ModelError(f"prompt {stem.name!r} is missing or unreadable in {stem.parent}: {exc}") from exc
