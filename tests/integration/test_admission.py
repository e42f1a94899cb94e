"""Admission by inference headroom on live calls: ``victoria-sip serve`` with one PocketSphinx worker, SIPp
callers that keep talking. The call that would overload the recogniser is refused busy (or, for an agent with a
fallback destination, told all assistants are busy and put through), counted and logged; the calls already in
progress keep being heard and answered."""

import threading
import time
from datetime import datetime, timezone

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.ollama_double import OllamaDouble
from tests.support.processes import LOOPBACK, Victoria, free_port, registered_victoria, run_caller, run_sipp, \
    start_sipp_uas
from victoria_sip.audio.g711 import mulaw_encode

pytestmark = pytest.mark.integration

SENTENCES = ("I would like to book a table for two people tomorrow evening.",
             "Do you have a table by the window?", "We will arrive at about seven o'clock.")
CALL_SECONDS = 40
PLACE_EVERY_SECONDS = 3
MOST_CALLS = 8  # far past what one recogniser carries with these limits; the test stops placing at the refusal

LOADED = """
[sip]
max_concurrent_calls = 20

[stt]
workers = 1

[llm]
host = "{llm}"

[admission]
window_seconds = 4
max_stt_busy = 0.4
"""


def chatter(piper_voice, tmp_path):
    """A caller who talks all the time: sentence after sentence with pauses long enough to end each turn."""
    pause = np.zeros(int(8000 * 1.2), np.int16)
    one_round = np.concatenate([part for text in SENTENCES for part in (piper_voice(text, 8000), pause)])
    audio = np.tile(one_round, CALL_SECONDS * 8000 // len(one_round) + 1)[: CALL_SECONDS * 8000].astype(np.int16)
    path = tmp_path / "chatter.ulaw"
    path.write_bytes(mulaw_encode(audio).tobytes())
    return path


def refusals(server: Victoria) -> dict[str, float]:
    _, body = server.http_get("/metrics")
    return {s.labels["reason"]: s.value for f in text_string_to_metric_families(body) for s in f.samples
            if s.name == "victoria_admission_refusals_total"}


def test_the_call_that_would_overload_the_recogniser_is_refused_busy_and_the_others_go_on(tmp_path, piper_voice):
    audio = chatter(piper_voice, tmp_path)
    with OllamaDouble(reply="Certainly.") as ollama:
        server = Victoria(tmp_path / "v", LOADED.format(llm=ollama.host))
        server.start()
        server.wait_ready(timeout=90)
        callers, refused_at = [], None
        try:
            for n in range(MOST_CALLS):
                work = tmp_path / f"caller{n}"
                work.mkdir()
                thread = threading.Thread(target=run_sipp, args=("uac_speech_pcmu.xml", f"{LOOPBACK}:{server.sip_port}",
                                                                 "7000"),
                                          kwargs={"fill": {"speech": str(audio), "pause_ms": str(CALL_SECONDS * 1000)},
                                                  "timeout": CALL_SECONDS + 20, "workdir": work})
                thread.start()
                callers.append(thread)
                time.sleep(PLACE_EVERY_SECONDS)
                if "no headroom" in server.log():
                    refused_at = datetime.now(timezone.utc)
                    break
            for thread in callers:
                thread.join(CALL_SECONDS + 40)
            counted = refusals(server)
        finally:
            assert server.stop() == 0, server.log()[-3000:]
    assert refused_at is not None, f"{MOST_CALLS} talking callers never filled one recogniser:\n{server.log()[-3000:]}"
    assert counted["stt_busy"] + counted["stt_queue"] >= 1, counted
    assert "rejected with 486: no headroom (stt_" in server.log()
    calls = server.calls()
    rejected = [c for c in calls if c["status"] == "rejected"]
    answered = [c for c in calls if c["status"] != "rejected"]
    assert rejected and all(c["end_reason"] == "rejected-busy" for c in rejected), calls
    assert answered and all(c["end_reason"] == "caller-hangup" for c in answered), calls
    for call in answered:  # each call in progress went on being heard and answered after the refusal
        turns = server.call_detail(call["id"])["turns"]
        later = [t for t in turns if t["role"] == "caller" and datetime.fromisoformat(t["at"]) > refused_at]
        assert len(later) >= 2, (call["id"], [(t["role"], t["text"]) for t in turns])


HAND_OFF = """
[stt]
workers = 1

[llm]
host = "{llm}"

[admission]
max_stt_busy = 0.01

[[agents]]
name = "front"
first_message = "Hello, front desk."
fallback_destination = "operator"
busy_message = "All our assistants are busy right now."

[agents.destinations]
operator = "{operator}"
"""


def test_over_the_limit_a_caller_of_an_agent_with_a_fallback_is_told_and_put_through(tmp_path, kamailio):
    port = free_port()
    operator = start_sipp_uas(port, tmp_path)
    with OllamaDouble(reply="Certainly.") as ollama:
        # even one call's expected recognition is over 1 % of a worker: the very first call is over the limit
        server = registered_victoria(tmp_path / "v", kamailio,
                                     HAND_OFF.format(llm=ollama.host, operator=f"sip:operator@{LOOPBACK}:{port}"),
                                     timeout=90)
        try:
            report = run_caller(f"sip:7000@{kamailio.registrar}", proxy=f"sip:{kamailio.registrar}",
                                password="caller-secret", hangup_after=20, timeout=40)
            server.wait_for_log(r"ended, transferred", timeout=15)
            counted = refusals(server)
        finally:
            assert server.stop() == 0
    assert report["answered"] and report["transferred_to"] == f"sip:operator@{LOOPBACK}:{port}", report
    assert operator.wait(30) == 0, "the operator's phone took the call"
    assert counted["stt_busy"] == 1, counted
    assert "all assistants busy, the recognisers would be" in server.log()
    [call] = server.calls()
    assert call["end_reason"] == "transferred"
    turns = [(t["role"], t["text"]) for t in server.call_detail(call["id"])["turns"]]
    assert turns[0] == ("assistant", "All our assistants are busy right now."), turns
    assert turns[1][0] == "system" and turns[1][1].startswith("[busy] all assistants busy (stt_busy)"), turns
    assert ("assistant", "Please hold, I am putting you through.") in turns
    assert turns[-1][1].startswith("[transfer] to operator (all assistants busy (stt_busy)): connected, 200"), turns
