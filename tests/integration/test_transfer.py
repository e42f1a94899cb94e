"""Putting the caller through: blind transfer (REFER) through Kamailio to a named destination, and its failure."""

import pytest

from tests.support.processes import LOOPBACK, Victoria, free_port, registered_victoria, run_caller, start_sipp_uas

pytestmark = pytest.mark.integration

CONFIG = """
[stt]
provider = "none"

[[agents]]
name = "front"
first_message = "Hello."

[agents.destinations]
operator = "{operator}"

[agents.keypad.escape_keys]
"0" = "transfer:operator"
"""


def victoria(tmp_path, kamailio, operator: str) -> Victoria:
    return registered_victoria(tmp_path / "v", kamailio, CONFIG.format(operator=operator))


def caller(kamailio, **kwargs) -> dict:
    return run_caller(f"sip:7000@{kamailio.registrar}", proxy=f"sip:{kamailio.registrar}", password="caller-secret",
                      dtmf="0", dtmf_after=2.5, **kwargs)


def test_pressing_0_puts_the_caller_through_to_the_operator(tmp_path, kamailio):
    port = free_port()
    operator = start_sipp_uas(port, tmp_path)
    server = victoria(tmp_path, kamailio, f"sip:operator@{LOOPBACK}:{port}")
    try:
        report = caller(kamailio, hangup_after=20, timeout=40)
        server.wait_for_log(r"ended, transferred", timeout=15)
    finally:
        assert server.stop() == 0
    assert report["answered"] and report["transferred_to"] == f"sip:operator@{LOOPBACK}:{port}", report
    assert operator.wait(30) == 0, "the operator's phone took the call"
    assert report["call_seconds"] < 15, "Victoria left the call once the caller was through"
    [call] = server.calls()
    assert call["status"] == "ended" and call["end_reason"] == "transferred"
    turns = [(t["role"], t["text"]) for t in server.call_detail(call["id"])["turns"]]
    assert turns[-2] == ("assistant", "Please hold, I am putting you through.")
    assert turns[-1][0] == "system" and turns[-1][1].startswith("[transfer] to operator (caller pressed 0): connected, 200")


def test_a_transfer_the_pbx_refuses_keeps_the_caller_with_victoria(tmp_path, kamailio):
    server = victoria(tmp_path, kamailio, f"sip:nobody@{kamailio.registrar}")  # not registered: 404
    try:
        report = caller(kamailio, hangup_after=12, timeout=30)
        server.wait_for_log(r"ended, caller-hangup", timeout=15)
    finally:
        assert server.stop() == 0
    assert report["answered"] and report["hung_up_by_caller"] and report["call_seconds"] > 11, report
    [call] = server.calls()
    assert call["end_reason"] == "caller-hangup"
    turns = [(t["role"], t["text"]) for t in server.call_detail(call["id"])["turns"]]
    assert ("assistant", "I'm sorry, I could not put you through.") in turns
    system = [text for role, text in turns if role == "system"]
    assert len(system) == 1 and "failed, 404" in system[0], system


HAND_OFF = """
[stt]
provider = "none"

[llm]
host = "{llm}"
first_token_timeout = 1.0

[[agents]]
name = "front"
first_message = "Hello."
fallback_destination = "operator"

[agents.destinations]
operator = "{operator}"
"""


def test_after_two_model_failures_in_a_row_the_caller_is_handed_to_the_fallback(tmp_path, kamailio):
    from tests.support.ollama_double import OllamaDouble

    port = free_port()
    operator = start_sipp_uas(port, tmp_path)
    with OllamaDouble() as ollama:
        ollama.failure = "http-500"
        server = registered_victoria(tmp_path / "v", kamailio,
                                     HAND_OFF.format(llm=ollama.host, operator=f"sip:operator@{LOOPBACK}:{port}"))
        try:
            report = run_caller(f"sip:7000@{kamailio.registrar}", proxy=f"sip:{kamailio.registrar}",
                                password="caller-secret", dtmf="1#,2#", dtmf_after=2.0, dtmf_gap=6.0,
                                hangup_after=30, timeout=45)
            server.wait_for_log(r"ended, transferred", timeout=15)
        finally:
            assert server.stop() == 0
    assert report["transferred_to"] == f"sip:operator@{LOOPBACK}:{port}", report
    assert operator.wait(30) == 0, "the operator's phone took the call"
    [call] = server.calls()
    assert call["end_reason"] == "transferred"
    turns = [(t["role"], t["text"]) for t in server.call_detail(call["id"])["turns"]]
    assert [text for role, text in turns if role == "caller"] == ["[keypad] 1", "[keypad] 2"]
    assert turns[-1][1].startswith("[transfer] to operator (models failed 2 times in a row): connected"), turns
    assert "models failed 2 times in a row: handing off to operator" in server.log()


TOOLS = """
[stt]
provider = "none"

[llm]
host = "{llm}"

[[agents]]
name = "front"
first_message = "Hello."
goodbye_message = "Goodbye now."

[agents.destinations]
operator = "{operator}"
"""


def tool_call(tmp_path, kamailio, calls: list[dict], operator: str, hangup_after: float = 14) -> tuple:
    from tests.support.ollama_double import OllamaDouble

    with OllamaDouble(reply="One moment.") as ollama:
        ollama.tool_calls = calls
        server = registered_victoria(tmp_path / "v", kamailio, TOOLS.format(llm=ollama.host, operator=operator))
        try:
            report = run_caller(f"sip:7000@{kamailio.registrar}", proxy=f"sip:{kamailio.registrar}",
                                password="caller-secret", dtmf="5#", dtmf_after=2.0, hangup_after=hangup_after,
                                timeout=40)
            server.wait_for_log(r"call \w+: ended", timeout=15)
        finally:
            assert server.stop() == 0
    [call] = server.calls()
    turns = [(t["role"], t["text"]) for t in server.call_detail(call["id"])["turns"]]
    return report, call, turns, ollama.requests


def test_the_model_puts_the_caller_through_with_the_transfer_tool_by_name_only(tmp_path, kamailio):
    port = free_port()
    operator = start_sipp_uas(port, tmp_path)
    report, call, turns, requests = tool_call(
        tmp_path, kamailio, [{"name": "transfer_call", "arguments": {"target": "operator"}}],
        f"sip:operator@{LOOPBACK}:{port}")
    offered = {t["function"]["name"]: t["function"] for t in requests[0]["tools"]}
    assert offered["transfer_call"]["parameters"]["properties"]["target"]["enum"] == ["operator"]
    assert "end_call" in offered
    assert report["transferred_to"] == f"sip:operator@{LOOPBACK}:{port}" and operator.wait(30) == 0
    assert call["end_reason"] == "transferred"
    assert ("assistant", "One moment.") in turns
    assert ("system", "[tool] transfer_call(target=operator): accepted") in turns
    assert turns.index(("assistant", "One moment.")) < turns.index(("system", "[tool] transfer_call(target=operator): accepted"))


def test_a_destination_the_model_invents_is_refused_and_the_call_goes_on(tmp_path, kamailio):
    report, call, turns, _ = tool_call(
        tmp_path, kamailio, [{"name": "transfer_call", "arguments": {"target": "+1 900 555 0100"}}],
        f"sip:operator@{LOOPBACK}:{free_port()}", hangup_after=10)
    assert report["transferred_to"] is None and report["hung_up_by_caller"]
    assert call["end_reason"] == "caller-hangup"
    assert ("system", "[tool] transfer_call(target=+1 900 555 0100): refused: not an allowed action or destination") in turns


def test_the_model_ends_the_call_with_the_end_call_tool(tmp_path, kamailio):
    report, call, turns, _ = tool_call(
        tmp_path, kamailio, [{"name": "end_call", "arguments": {"reason": "caller is done"}}],
        f"sip:operator@{LOOPBACK}:{free_port()}", hangup_after=20)
    assert report["answered"] and not report["hung_up_by_caller"] and report["call_seconds"] < 12
    assert call["end_reason"] == "agent-hangup"
    assert turns[-1] == ("assistant", "Goodbye now.")
    assert ("system", "[tool] end_call(reason=caller is done): accepted") in turns


def test_a_reply_slower_than_max_reply_delay_hands_the_caller_off_at_once(tmp_path, kamailio):
    from tests.support.ollama_double import OllamaDouble

    port = free_port()
    operator = start_sipp_uas(port, tmp_path)
    config = HAND_OFF.replace('fallback_destination = "operator"', 'fallback_destination = "operator"\nmax_reply_delay = 1.5')
    with OllamaDouble(first_token_delay=4.0) as ollama:
        config = config.format(llm=ollama.host, operator=f"sip:operator@{LOOPBACK}:{port}")
        server = registered_victoria(tmp_path / "v", kamailio,
                                     config.replace("first_token_timeout = 1.0", "first_token_timeout = 10.0"))
        try:
            report = run_caller(f"sip:7000@{kamailio.registrar}", proxy=f"sip:{kamailio.registrar}",
                                password="caller-secret", dtmf="1#", dtmf_after=2.0, hangup_after=30, timeout=45)
            server.wait_for_log(r"ended, transferred", timeout=15)
        finally:
            assert server.stop() == 0
    assert report["transferred_to"] == f"sip:operator@{LOOPBACK}:{port}" and operator.wait(30) == 0
    assert "no reply within max_reply_delay (1.5 s)" in server.log()
    [call] = server.calls()
    turns = [(t["role"], t["text"]) for t in server.call_detail(call["id"])["turns"]]
    assert [text for role, text in turns if role == "caller"] == ["[keypad] 1"], "one slow reply is enough"
    assert turns[-1][1].startswith("[transfer] to operator (no reply within 1.5 s): connected"), turns
