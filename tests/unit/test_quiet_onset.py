import numpy as np

from victoria_sip.audio.quiet_onset import trim_quiet_onset
from victoria_sip.domain.ports import SpeechAudio

RATE = 22050


def speech_after(silence_ms: int, noise_dbfs: float | None = None) -> SpeechAudio:
    lead = np.zeros(RATE * silence_ms // 1000)
    if noise_dbfs is not None:
        lead = np.random.default_rng(1).normal(0, 32768 * 10 ** (noise_dbfs / 20), len(lead))
    t = np.arange(RATE // 2) / RATE
    voice = 8000 * np.sin(2 * np.pi * 220 * t)
    return SpeechAudio(np.concatenate((lead, voice)).astype("<i2").tobytes(), RATE)


def onset_ms(audio: SpeechAudio) -> float:
    samples = np.frombuffer(audio.pcm, "<i2")
    return np.argmax(np.abs(samples) > 1000) / RATE * 1000


def test_the_silence_before_the_first_word_is_cut_to_ten_ms():
    trimmed = trim_quiet_onset(speech_after(40))
    assert 8 <= onset_ms(trimmed) <= 15, onset_ms(trimmed)
    assert abs(speech_after(40).seconds - trimmed.seconds - 0.030) <= 0.005


def test_faint_hiss_before_the_word_counts_as_quiet_and_the_word_itself_is_untouched():
    trimmed = trim_quiet_onset(speech_after(100, noise_dbfs=-60))
    assert onset_ms(trimmed) <= 15
    assert np.frombuffer(trimmed.pcm, "<i2")[-RATE // 2:].tobytes() == np.frombuffer(
        speech_after(100).pcm, "<i2")[-RATE // 2:].tobytes()


def test_speech_that_starts_at_once_and_audio_quiet_throughout_are_left_alone():
    prompt = speech_after(0)
    assert trim_quiet_onset(prompt) is prompt
    hush = SpeechAudio(bytes(RATE), RATE)
    assert trim_quiet_onset(hush) is hush
