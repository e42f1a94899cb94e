import numpy as np
import pytest

from victoria_sip.application.endpointing import Endpointer, SpeechEnded, SpeechStarted
from victoria_sip.audio.vad import SpeechDetector


def run(pattern: str, start_frames=8, start_window=12, hangover_ms=500):  # small numbers keep patterns short
    """pattern: one char per 20 ms frame, '#' voiced, '.' silent. Returns the events with frame times."""
    endpointer = Endpointer(start_frames, start_window, hangover_ms)
    events = []
    for i, ch in enumerate(pattern):
        event = endpointer.feed(ch == "#", i * 20)
        if event:
            events.append((i * 20, event))
    return events


def test_a_spoken_phrase_starts_and_ends_a_turn():
    events = run("." * 10 + "#" * 50 + "." * 40)
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechEnded]
    (started_decided, started), (ended_decided, ended) = events
    assert started.at_ms == 200 and started_decided == 200 + 7 * 20  # the 8th voiced frame decides
    assert ended.at_ms == 60 * 20  # end of the last voiced frame
    assert ended_decided - ended.at_ms == 500 - 20  # decided on the frame that completes the hangover


@pytest.mark.parametrize("noise", ["###", "#####", "##.##.#", "#.#.#.#.#.#"])
def test_short_noises_do_not_start_a_turn(noise):
    assert run("." * 20 + noise + "." * 50) == []


def test_short_pauses_inside_speech_do_not_end_the_turn():
    events = run("#" * 20 + "." * 15 + "#" * 20 + "." * 30)  # 300 ms pause < 500 ms hangover
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechEnded]


def test_hangover_is_configurable():
    events = run("#" * 20 + "." * 15 + "#" * 20 + "." * 30, hangover_ms=200)
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechEnded, SpeechStarted, SpeechEnded]


def tone_frames(rate: int, seconds: float, amplitude: float):
    n = int(rate * seconds)
    t = np.arange(n) / rate
    # a voiced-like signal: harmonics of 150 Hz, as webrtcvad's speech model expects
    signal = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
    return (amplitude * signal / np.max(np.abs(signal))).astype(np.int16)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_webrtcvad_tells_a_voiced_signal_from_silence(rate):
    detector = SpeechDetector(rate, 20, aggressiveness=2)
    voiced = tone_frames(rate, 0.6, 8000)
    frames = voiced.reshape(-1, detector.frame_samples)
    assert sum(detector.is_speech(f) for f in frames) >= len(frames) * 0.7
    silence = np.zeros(detector.frame_samples, np.int16)
    after = [detector.is_speech(silence) for _ in range(30)]  # webrtcvad has a short hangover of its own
    assert not any(after[-10:])


def test_the_detector_refuses_frames_it_cannot_judge():
    with pytest.raises(ValueError):
        SpeechDetector(22050)
    with pytest.raises(ValueError):
        SpeechDetector(16000, 25)
    with pytest.raises(ValueError):
        SpeechDetector(16000).is_speech(np.zeros(100, np.int16))
