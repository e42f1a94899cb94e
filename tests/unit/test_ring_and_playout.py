import ctypes
import threading

import numpy as np
import pytest

from victoria_sip.audio.frame_ring import FrameRing
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
    with pytest.raises(ValueError):
        FrameRing(320, 0)


def frames_from(start: int, n: int, size: int = 4) -> np.ndarray:
    return ramp(start, n * size).reshape(n, size)


def test_a_frame_ring_hands_over_whole_frames_in_order_across_its_end():
    ring = FrameRing(frame_samples=4, capacity_frames=5)
    taken = []
    for start in range(0, 4 * 23, 4):  # commits and takes out of step, so takes straddle the ring's end
        ring.write(ramp(start, 4))
        if start % 12 == 8:
            taken.append(ring.take().copy())  # a view, valid until the ring comes round: keep a copy
    taken.append(ring.take().copy())
    assert np.array_equal(np.concatenate(taken), frames_from(0, 23))
    assert len(ring) == 0 and ring.take().shape == (0, 4)


def test_a_frame_ring_behind_by_more_than_its_size_loses_the_oldest_and_counts_them():
    ring = FrameRing(frame_samples=4, capacity_frames=3)
    for n in range(5):
        ring.write(ramp(4 * n, 4))
    assert np.array_equal(ring.take(), frames_from(8, 3))
    assert ring.overrun_frames == 2


def test_a_frame_ring_takes_a_copy_straight_from_memory():
    ring = FrameRing(frame_samples=4, capacity_frames=2)
    source = ramp(100, 4)
    ctypes.memmove(ring.claim(), source.ctypes.data, source.nbytes)
    ring.commit()
    ring.write(ramp(7, 2))  # short: padded with silence
    assert np.array_equal(ring.take(), [[100, 101, 102, 103], [7, 8, 0, 0]])


def test_a_gap_mid_utterance_is_an_underflow_and_the_end_of_one_is_not():
    gaps = []
    queue = PlayoutQueue(frame_samples=4, on_underflow=lambda: gaps.append(1))
    assert queue.next_frame() is None  # silence before anything is said: no gap
    queue.speaking(True)
    assert queue.next_frame() is None  # the first chunk is not here yet (the model thinks): no gap either
    queue.enqueue(ramp(0, 8))
    assert queue.next_frame() is not None and queue.next_frame() is not None
    assert queue.next_frame() is None  # the second chunk came late: a gap
    queue.enqueue(ramp(0, 4))
    queue.speaking(False)  # all of it is queued
    assert queue.next_frame() is not None and queue.next_frame() is None
    assert queue.underflows == 1 and gaps == [1]


def test_barge_in_ends_the_utterance():
    queue = PlayoutQueue(frame_samples=4)
    queue.speaking(True)
    queue.enqueue(ramp(0, 8))
    queue.next_frame()
    queue.clear()
    assert queue.next_frame() is None and queue.underflows == 0


def test_hold_music_between_utterances_is_never_a_gap():
    queue = PlayoutQueue(frame_samples=4)
    queue.enqueue(ramp(0, 4))  # played without an utterance under way (the hold chime)
    queue.next_frame()
    assert queue.next_frame() is None and queue.underflows == 0
