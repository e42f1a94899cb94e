"""The caller's keypad on a live call through Kamailio: RFC 4733 telephone-events and SIP INFO reach the conversation."""

import pytest

from tests.support.ollama_double import OllamaDouble
from tests.support.processes import registered_victoria, run_sipp

pytestmark = pytest.mark.integration

CONFIG = """
[stt]
provider = "none"

[llm]
host = "{llm}"

[[agents]]
name = "front"
first_message = "Hello."
"""


def test_digits_by_rfc4733_and_sip_info_become_caller_turns_the_model_answers(tmp_path, kamailio):
    with OllamaDouble(reply="Thank you.") as ollama:
        server = registered_victoria(tmp_path / "v", kamailio, CONFIG.format(llm=ollama.host))
        try:
            silence = tmp_path / "silence.ulaw"
            silence.write_bytes(b"\xff" * 8000)  # a second of mu-law silence
            result = run_sipp("uac_dtmf_pcmu.xml", kamailio.registrar, "7000", workdir=tmp_path,
                              fill={"silence": str(silence), "greeting_ms": "2000", "reply_ms": "3000"})
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
            server.wait_for_log(r"ended, caller-hangup", timeout=15)
        finally:
            assert server.stop() == 0
    [call] = server.calls()
    turns = [(t["role"], t["text"]) for t in server.call_detail(call["id"])["turns"]]
    assert turns == [("assistant", "Hello."), ("caller", "[keypad] 1234"), ("assistant", "Thank you."),
                     ("caller", "[keypad] 5"), ("assistant", "Thank you.")], turns
    assert [r["messages"][-1]["content"] for r in ollama.requests] == ["[keypad] 1234", "[keypad] 5"]
    log = server.log()
    assert "keypad entry of 4 digit(s)" in log
    assert "[keypad] 1234" not in log and "keypad '1'" not in log, "digits may be a PIN: not in the log at INFO"
