"""Attended transfer through Kamailio: Victoria calls the target, presses its menu key, announces the caller with
a one-line summary, then connects the two with REFER/Replaces; a target that cannot be reached keeps the caller."""

import numpy as np
import pytest

from tests.support.ollama_double import OllamaDouble
from tests.support.processes import Desk, registered_victoria, run_caller
from tests.support.tones import seconds_of_tone
from tests.support.wav import read_wav, write_wav
from victoria_sip.audio.hold_chime import NOTES_HZ

pytestmark = pytest.mark.integration

CONFIG = """
[stt]
provider = "none"

[llm]
host = "{llm}"

[[agents]]
name = "front"
first_message = "Hello."

[agents.destinations]
operator = {{ uri = "{operator}", attended = true, dtmf = "2" }}

[agents.keypad.escape_keys]
"0" = "transfer:operator"
"""

SUMMARY = "The caller wants to check order 1234."
DESK_RINGS = 4.0  # seconds: the caller is on hold through the ringing, the keys and the announcement
SPEECH_ON_HOLD_AT = 10.0  # seconds into the call (hold from ~8 s, after "please hold"): words on hold


def reply(messages: list[dict]) -> str:
    return SUMMARY if "brief a colleague" in messages[0]["content"] else "Let me look."


def call_and_press_0(tmp_path, kamailio, operator: str, **caller) -> tuple[dict, list, list]:
    """The caller keys in an order number, then presses 0 (the operator); returns the caller's report,
    the stored turns and the requests the model got."""
    with OllamaDouble(reply=reply) as ollama:
        server = registered_victoria(tmp_path / "v", kamailio, CONFIG.format(llm=ollama.host, operator=operator))
        try:
            report = run_caller(f"sip:7000@{kamailio.registrar}", proxy=f"sip:{kamailio.registrar}",
                                password="caller-secret", dtmf="1234#,0", dtmf_after=2.0, dtmf_gap=4.0, **caller)
            server.wait_for_log(r"call \w+: ended", timeout=20)
        finally:
            assert server.stop() == 0
    [call] = server.calls()
    turns = [(t["role"], t["text"]) for t in server.call_detail(call["id"])["turns"]]
    return report | {"end_reason": call["end_reason"]}, turns, ollama.requests


def test_the_operator_hears_who_is_calling_before_the_caller_is_put_through(tmp_path, kamailio, speech_wav):
    sentence, rate = read_wav(speech_wav)  # 5.5 s of silence, then the sentence
    on_hold = write_wav(tmp_path / "on-hold.wav",
                        np.concatenate([np.zeros(int((SPEECH_ON_HOLD_AT - 5.5) * rate), np.int16), sentence]), rate)
    desk = Desk(calls=2, timeout=90, ring_seconds=DESK_RINGS)
    report, turns, requests = call_and_press_0(tmp_path, kamailio, desk.uri, hangup_after=45, timeout=60,
                                               stay_transferred=2.0, play=on_hold, record=tmp_path / "heard.wav")
    desk_calls = desk.report()
    assert len(desk_calls) == 2, f"the desk took Victoria's call and then the caller's: {desk_calls}, {report}"
    announced, replacing = desk_calls
    heard, heard_rate = read_wav(tmp_path / "heard.wav")
    chimes = seconds_of_tone(heard, heard_rate, NOTES_HZ[0])
    print(f"\nhold chime heard at {chimes} s")

    assert announced["answered"] and "7000" in announced["from"], announced
    assert announced["digits"] == "2", "Victoria pressed the destination's menu key"
    assert announced["sound_seconds"] > 1.5, f"the operator heard the announcement: {announced}"
    assert replacing["replaced_call"] == 0 and replacing["answered"] and "caller" in replacing["from"], replacing
    assert report["transferred_to"] and "Replaces" in report["transferred_to"], report
    assert report["transferred_answered"] and report["transferred_rms_dbfs"] > -30, \
        f"the caller hears the operator's phone once through: {report}"

    assert report["end_reason"] == "transferred"
    assert chimes and seconds_of_tone(heard, heard_rate, NOTES_HZ[1]), "the caller heard the hold chime"
    assert chimes[0] < SPEECH_ON_HOLD_AT < chimes[-1], \
        f"speaking on hold did not cancel the transfer: the chime went on (chime at {chimes} s)"
    briefing = [r for r in requests if "brief a colleague" in r["messages"][0]["content"]]
    assert len(briefing) == 1 and "[keypad] 1234" in briefing[0]["messages"][-1]["content"]
    assert ("system", f"[announce] to operator: Hello, I have a caller for you. {SUMMARY}") in turns
    assert turns[-1][0] == "system" and turns[-1][1].startswith("[transfer] to operator (caller pressed 0): connected, 200")


def test_a_target_that_cannot_be_reached_keeps_the_caller_with_victoria(tmp_path, kamailio):
    report, turns, _ = call_and_press_0(tmp_path, kamailio, f"sip:nobody@{kamailio.registrar}",
                                        hangup_after=16, timeout=30)
    assert report["answered"] and report["hung_up_by_caller"] and report["transferred_to"] is None, report
    assert report["end_reason"] == "caller-hangup"
    assert ("assistant", "I'm sorry, I could not put you through.") in turns
    [note] = [text for role, text in turns if role == "system"]
    assert note.startswith("[transfer] to operator (caller pressed 0): failed, 404") and "(calling operator)" in note
