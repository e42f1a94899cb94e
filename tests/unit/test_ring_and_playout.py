import threading

import numpy as np
import pytest

from victoria_sip.audio.playout import PlayoutQueue
from victoria_sip.audio.ring_buffer import SampleRing


def ramp(start: int, n: int) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.int16)


def test_what_goes_in_comes_out_in_order():
    ring = SampleRing(1000)
    ring.push(ramp(0, 320))
    ring.push(ramp(320, 320))
    assert len(ring) == 640
    assert np.array_equal(ring.pop(100), ramp(0, 100))
    assert np.array_equal(ring.pop(), ramp(100, 540))
    assert len(ring) == 0


def test_underrun_returns_only_what_is_there():
    ring = SampleRing(100)
    assert len(ring.pop(50)) == 0
    ring.push(ramp(0, 30))
    assert np.array_equal(ring.pop(50), ramp(0, 30))


def test_wrap_around_keeps_samples_contiguous():
    ring = SampleRing(100)
    for start in range(0, 1000, 70):  # every push after the first wraps at a different place
        ring.push(ramp(start, 70))
        assert np.array_equal(ring.pop(), ramp(start, 70))


def test_overrun_drops_the_oldest_audio_and_counts_it():
    ring = SampleRing(100)
    ring.push(ramp(0, 80))
    ring.push(ramp(80, 80))
    assert ring.overrun_samples == 60
    assert np.array_equal(ring.pop(), ramp(60, 100))


def test_a_push_larger_than_the_ring_keeps_its_newest_part():
    ring = SampleRing(100)
    ring.push(ramp(0, 250))
    assert np.array_equal(ring.pop(), ramp(150, 100))


def test_producer_and_consumer_threads_lose_nothing_when_the_ring_is_big_enough():
    total, chunk = 320 * 500, 320
    ring = SampleRing(total)  # pjmedia paces pushes at 20 ms; here they come as fast as they can
    received: list[np.ndarray] = []

    def produce():
        for start in range(0, total, chunk):
            ring.push((np.arange(start, start + chunk) % 30000).astype(np.int16))

    producer = threading.Thread(target=produce)
    producer.start()
    while producer.is_alive() or len(ring):
        received.append(ring.pop(1000))
    producer.join()
    assert ring.overrun_samples == 0
    assert np.array_equal(np.concatenate(received), (np.arange(total) % 30000).astype(np.int16))


def test_playout_cuts_audio_into_padded_frames():
    queue = PlayoutQueue(frame_samples=320)
    assert queue.enqueue(np.ones(700, np.int16)) == 3
    frames = [queue.next_frame() for _ in range(3)]
    assert all(f is not None and len(f) == 320 for f in frames)
    assert frames[2][60:].any() == False  # noqa: E712 — padding is silence
    assert queue.next_frame() is None
    assert queue.frames_played == 3


def test_clearing_playout_drops_everything_unplayed():
    queue = PlayoutQueue(frame_samples=160)
    queue.enqueue(np.ones(1600, np.int16))
    queue.next_frame()
    assert queue.clear() == 9
    assert queue.next_frame() is None


def test_rings_and_queues_refuse_nonsense_sizes():
    with pytest.raises(ValueError):
        SampleRing(0)
    with pytest.raises(ValueError):
        PlayoutQueue(0)
