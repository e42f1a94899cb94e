import audioop  # deprecated in 3.11 and gone in 3.13; here only as the reference implementation

import numpy as np
import pytest

from victoria_sip.audio import g711

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_mulaw_encode_is_bit_exact_with_the_reference_for_every_sample():
    expected = np.frombuffer(audioop.lin2ulaw(ALL_SAMPLES.tobytes(), 2), np.uint8)
    assert np.array_equal(g711.mulaw_encode(ALL_SAMPLES), expected)


def test_alaw_encode_is_bit_exact_with_the_reference_for_every_sample():
    expected = np.frombuffer(audioop.lin2alaw(ALL_SAMPLES.tobytes(), 2), np.uint8)
    assert np.array_equal(g711.alaw_encode(ALL_SAMPLES), expected)


def test_decoders_are_bit_exact_for_every_code():
    assert np.array_equal(g711.mulaw_decode(ALL_CODES), np.frombuffer(audioop.ulaw2lin(ALL_CODES.tobytes(), 2), np.int16))
    assert np.array_equal(g711.alaw_decode(ALL_CODES), np.frombuffer(audioop.alaw2lin(ALL_CODES.tobytes(), 2), np.int16))


@pytest.mark.parametrize(
    "encode, sample, code",
    [
        # ITU-T G.711 tables: zero, full-scale and the sign convention of each law
        (g711.mulaw_encode, 0, 0xFF),
        (g711.mulaw_encode, 32767, 0x80),
        (g711.mulaw_encode, -32768, 0x00),
        (g711.alaw_encode, 0, 0xD5),
        (g711.alaw_encode, 32767, 0xAA),
        (g711.alaw_encode, -32768, 0x2A),
    ],
)
def test_known_itu_values(encode, sample, code):
    assert encode(np.array([sample], np.int16))[0] == code


@pytest.mark.parametrize("encode, decode", [(g711.mulaw_encode, g711.mulaw_decode), (g711.alaw_encode, g711.alaw_decode)])
def test_round_trip_error_stays_within_the_quantisation_step(encode, decode):
    decoded = decode(encode(ALL_SAMPLES)).astype(np.int32)
    error = np.abs(decoded - ALL_SAMPLES)
    # the step of the largest segment is 1024 (μ-law) / 1024 (A-law); small signals are near exact
    assert error.max() <= 1024
    small = np.abs(ALL_SAMPLES.astype(np.int32)) < 256
    assert error[small].max() <= 16


@pytest.mark.parametrize("decode", [g711.mulaw_decode, g711.alaw_decode])
def test_a_frame_of_codes_decodes_to_a_frame_of_samples(decode):
    frame = bytes(range(160))
    samples = decode(frame)
    assert samples.dtype == np.int16 and len(samples) == g711.SAMPLES_PER_FRAME


def test_encoding_refuses_float_audio():
    with pytest.raises(TypeError):
        g711.mulaw_encode(np.zeros(160, np.float32))
