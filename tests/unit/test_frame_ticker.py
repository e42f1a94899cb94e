"""The one ticker that serves every call's caller audio, with fakes for the calls, in real (short) time."""

import asyncio

import numpy as np
import pytest

from victoria_sip.application.frame_ticker import FrameTicker
from victoria_sip.audio.levels import frame_levels_dbfs, rms_dbfs


class FakeCall:
    """Receives two frames a tick, at its own loudness; ``broken`` raises from its tick."""

    def __init__(self, amplitude: int, frame_samples: int = 320, broken: bool = False) -> None:
        self.frame = np.full(frame_samples, amplitude, np.int16)
        self.broken = broken
        self.ticks: list[tuple[int, list[float]]] = []
        self.error: BaseException | None = None

    def caller_frames(self) -> np.ndarray:
        return np.stack([self.frame, self.frame])

    def on_tick(self, frames, levels, now) -> None:
        if self.broken:
            raise RuntimeError("a bug in one call")
        self.ticks.append((len(frames), levels.tolist()))

    def failed(self, error: BaseException) -> None:
        self.error = error


def test_every_call_gets_its_frames_with_their_levels_each_tick_and_a_broken_one_is_dropped_alone():
    calls = [FakeCall(1000), FakeCall(0), FakeCall(300, frame_samples=160), FakeCall(5, broken=True)]

    async def scenario():
        ticker = FrameTicker()
        for call in calls:
            ticker.add(call)
        await asyncio.sleep(0.2)
        left = ticker.calls
        for call in calls:
            ticker.remove(call)
        await asyncio.sleep(0.05)  # with no call left its task ends by itself
        return left, ticker._task.done()

    left, ended = asyncio.run(scenario())
    assert left == 3 and ended
    assert isinstance(calls[3].error, RuntimeError) and not calls[3].ticks
    for call in calls[:3]:
        assert 7 <= len(call.ticks) <= 12, "about one tick per 20 ms"
        frames, levels = call.ticks[0]
        assert frames == 2 and levels == pytest.approx([rms_dbfs(call.frame)] * 2)


def test_levels_of_many_frames_at_once_equal_one_by_one():
    rng = np.random.default_rng(5)
    frames = (rng.standard_normal((6, 320)) * [[0], [1], [30], [300], [3000], [30000]]).astype(np.int16)
    assert np.allclose(frame_levels_dbfs(frames), [rms_dbfs(f) for f in frames], atol=1e-9)
    assert frame_levels_dbfs(np.zeros((1, 320), np.int16)).tolist() == [-120.0]


def test_calls_given_the_service_ticker_share_it_even_before_it_serves_anyone():
    from tests.unit.test_call_session import FakeLeg, FakeLLM, FakeRepository, FakeSTT, FakeTTS
    from victoria_sip.application.call_log import CallLog
    from victoria_sip.application.call_session import CallSession, ConversationModels
    from victoria_sip.application.phrases import Phrases
    from victoria_sip.domain import Agent, Call, PhoneNumber, VoiceConfig
    from victoria_sip.domain.ports import SpeechAudio

    ticker = FrameTicker()
    leg = FakeLeg(np.zeros(0, np.int16))
    models = ConversationModels(FakeSTT(""), FakeLLM(""), FakeTTS(), SpeechAudio(b"", 16000), "Sorry.", None)
    session = CallSession(Call(id=leg.call_id, agent="front", caller=PhoneNumber("4711")),
                          Agent(name="front", system_prompt="Be brief.", first_message="Hello.", voice=VoiceConfig()),
                          leg, models, Phrases(FakeTTS()),
                          CallLog(FakeRepository()), ticker=ticker)
    assert session._ticker is ticker
