import numpy as np
import pytest

from victoria_sip.audio.levels import SILENCE_DBFS, rms_dbfs
from victoria_sip.audio.resample import StreamResampler, resample


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 10000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


@pytest.mark.parametrize("src, dst", [(8000, 16000), (16000, 8000), (22050, 16000), (24000, 8000)])
def test_resampling_keeps_length_ratio_and_pitch(src, dst):
    out = resample(tone(440, src), src, dst)
    assert out.dtype == np.int16
    assert abs(len(out) - dst) <= 2
    assert abs(peak_hz(out, dst) - 440) < 3


def test_content_above_the_new_nyquist_is_filtered_out():
    out = resample(tone(6000, 16000), 16000, 8000)
    assert rms_dbfs(out[200:-200]) < -60


def test_streaming_in_20ms_frames_matches_one_shot():
    src = tone(300, 8000, seconds=2)
    stream = StreamResampler(8000, 16000)
    pieces = [stream.process(src[i : i + 160]) for i in range(0, len(src), 160)]
    pieces.append(stream.flush())
    streamed = np.concatenate(pieces)
    whole = resample(src, 8000, 16000)
    assert abs(len(streamed) - len(whole)) <= 2
    n = min(len(streamed), len(whole)) - 400
    assert np.max(np.abs(streamed[200:n].astype(int) - whole[200:n].astype(int))) <= 2


def test_same_rate_passes_through():
    src = tone(440, 16000)
    assert np.array_equal(StreamResampler(16000, 16000).process(src), src)
    assert np.array_equal(resample(src, 16000, 16000), src)


def test_levels():
    assert rms_dbfs(np.zeros(160, np.int16)) == SILENCE_DBFS
    assert rms_dbfs(np.array([], np.int16)) == SILENCE_DBFS
    full_scale_sine = tone(1000, 8000, amplitude=32767)
    assert -3.2 < rms_dbfs(full_scale_sine) < -2.8
