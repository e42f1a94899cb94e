"""The conversation state machine with hand-written fakes for the ports, in real (short) time."""

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from victoria_sip.application.call_log import CallLog
from victoria_sip.application.call_session import CallSession, ConversationModels
from victoria_sip.application.phrases import Phrases
from victoria_sip.domain import Agent, Call, CallId, Destination, Keypad, PhoneNumber, Role, TurnTaking, VoiceConfig
from victoria_sip.domain.ports import SpeechAudio
from victoria_sip.errors import ModelError

RATE = 16000
FRAME = 320


def voiced(seconds: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    signal = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
    return (8000 * signal / np.max(np.abs(signal))).astype(np.int16)


class FakeLeg:
    """Plays out at 50 frames/s and feeds scripted caller audio at the same pace."""

    def __init__(self, caller_audio: np.ndarray) -> None:
        self.call_id = CallId.new()
        self.caller, self.callee, self.account, self.sample_rate = "sip:4711@pbx", "7000", None, RATE
        self._caller = caller_audio
        self._queue: list[tuple[int | None, int]] = []  # (mark, frames)
        self._started: dict[int, float] = {}
        self._t0 = time.monotonic()
        self._read = 0
        self._played_until = self._t0
        self.hung_up = False
        self.stops = 0
        self.session: CallSession | None = None
        self.transferred_to: str | None = None

    def _advance(self) -> None:
        now = time.monotonic()
        while self._queue and self._played_until + 0.02 <= now:
            mark, frames = self._queue[0]
            if mark is not None:
                self._started.setdefault(mark, self._played_until)
            self._queue[0] = (None, frames - 1)
            if frames - 1 == 0:
                self._queue.pop(0)
            self._played_until += 0.02
        if not self._queue:
            self._played_until = now

    def read_audio(self) -> bytes:
        due = int((time.monotonic() - self._t0) * RATE)
        padded = np.concatenate((self._caller, np.zeros(max(0, due - len(self._caller)), np.int16)))
        chunk, self._read = padded[self._read : due], max(self._read, due)
        return chunk.astype("<i2").tobytes()

    def play(self, audio: SpeechAudio, mark: int | None = None) -> None:
        self._advance()
        self._queue.append((mark, max(1, len(audio.pcm) // 2 * RATE // audio.sample_rate // FRAME)))

    def playout_started(self, mark: int) -> float | None:
        self._advance()
        return self._started.get(mark)

    def stop_playout(self) -> None:
        self._advance()
        self._queue.clear()
        self.stops += 1

    def playout_pending(self) -> bool:
        self._advance()
        return bool(self._queue)

    def speaking(self, under_way: bool) -> None:
        pass

    def media_stats(self) -> tuple[int, int]:
        return (0, 0)

    def recording_path(self) -> str | None:
        return None

    def hangup(self) -> None:
        self.hung_up = True

    def transfer(self, target: str) -> None:
        """A PBX that accepts the REFER and reports the target answered a second later."""
        self.transferred_to = target
        asyncio.get_running_loop().call_later(1.0, self.session.on_transfer_finished, 200, "OK")


class FakeRepository:
    def __init__(self) -> None:
        self.turns = []

    def save_call(self, call) -> None:
        pass

    def add_turn(self, call_id, turn) -> None:
        self.turns.append(turn)


class FakeSTT:
    def __init__(self, text: str) -> None:
        self.text = text
        self.closed = 0

    def open_stream(self, sample_rate):
        stt = self

        class Stream:
            partial = ""

            def accept(self, audio):
                pass

            def finish(self):
                transcript = Future()
                transcript.set_result(stt.text)
                return transcript

            def close(self):
                stt.closed += 1

        return Stream()


class FakeLLM:
    def __init__(self, reply: str, fail: bool = False) -> None:
        self.reply, self.fail, self.histories = reply, fail, []

    async def stream_reply(self, agent, history, tools=()) -> AsyncIterator[str]:
        self.histories.append([(t.role.value, t.content) for t in history])
        if self.fail:
            raise ModelError("Ollama is down")
        for word in self.reply.split(" "):
            yield word + " "


class FakeTTS:
    """Half a second of audio per sentence."""

    def synthesize(self, text, voice):
        return SpeechAudio(bytes(RATE), RATE)


def run_session(caller_audio, llm, seconds, rules=TurnTaking(), stt=None, greeting_seconds=1.5, keys=(), tts=None,
                telemetry=None, tool_caller=None, **agent_fields):
    """Run a CallSession for ``seconds`` against the fakes; returns the session, leg and stored turns."""
    agent = Agent(name="front", system_prompt="Be brief.", first_message="Hello, this is the front desk.",
                  voice=VoiceConfig(), turn_taking=rules, **agent_fields)
    leg = FakeLeg(caller_audio)
    repository = FakeRepository()
    phrase_tts = type("PhraseTTS", (), {"synthesize": lambda self, text, voice: SpeechAudio(
        bytes(int(RATE * 2 * greeting_seconds)), RATE)})()

    async def scenario(pool):
        call = Call(id=leg.call_id, agent="front", caller=PhoneNumber("4711"))
        call.start()
        models = ConversationModels(stt or FakeSTT("when do you open"), llm, tts or FakeTTS(),
                                    SpeechAudio(bytes(RATE), RATE), "Sorry, could you repeat that?", pool, tool_caller)
        session = CallSession(call, agent, leg, models, Phrases(phrase_tts), CallLog(repository), telemetry)
        leg.session = session
        task = asyncio.create_task(session.run())
        for at, key in keys:  # the caller's keypad, at these seconds into the call
            asyncio.get_running_loop().call_later(at, session.on_keypad, key)
        await asyncio.sleep(seconds)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await session.close()
        return session

    with ThreadPoolExecutor(2) as pool:
        session = asyncio.run(scenario(pool))
    return session, leg, repository.turns


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), np.int16)


def test_the_caller_is_answered_after_the_greeting():
    llm = FakeLLM("We open at nine. See you then.")
    _, _, turns = run_session(np.concatenate([silence(2.0), voiced(1.0)]), llm, seconds=5)
    assert [(t.role, t.content, t.interrupted) for t in turns] == [
        (Role.ASSISTANT, "Hello, this is the front desk.", False),
        (Role.CALLER, "when do you open", False),
        (Role.ASSISTANT, "We open at nine. See you then.", False),
    ]
    assert llm.histories == [[("assistant", "Hello, this is the front desk."), ("caller", "when do you open")]]
    latency = turns[2].latency
    assert latency is not None
    assert latency.stt_final_ms <= latency.llm_first_token_ms <= latency.tts_first_audio_ms <= latency.first_frame_out_ms
    assert turns[1].index < turns[2].index


def test_speech_over_the_greeting_stops_it_and_stores_it_as_interrupted():
    llm = FakeLLM("Sure.")
    _, leg, turns = run_session(np.concatenate([silence(0.5), voiced(0.8)]), llm, seconds=4)
    assert leg.stops >= 1
    greeting = turns[0]
    assert greeting.role is Role.ASSISTANT and greeting.interrupted
    assert [t.role for t in turns[1:]] == [Role.CALLER, Role.ASSISTANT]


def test_with_barge_in_off_the_greeting_plays_to_the_end():
    rules = TurnTaking(barge_in=False)
    _, leg, turns = run_session(np.concatenate([silence(0.5), voiced(0.8)]), FakeLLM("Sure."), seconds=4, rules=rules)
    assert leg.stops == 0
    assert turns[0].content == "Hello, this is the front desk." and not turns[0].interrupted
    assert [t.role for t in turns] == [Role.ASSISTANT, Role.CALLER, Role.ASSISTANT]


def test_a_short_noise_is_neither_a_turn_nor_a_barge_in():
    _, leg, turns = run_session(np.concatenate([silence(0.5), voiced(0.1)]), FakeLLM("Sure."), seconds=3)
    assert leg.stops == 0
    assert [(t.role, t.interrupted) for t in turns] == [(Role.ASSISTANT, False)]


def test_an_llm_failure_is_answered_with_the_apology_and_the_call_goes_on():
    _, leg, turns = run_session(np.concatenate([silence(2.0), voiced(1.0)]), FakeLLM("", fail=True), seconds=5)
    assert [(t.role, t.content) for t in turns] == [
        (Role.ASSISTANT, "Hello, this is the front desk."),
        (Role.CALLER, "when do you open"),
        (Role.ASSISTANT, "Sorry, could you repeat that?"),
    ]
    assert not leg.hung_up


def test_the_recogniser_stream_is_closed_when_the_call_ends():
    stt = FakeSTT("when do you open")
    run_session(np.concatenate([silence(2.0), voiced(1.0)]), FakeLLM("Nine."), seconds=4, stt=stt)
    time.sleep(0.2)  # the close runs on the call's STT worker, after the session has gone
    assert stt.closed == 1


def test_an_empty_transcript_is_not_answered():
    _, _, turns = run_session(np.concatenate([silence(2.0), voiced(1.0)]), FakeLLM("Sure."), seconds=4.5,
                              stt=FakeSTT(""))
    assert [t.role for t in turns] == [Role.ASSISTANT]


def test_keypad_digits_become_one_caller_turn_ended_by_the_terminator():
    llm = FakeLLM("Booking number 1234 is confirmed.")
    keys = [(2.0, "1"), (2.2, "2"), (2.4, "3"), (2.6, "4"), (2.8, "#")]
    _, _, turns = run_session(silence(8), llm, seconds=5, keys=keys)
    assert [(t.role, t.content) for t in turns] == [
        (Role.ASSISTANT, "Hello, this is the front desk."),
        (Role.CALLER, "[keypad] 1234"),
        (Role.ASSISTANT, "Booking number 1234 is confirmed."),
    ]
    assert turns[2].latency is not None and turns[2].latency.first_frame_out_ms < 500


def test_keypad_digits_also_end_after_the_inter_digit_timeout():
    llm = FakeLLM("Thank you.")
    _, _, turns = run_session(silence(10), llm, seconds=7, keys=[(2.0, "4"), (2.3, "2")])
    caller = [t for t in turns if t.role is Role.CALLER]
    assert [t.content for t in caller] == ["[keypad] 42"]
    greeting_done = turns[0].at  # 1.5 s into the call
    assert 3.3 < (caller[0].at - greeting_done).total_seconds() < 4.5, "3 s after the last digit (2.3 s in)"


def test_star_repeats_the_last_reply_and_a_key_during_a_reply_stops_it():
    llm = FakeLLM("We open at nine. We close at ten.")
    keys = [(2.0, "5"), (2.1, "#"), (5.0, "*")]
    _, leg, turns = run_session(silence(10), llm, seconds=8, keys=keys, greeting_seconds=1.5)
    assistant = [t for t in turns if t.role is Role.ASSISTANT]
    assert [t.content for t in assistant][-2:] == ["We open at nine. We close at ten."] * 2
    keys_over_greeting = run_session(silence(6), FakeLLM("Yes."), seconds=4, keys=[(0.5, "7"), (0.6, "#")],
                                     greeting_seconds=3.0)[2]
    assert keys_over_greeting[0].role is Role.ASSISTANT and keys_over_greeting[0].interrupted
    assert keys_over_greeting[1].content == "[keypad] 7"


def test_words_and_keys_while_being_put_through_do_not_cancel_the_transfer():
    caller = np.concatenate([silence(2.5), voiced(1.5)])  # "okay, thanks" over "please hold"
    keys = [(2.0, "0"), (3.0, "5"), (3.1, "#")]
    _, leg, turns = run_session(caller, FakeLLM("Sure."), seconds=6, keys=keys,
                                destinations=(Destination("operator", "sip:operator@pbx"),),
                                keypad=Keypad(escape_keys=(("0", "transfer:operator"),)))
    assert leg.transferred_to == "sip:operator@pbx" and leg.hung_up
    said = [(t.role, t.content, t.interrupted) for t in turns]
    assert (Role.ASSISTANT, "Please hold, I am putting you through.", False) in said
    assert said[-1] == (Role.SYSTEM, "[transfer] to operator (caller pressed 0): connected, 200 OK", False)
    assert [t for t in turns if t.role is Role.CALLER] == [], "nothing said or keyed on hold became a turn"


def test_pocketsphinx_decoders_of_closed_streams_are_reused_clean():
    from victoria_sip.adapters.stt_pocketsphinx import PocketSphinxSTT

    stt = PocketSphinxSTT()
    first = stt.open_stream(RATE)
    first.accept(SpeechAudio(voiced(0.5).tobytes(), RATE))  # an utterance left open when the call ends
    first.close()
    first.close()  # twice is harmless
    second = stt.open_stream(RATE)
    assert stt.decoders_created == 1, "the closed stream's decoder was reused"
    assert second.finish() == "", "nothing of the previous call is left in it"
    third = stt.open_stream(RATE)
    assert stt.decoders_created == 2, "a decoder is never shared by two open streams"
    second.close()
    third.close()
