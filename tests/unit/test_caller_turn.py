import threading
from concurrent.futures import Future

import pytest

from victoria_sip.application.caller_turn import CallerTurn, joined
from victoria_sip.domain.ports import SpeechAudio
from victoria_sip.errors import ModelError


class ScriptedStream:
    """A recogniser stream whose utterances are transcribed as scripted, settled when the test says."""

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.partial = ""
        self.heard: list[list[bytes]] = [[]]
        self.pending: list[tuple[Future[str], str]] = []

    def accept(self, audio: SpeechAudio) -> None:
        self.heard[-1].append(audio.pcm)

    def finish(self) -> Future[str]:
        future: Future[str] = Future()
        self.pending.append((future, self.texts.pop(0)))
        self.heard.append([])
        return future

    def settle(self) -> None:
        pending, self.pending = self.pending, []
        for future, text in pending:
            future.set_result(text)


def audio() -> SpeechAudio:
    return SpeechAudio(b"\x00\x01" * 160, 16000)


def test_each_pause_finishes_a_segment_and_the_turn_is_their_words_in_order():
    stream = ScriptedStream("i would like to book a table", "for two people")
    turn = CallerTurn(stream)
    turn.hear(audio())
    so_far = turn.pause()
    assert not so_far.done()
    stream.settle()
    assert so_far.result(1) == "i would like to book a table"
    assert turn.pause().result(1) == "i would like to book a table"  # a second look at the same pause: no new segment
    turn.hear(audio())
    whole = turn.finish()
    stream.settle()
    assert whole.result(1) == "i would like to book a table for two people"
    assert [len(segment) for segment in stream.heard] == [1, 1, 0]
    assert turn.finish().result(1) == "", "the next turn starts empty"


def test_a_failed_segment_fails_the_turn():
    stream = ScriptedStream("hello", "")
    turn = CallerTurn(stream)
    turn.hear(audio())
    turn.pause()
    turn.hear(audio())
    whole = turn.finish()
    stream.pending[0][0].set_result("hello")
    stream.pending[1][0].set_exception(ModelError("worker died"))
    with pytest.raises(ModelError):
        whole.result(1)


def test_segments_settled_by_two_threads_at_once_settle_the_turn_once():
    for _ in range(200):
        segments = [Future(), Future()]
        whole = joined(segments)
        threads = [threading.Thread(target=segment.set_result, args=(text,))
                   for segment, text in zip(segments, ("a", "b"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert whole.result(1) == "a b"


def test_the_words_so_far_are_the_known_segments_and_the_open_ones_partial():
    stream = ScriptedStream("my order number is", "")
    turn = CallerTurn(stream)
    turn.hear(audio())
    stream.partial = "my order number"
    assert turn.partial() == "my order number"
    turn.pause()
    assert turn.partial() == "", "the segment is being finished: nothing known yet"
    stream.settle()
    stream.partial = ""
    assert turn.partial() == "my order number is"
    turn.hear(audio())
    stream.partial = "four four"
    assert turn.partial() == "my order number is four four"
