import numpy as np
import pytest

from tests.support.tones import seconds_of_tone
from victoria_sip.audio.g711 import mulaw_decode, mulaw_encode
from victoria_sip.audio.hold_chime import CYCLE_SECONDS, LEVEL_DBFS, NOTE_SECONDS, NOTES_HZ, hold_chime
from victoria_sip.audio.levels import rms_dbfs


@pytest.mark.parametrize("rate", [8000, 16000])
def test_one_cycle_is_two_soft_notes_then_quiet(rate):
    chime = np.frombuffer(hold_chime(rate), np.int16)
    assert len(chime) == CYCLE_SECONDS * rate
    first, second = (chime[int(i * NOTE_SECONDS * rate):int((i + 1) * NOTE_SECONDS * rate)] for i in range(2))
    assert seconds_of_tone(first, rate, NOTES_HZ[0]) and seconds_of_tone(second, rate, NOTES_HZ[1])
    for note in (first, second):
        middle = note[len(note) // 4: -len(note) // 4]
        assert abs(rms_dbfs(middle) - LEVEL_DBFS) < 0.5
        assert abs(int(note[0])) < 50 and abs(int(note[-1])) < 200, "the notes fade in and out: no clicks"
    assert not chime[int(2 * NOTE_SECONDS * rate):].any(), "quiet until the next cycle"


def test_the_chime_survives_g711():
    chime = np.frombuffer(hold_chime(8000), np.int16)
    heard = mulaw_decode(mulaw_encode(chime))
    assert len(seconds_of_tone(heard, 8000, NOTES_HZ[0])) == len(seconds_of_tone(chime, 8000, NOTES_HZ[0])) == 3
