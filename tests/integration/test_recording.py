"""Opt-in call recording: a stereo WAV per call (left the caller, right Victoria), and its retention."""

import os
import time
import wave

import numpy as np
import pytest

from tests.support.processes import LOOPBACK, Victoria, run_caller
from victoria_sip.audio.levels import rms_dbfs

pytestmark = pytest.mark.integration


def loud_seconds(channel: np.ndarray, rate: int) -> np.ndarray:
    """Start times (s) of the 20 ms frames louder than -40 dBFS."""
    size = rate // 50
    frames = channel[: len(channel) // size * size].reshape(-1, size)
    return np.array([i * 0.02 for i, frame in enumerate(frames) if rms_dbfs(frame) > -40])


def test_a_recorded_call_keeps_each_side_on_its_own_channel_and_old_recordings_expire(tmp_path, speech_wav):
    recordings = tmp_path / "recordings"
    expired = recordings / "2026-01-01" / "old-call.wav"
    expired.parent.mkdir(parents=True)
    expired.write_bytes(b"RIFF")
    forty_days_ago = time.time() - 40 * 86400
    os.utime(expired, (forty_days_ago, forty_days_ago))

    config = f'[stt]\nprovider = "none"\n[recording]\nenabled = true\ndir = "{recordings}"\nretention_days = 30\n'
    server = Victoria(tmp_path / "v", config)
    server.start()
    try:
        server.wait_ready()
        report = run_caller(f"sip:7000@{LOOPBACK}:{server.sip_port}", play=speech_wav, hangup_after=9)
        server.wait_for_log(r"ended, caller-hangup", timeout=15)
    finally:
        assert server.stop() == 0
    assert report["answered"]
    assert not expired.exists() and not expired.parent.exists(), "retention deleted the 40-day-old recording"

    [call] = server.calls()
    path = server.call_detail(call["id"])["recording"]
    assert path and path.startswith(str(recordings)) and path.endswith(f"{call['id']}.wav")
    with wave.open(path) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (2, 2)
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    assert abs(len(samples) / rate - call["duration_seconds"]) < 1.0, "the whole call, nothing more"
    caller_loud, victoria_loud = loud_seconds(samples[:, 0], rate), loud_seconds(samples[:, 1], rate)
    # the caller's file: 5.5 s of silence, then the sentence; Victoria greets at once
    assert len(caller_loud) * 0.02 > 1.5 and 5.0 < caller_loud[0] < 7.0, caller_loud[:5]
    assert len(victoria_loud) * 0.02 > 0.5 and victoria_loud[0] < 1.5, victoria_loud[:5]
    greeting_end = victoria_loud[victoria_loud < 5.0].max()
    assert not any(caller_loud < greeting_end), "no greeting bleeds into the caller's channel"
