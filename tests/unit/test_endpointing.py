import numpy as np
import pytest

from victoria_sip.application.endpointing import Endpointer, SpeechEnded, SpeechPaused, SpeechResumed, SpeechStarted
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


def run_adaptive(pattern: str, hangover_for=None, pause_ms=200, hangover_ms=500):
    """Like ``run`` with pauses: ``hangover_for(pause number)`` is what the words so far suggest (told at the
    pause, as the session does once they are recognised). Returns the events with frame times."""
    endpointer = Endpointer(8, 12, hangover_ms, pause_ms=pause_ms)
    events, pauses = [], 0
    for i, ch in enumerate(pattern):
        event = endpointer.feed(ch == "#", i * 20)
        if isinstance(event, SpeechPaused) and hangover_for is not None:
            pauses += 1
            if (wait := hangover_for(pauses)) is not None:
                endpointer.wait(wait)
        if event:
            events.append((i * 20, event))
    return events


def test_a_pause_comes_before_the_end_and_a_finished_question_ends_early():
    events = run_adaptive("#" * 20 + "." * 40, hangover_for=lambda _: 300)
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechPaused, SpeechEnded]
    (_, _), (paused_decided, paused), (ended_decided, ended) = events
    assert paused.at_ms == ended.at_ms == 400
    assert paused_decided - paused.at_ms == 200 - 20 and ended_decided - ended.at_ms == 300 - 20


def test_a_filler_waits_longer_than_the_ordinary_hangover():
    # 700 ms of silence after "um": the ordinary 500 ms would end the turn, the filler's 1000 ms does not
    pattern = "#" * 20 + "." * 35 + "#" * 20 + "." * 60
    assert [type(e) for _, e in run_adaptive(pattern)] == [
        SpeechStarted, SpeechPaused, SpeechEnded, SpeechStarted, SpeechPaused, SpeechEnded]
    waits = {1: 1000, 2: 300}
    assert [type(e) for _, e in run_adaptive(pattern, hangover_for=waits.get)] == [
        SpeechStarted, SpeechPaused, SpeechResumed, SpeechPaused, SpeechEnded]


def test_resuming_brings_the_ordinary_hangover_back():
    # the first pause is judged finished (300 ms) but the caller goes on within it; the second pause is not
    # judged yet, so it lasts the ordinary 500 ms
    pattern = "#" * 20 + "." * 12 + "#" * 10 + "." * 40
    events = run_adaptive(pattern, hangover_for=lambda n: 300 if n == 1 else None)
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechPaused, SpeechResumed, SpeechPaused, SpeechEnded]
    ended_decided, ended = events[-1]
    assert ended_decided - ended.at_ms == 500 - 20


def test_a_pause_needs_pause_ms_of_silence_and_never_outlasts_the_hangover():
    assert [type(e) for _, e in run_adaptive("#" * 20 + "." * 9 + "#" * 10 + "." * 40)] == [
        SpeechStarted, SpeechPaused, SpeechEnded]  # 180 ms is no pause
    with pytest.raises(ValueError):
        Endpointer(8, 12, 300, pause_ms=400)
