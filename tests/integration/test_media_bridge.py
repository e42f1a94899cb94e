"""pjsua2's frame buffer and our fast copy, on the real binding."""

import numpy as np
import pjsua2 as pj

from victoria_sip.adapters.sip import byte_vector, frame_memory


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


def test_the_frame_memory_layout_checks_out_on_this_build():
    assert frame_memory.check()


def test_a_received_frame_is_read_in_place():
    samples = (np.cos(np.arange(320) / 7) * 12000).astype(np.int16)
    frame = pj.MediaFrame()
    frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
    frame.buf = pj.ByteVector(samples.tobytes())
    address, size = frame_memory.received(frame)
    assert size == samples.nbytes and np.array_equal(frame_memory.samples_at(address, size), samples)
    frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
    assert frame_memory.received(frame) == (0, 0)


def test_a_frame_to_play_is_filled_as_swig_sees_it():
    outgoing, frame = frame_memory.OutgoingFrame(320), pj.MediaFrame()
    for start in (0, 1000):  # the same vector, refilled frame after frame
        samples = np.arange(start, start + 320, dtype=np.int16)
        outgoing.fill(frame, samples)
        assert frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and bytes(frame.buf) == samples.tobytes()
