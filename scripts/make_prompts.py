"""Regenerate the recorded prompts in media/prompts/ with the embedded Piper voice.

    .venv/bin/python scripts/make_prompts.py

Each prompt is NAME.txt (what it says) and NAME.wav (16 kHz mono 16-bit).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from victoria_sip.adapters.tts_piper import PiperTTS
from victoria_sip.audio.resample import resample
from victoria_sip.domain import VoiceConfig

PROMPTS = Path(__file__).parents[1] / "media" / "prompts"
RATE = 16000


def main() -> None:
    tts = PiperTTS()
    for text_file in sorted(PROMPTS.glob("*.txt")):
        text = text_file.read_text().strip()
        audio = tts.synthesize(text, VoiceConfig())
        samples = resample(np.frombuffer(audio.pcm, "<i2"), audio.sample_rate, RATE)
        with wave.open(str(text_file.with_suffix(".wav")), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(RATE)
            wav.writeframes(samples.tobytes())
        print(f"{text_file.with_suffix('.wav')}: {len(samples) / RATE:.1f} s  {text!r}")


if __name__ == "__main__":
    main()
