"""Replies prepared in a pause: heard only when the turn ended there, never when the caller went on."""

from concurrent.futures import Future

import numpy as np

from tests.unit.test_call_session import FakeLLM, run_session, silence, voiced
from victoria_sip.adapters.metrics import PrometheusTelemetry
from victoria_sip.domain import Role, TurnTaking


class SegmentSTT:
    """Transcribes each recogniser utterance (a segment between pauses) as the next scripted text."""

    def __init__(self, *segments: str) -> None:
        self.segments = list(segments)

    def open_stream(self, sample_rate):
        stt = self

        class Stream:
            partial = ""

            def accept(self, audio):
                pass

            def finish(self):
                transcript = Future()
                transcript.set_result(stt.segments.pop(0) if stt.segments else "")
                return transcript

            def close(self):
                pass

        return Stream()


def speculations(telemetry: PrometheusTelemetry, outcome: str) -> float:
    return telemetry.registry.get_sample_value("victoria_speculative_replies_total",
                                               {"agent": "front", "outcome": outcome}) or 0.0


def test_a_finished_question_is_answered_by_the_reply_prepared_in_its_pause():
    telemetry = PrometheusTelemetry(["front"])
    llm = FakeLLM("We open at nine.")
    _, _, turns = run_session(np.concatenate([silence(2.0), voiced(1.0)]), llm, seconds=4,
                              stt=SegmentSTT("what time do you open"), telemetry=telemetry)
    assert [(t.role, t.content, t.interrupted) for t in turns[1:]] == [
        (Role.CALLER, "what time do you open", False), (Role.ASSISTANT, "We open at nine.", False)]
    latency = turns[2].latency
    # the turn ended after the short hangover of a finished question, and the reply was ready before that
    assert 280 <= latency.endpoint_ms < 500, latency  # 300 ms, give or take a frame
    assert latency.tts_first_audio_ms < latency.endpoint_ms <= latency.first_frame_out_ms, latency
    assert speculations(telemetry, "hit") == 1 and speculations(telemetry, "miss") == 0
    assert llm.histories == [[("assistant", "Hello, this is the front desk."), ("caller", "what time do you open")]]


def test_a_caller_who_goes_on_after_a_pause_gets_one_reply_to_the_whole_sentence_and_the_prepared_one_is_never_heard():
    telemetry = PrometheusTelemetry(["front"])
    llm = FakeLLM("Certainly.")
    # "I would like to book a table for" -- 400 ms -- "two people": a reply is prepared in the pause, then dropped
    caller = np.concatenate([silence(2.0), voiced(1.0), silence(0.4), voiced(0.8)])
    session, leg, turns = run_session(caller, llm, seconds=5, telemetry=telemetry,
                                      stt=SegmentSTT("i would like to book a table for", "two people"))
    assert [(t.role, t.content) for t in turns[1:]] == [
        (Role.CALLER, "i would like to book a table for two people"), (Role.ASSISTANT, "Certainly.")]
    # one reply prepared in the mid-sentence pause and discarded, one in the final pause and played
    assert speculations(telemetry, "miss") == 1 and speculations(telemetry, "hit") == 1
    # the LLM was asked twice (the discarded reply, then the one played)
    assert [history[-1] for history in llm.histories] == [
        ("caller", "i would like to book a table for"), ("caller", "i would like to book a table for two people")]
    assert len([t for t in turns if t.role is Role.ASSISTANT]) == 2  # the greeting and the one reply


def test_a_caller_who_speaks_in_pieces_is_given_the_ordinary_hangover_after_a_finished_looking_piece():
    llm = FakeLLM("Yes, there is.")
    # "is there parking" -- 250 ms -- "near the restaurant" -- 350 ms -- "or should i take the bus":
    # the second piece looks finished, but after an earlier pause the turn waits 500 ms, not 300
    caller = np.concatenate([silence(2.0), voiced(0.8), silence(0.25), voiced(0.8), silence(0.35), voiced(1.0)])
    _, _, turns = run_session(caller, llm, seconds=6, stt=SegmentSTT(
        "is there parking", "near the restaurant", "or should i take the bus"))
    assert [(t.role, t.content) for t in turns[1:]] == [
        (Role.CALLER, "is there parking near the restaurant or should i take the bus"),
        (Role.ASSISTANT, "Yes, there is.")]


def test_a_filler_keeps_the_turn_open_through_a_long_pause():
    llm = FakeLLM("We open at nine.")
    # "um" -- 700 ms -- "what time do you open": the ordinary 500 ms hangover would have answered "um"
    caller = np.concatenate([silence(2.0), voiced(0.5), silence(0.7), voiced(1.0)])
    _, _, turns = run_session(caller, llm, seconds=5.5, stt=SegmentSTT("um", "what time do you open"))
    assert [(t.role, t.content) for t in turns[1:]] == [
        (Role.CALLER, "um what time do you open"), (Role.ASSISTANT, "We open at nine.")]


def test_without_speculation_the_reply_is_asked_for_only_after_the_turn_ends():
    llm = FakeLLM("We open at nine.")
    _, _, turns = run_session(np.concatenate([silence(2.0), voiced(1.0)]), llm, seconds=4,
                              stt=SegmentSTT("what time do you open"), rules=TurnTaking(speculate=False))
    latency = turns[2].latency
    assert latency.llm_request_ms >= latency.endpoint_ms, latency
