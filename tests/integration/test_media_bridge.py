"""pjsua2's frame buffer and our fast copy, on the real binding."""

import numpy as np
import pjsua2 as pj

from victoria_sip.adapters.sip import byte_vector


def test_the_fast_path_checks_out_on_this_build():
    assert byte_vector.check_fast_path()


def test_fast_read_equals_swig_read_for_a_frame():
    samples = (np.sin(np.arange(320) / 5) * 20000).astype(np.int16)
    vector = pj.ByteVector(samples.tobytes())
    assert np.array_equal(byte_vector.read_int16_fast(vector), samples)
    assert np.array_equal(byte_vector.read_int16_slow(vector), samples)


def test_fast_write_fills_the_vector_swig_sees():
    samples = np.arange(-160, 160, dtype=np.int16)
    vector = pj.ByteVector()
    byte_vector.write_int16_fast(vector, samples)
    assert bytes(vector) == samples.tobytes()
    byte_vector.write_int16_fast(vector, samples[:10])  # shrinking works too
    assert bytes(vector) == samples[:10].tobytes()


def test_an_empty_vector_reads_as_no_samples():
    assert len(byte_vector.read_int16_fast(pj.ByteVector())) == 0
    assert len(byte_vector.read_int16_slow(pj.ByteVector())) == 0
