"""Endpointing on real speech: espeak-ng sentences with silence and noise bursts around them."""

import numpy as np
import pytest

from tests.integration.conftest import read_wav
from victoria_sip.application.endpointing import Endpointer, SpeechEnded, SpeechStarted
from victoria_sip.audio.resample import resample
from victoria_sip.audio.vad import SpeechDetector
from victoria_sip.domain import TurnTaking


def endpoint(samples: np.ndarray, rate: int, config: TurnTaking):
    detector = SpeechDetector(rate, 20, config.vad_aggressiveness)
    endpointer = Endpointer(config.start_frames, config.start_window, config.hangover_ms)
    events = []
    for i in range(len(samples) // detector.frame_samples):
        frame = samples[i * detector.frame_samples : (i + 1) * detector.frame_samples]
        event = endpointer.feed(detector.is_speech(frame), i * 20)
        if event:
            events.append(event)
    return events


@pytest.mark.parametrize("rate", [8000, 16000])
def test_one_turn_per_sentence_and_none_for_clicks(speech_wav, rate):
    speech, speech_rate = read_wav(speech_wav)
    loud = np.nonzero(np.abs(speech) > 200)[0]
    speech = resample(speech[loud[0] : loud[-1] + 1], speech_rate, rate)  # the sentence without its padding
    rng = np.random.default_rng(7)
    silence = np.zeros(rate, np.int16)
    click = (rng.standard_normal(rate // 25) * 12000).clip(-32000, 32000).astype(np.int16)  # 40 ms burst
    cough = (rng.standard_normal(rate // 8) * 6000).astype(np.int16)  # 125 ms burst
    background = (rng.standard_normal(rate) * 30).astype(np.int16)  # faint line noise
    timeline = [silence, click, silence, speech, silence, cough, silence, speech, background, silence]
    audio = np.concatenate(timeline)

    events = endpoint(audio, rate, TurnTaking())
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded, SpeechStarted, SpeechEnded]

    starts = np.cumsum([0] + [len(part) for part in timeline]) * 1000 // rate
    first_speech, second_speech = starts[3], starts[7]
    speech_ms = len(speech) * 1000 // rate
    assert abs(events[0].at_ms - first_speech) < 400
    assert abs(events[2].at_ms - second_speech) < 400
    # espeak pauses between words are shorter than the hangover: one turn per sentence
    assert events[1].at_ms - events[0].at_ms > 0.6 * speech_ms
