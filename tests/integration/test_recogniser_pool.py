"""The recogniser pool with real worker processes and the real embedded recogniser (PocketSphinx).

Utterances spread over the workers, a worker killed mid-utterance costs that
utterance only and is replaced, a stopped worker never makes ``accept`` wait,
and the load it reports is what happened.
"""

import os
import signal
import time

import numpy as np
import pytest

from tests.support.processes import wait_until
from victoria_sip.adapters.stt_pocketsphinx import PocketSphinxSTT
from victoria_sip.adapters.stt_pool import RecogniserPool
from victoria_sip.domain.ports import SpeechAudio
from victoria_sip.errors import ModelError

pytestmark = pytest.mark.integration

RATE = 16000
SENTENCE = "I would like to book a table for two people tomorrow evening."
WORDS = {"like", "book", "table", "two", "people", "tomorrow", "evening"}
FRAME = RATE // 50


@pytest.fixture(scope="module")
def sentence(piper_voice) -> np.ndarray:
    return piper_voice(SENTENCE, RATE).astype(np.int16)


@pytest.fixture
def pool():
    pool = RecogniserPool(PocketSphinxSTT, workers=2, name="pocketsphinx", window_seconds=5)
    pool.load()
    yield pool
    pool.close()


def speak(stream, samples: np.ndarray, pace: float = 0.0) -> None:
    for offset in range(0, len(samples) - FRAME + 1, FRAME):
        stream.accept(SpeechAudio(samples[offset:offset + FRAME].tobytes(), RATE))
        if pace:
            time.sleep(pace)


def worker_pids(pool: RecogniserPool) -> list[int]:
    return [slot.process.pid for slot in pool._slots if slot.alive]


def test_every_call_is_transcribed_and_the_utterances_spread_over_the_workers(pool, sentence):
    streams = [pool.open_stream(RATE) for _ in range(4)]
    for offset in range(0, len(sentence) - FRAME + 1, FRAME):  # four callers speaking at once, frame by frame
        for stream in streams:
            stream.accept(SpeechAudio(sentence[offset:offset + FRAME].tobytes(), RATE))
    busy_workers = {stream._slot.index for stream in streams}
    transcripts = [stream.finish().result(timeout=30) for stream in streams]
    for text in transcripts:
        assert len(set(text.split()) & WORDS) >= 4, transcripts
    assert busy_workers == {0, 1}, "two utterances on each worker, not four on one"
    load = pool.measure()
    assert load.workers == 2 and load.busy > 0 and load.queue_seconds > 0, load
    for stream in streams:
        stream.close()


def test_a_worker_killed_mid_utterance_loses_that_utterance_only_and_is_replaced(pool, sentence):
    stream = pool.open_stream(RATE)
    half = len(sentence) // 2 // FRAME * FRAME
    speak(stream, sentence[:half])
    victim = stream._slot
    old_pid = victim.process.pid
    wait_until(lambda: not victim.outbox and not victim.in_flight, timeout=10, what="the first half decoded")
    os.kill(old_pid, signal.SIGKILL)
    wait_until(lambda: not victim.alive or victim.process.pid != old_pid, timeout=10, what="the death noticed")
    speak(stream, sentence[half:])
    with pytest.raises(ModelError, match="exited"):
        stream.finish().result(timeout=10)
    wait_until(lambda: len(worker_pids(pool)) == 2, timeout=30, what="a replacement worker")
    assert old_pid not in worker_pids(pool)
    speak(stream, sentence)  # the next utterance of the same call
    text = stream.finish().result(timeout=30)
    assert len(set(text.split()) & WORDS) >= 4, text
    stream.close()


def test_a_stopped_worker_never_makes_the_hand_over_wait(sentence):
    pool = RecogniserPool(PocketSphinxSTT, workers=1, name="pocketsphinx", window_seconds=5)
    pool.load()
    [pid] = worker_pids(pool)
    try:
        os.kill(pid, signal.SIGSTOP)
        stream = pool.open_stream(RATE)
        longest = 0.0
        for _ in range(5):  # 5 x the sentence: far more than a pipe's buffer holds
            for offset in range(0, len(sentence) - FRAME + 1, FRAME):
                started = time.perf_counter()
                stream.accept(SpeechAudio(sentence[offset:offset + FRAME].tobytes(), RATE))
                longest = max(longest, time.perf_counter() - started)
        transcript = stream.finish()
        time.sleep(1.0)
        load = pool.measure()
        assert load.backlog_seconds >= 1.0, "a stalled worker shows as a backlog at once"
        assert not transcript.done()
        assert longest < 0.05, f"accept waited {longest * 1000:.0f} ms for a stopped worker"
        os.kill(pid, signal.SIGCONT)
        text = transcript.result(timeout=60)  # nothing was lost: the worker catches up
        assert len(set(text.split()) & WORDS) >= 4, text
        wait_until(lambda: pool.measure().backlog_seconds == 0, timeout=10, what="the backlog gone")
    finally:
        os.kill(pid, signal.SIGCONT)
        pool.close()


def test_a_model_that_cannot_load_fails_start_up_with_the_reason():
    pool = RecogniserPool(_BrokenEngine, workers=2, name="broken")
    with pytest.raises(ModelError, match="could not load its model: RuntimeError: no such model"):
        pool.load()


class _BrokenEngine:
    def load(self):
        raise RuntimeError("no such model")


def test_a_transcript_nobody_waits_for_any_more_does_not_stop_the_pool(sentence):
    """A call that ends while its transcript is pending cancels the future (asyncio.wrap_future does)."""
    pool = RecogniserPool(PocketSphinxSTT, workers=1, name="pocketsphinx")
    pool.load()
    stream = pool.open_stream(RATE)
    speak(stream, sentence)
    assert stream.finish().cancel(), "still pending when the call went away"
    speak(stream, sentence)
    try:
        text = stream.finish().result(timeout=30)  # the same worker's receiver is still answering
    finally:
        stream.close()
        pool.close()
    assert len(set(text.split()) & WORDS) >= 4, text


def test_the_words_so_far_arrive_while_the_caller_speaks_and_the_final_soon_after_the_last_frame(pool, sentence):
    stream = pool.open_stream(RATE)
    half = len(sentence) // 2 // FRAME * FRAME
    seen = []
    for offset in range(0, len(sentence) - FRAME + 1, FRAME):  # in real time, as a caller's frames arrive
        stream.accept(SpeechAudio(sentence[offset:offset + FRAME].tobytes(), RATE))
        time.sleep(0.02)
        if offset == half:
            seen.append(stream.partial)
    wait_until(lambda: len(set(stream.partial.split()) & WORDS) >= 4, timeout=10)
    seen.append(stream.partial)
    finished = time.monotonic()
    final = stream.finish().result(timeout=10)
    final_after = time.monotonic() - finished
    assert seen[0] and len(seen[0].split()) < len(seen[1].split()), f"partials grow as the caller speaks: {seen}"
    assert len(set(final.split()) & WORDS) >= 4, final
    assert stream.partial == "", "the next utterance starts with no words"
    print(f"final transcript {final_after * 1000:.0f} ms after the last frame's words were known")
    stream.close()
