import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.support.processes import Kamailio
from tests.support.wav import read_wav, write_wav  # noqa: F401 — used by the tests through this module

pytestmark = pytest.mark.integration

CALLER_SENTENCE = "Hello, I would like to book a table for two people tomorrow evening, please."


def _require(tool: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None)
    if path is None:
        pytest.fail(f"{tool} is not installed: run ./scripts/setup.sh (it installs kamailio, sip-tester, espeak-ng, sox)")
    return path


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> Path:
    """A spoken sentence (espeak-ng), 8 kHz mono 16-bit: 5.5 s of silence (the caller lets the greeting
    finish, or it would be a barge-in), the sentence, then a second of silence."""
    espeak = _require("espeak-ng")
    raw = tmp_path_factory.mktemp("speech") / "raw.wav"
    subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(raw), CALLER_SENTENCE], check=True, timeout=30)
    out = raw.with_name("caller.wav")
    subprocess.run([_require("sox"), str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out), "pad", "5.5", "1"],
                   check=True, timeout=30)
    return out


@pytest.fixture(scope="session")
def speech_ulaw(speech_wav) -> Path:
    """The same sentence as raw G.711 μ-law, for SIPp's rtp_stream."""
    out = speech_wav.with_suffix(".ulaw")
    subprocess.run([_require("sox"), str(speech_wav), "-t", "ul", str(out)], check=True, timeout=30)
    return out


@pytest.fixture
def kamailio(tmp_path):
    _require("kamailio")
    registrar = Kamailio(tmp_path / "kamailio")
    registrar.start()
    yield registrar
    registrar.stop()



@pytest.fixture(scope="session")
def piper_voice():
    """The embedded voice, for test speech that a recogniser can understand (espeak is too robotic)."""
    from victoria_sip.adapters.tts_piper import PiperTTS
    from victoria_sip.audio.resample import resample
    from victoria_sip.domain import VoiceConfig

    tts = PiperTTS()

    def speak(text: str, rate: int = 16000) -> np.ndarray:
        audio = tts.synthesize(text, VoiceConfig())
        return resample(np.frombuffer(audio.pcm, "<i2"), audio.sample_rate, rate)

    return speak
