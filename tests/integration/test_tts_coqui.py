"""The real Coqui TTS path (coqui-tts + torch, the [coqui] extra) on a tiny VITS model the test builds."""

import numpy as np
import pytest

from tests.support.processes import LOOPBACK, Victoria, run_caller
from tests.support.tiny_vits import build_tiny_vits
from victoria_sip.adapters.tts_coqui import CoquiTTS
from victoria_sip.audio.levels import rms_dbfs
from victoria_sip.domain import VoiceConfig
from victoria_sip.errors import ModelError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def tiny_vits(tmp_path_factory):
    return build_tiny_vits(tmp_path_factory.mktemp("coqui") / "tiny-vits")


def test_a_coqui_model_on_disk_loads_once_and_speaks(tiny_vits):
    tts = CoquiTTS()
    short = tts.synthesize("hello there.", VoiceConfig("coqui", str(tiny_vits)))
    long = tts.synthesize("hello there, this sentence is a good deal longer than the other one.",
                          VoiceConfig("coqui", str(tiny_vits)))
    assert short.sample_rate == 16000
    assert 0 < short.seconds < long.seconds, "more text, more audio"
    samples = np.frombuffer(long.pcm, "<i2")
    assert rms_dbfs(samples) > -60, "untrained weights speak noise, but they speak"


def test_speed_changes_the_length(tiny_vits):
    tts = CoquiTTS()
    text = "the same words at two speeds."
    normal = tts.synthesize(text, VoiceConfig("coqui", str(tiny_vits), speed=1.0))
    fast = tts.synthesize(text, VoiceConfig("coqui", str(tiny_vits), speed=2.0))
    assert fast.seconds < normal.seconds * 0.8


def test_a_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="model.pth not found"):
        CoquiTTS().synthesize("hi", VoiceConfig("coqui", str(tmp_path)))


def test_an_agent_with_a_coqui_voice_greets_callers(tmp_path, tiny_vits):
    config = f"""
[stt]
provider = "none"

[[agents]]
name = "front"
first_message = "hello and welcome."
[agents.voice]
provider = "coqui"
voice = "{tiny_vits}"
"""
    server = Victoria(tmp_path / "v", config)
    server.start()
    server.wait_ready(timeout=120)
    try:
        heard = tmp_path / "heard.wav"
        report = run_caller(f"sip:7000@{LOOPBACK}:{server.sip_port}", record=heard, hangup_after=3)
    finally:
        assert server.stop() == 0
    assert "phrases ready (coqui voice" in server.log()
    assert report["answered"] and report["seconds_answer_to_voice"] is not None
    assert report["seconds_answer_to_voice"] < 1.0
