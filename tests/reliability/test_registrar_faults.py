"""The registrar disappears in the middle of a call and comes back: the call goes on (its media never touched
the registrar), the caller's BYE reaches Victoria once it is back, /readyz follows, and Victoria is registered
again within seconds of its return rather than at the next refresh."""

import subprocess
import sys
import time

import pytest

from tests.support.ollama_double import OllamaDouble
from tests.support.processes import DESK_PASSWORD, ROOT, Victoria, desk_account, wait_until

pytestmark = pytest.mark.integration

# the caller says nothing for the whole outage: no "are you still there?" goodbye may end the call first
QUIET_CALLER_AGENT = """
[[agents]]
name = "victoria"
first_message = "Hello."

[agents.turn_taking]
reprompt_after_seconds = 3600
"""


def outage_during_a_call(tmp_path, kamailio, outage_seconds: float) -> None:
    with OllamaDouble() as ollama:  # /readyz wants the LLM up too
        config = f'[stt]\nprovider = "none"\n[llm]\nhost = "{ollama.host}"\n' + QUIET_CALLER_AGENT
        server = Victoria(tmp_path / "v", config + desk_account(kamailio.registrar, "victoria"), env=DESK_PASSWORD)
        _outage(server, kamailio, outage_seconds)


def _outage(server: Victoria, kamailio, outage_seconds: float) -> None:
    server.start()
    server.wait_for_log(r"account 'desk' registered", timeout=60)
    call_seconds = outage_seconds + 12
    caller = subprocess.Popen(
        [sys.executable, "-m", "tests.support.sip_caller", "--dial", f"sip:7000@{kamailio.registrar}",
         "--proxy", f"sip:{kamailio.registrar}", "--password", "caller-secret",
         "--hangup-after", str(call_seconds), "--timeout", str(call_seconds + 20)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        server.wait_for_log(r"answered by agent", timeout=15)
        time.sleep(2)
        kamailio.stop()
        down = time.monotonic()
        wait_until(lambda: "not registered: desk" in server.http_get("/readyz")[1], 20,
                   what="not ready while the registrar is away")
        assert server.http_get("/readyz")[0] == 503
        time.sleep(max(0.0, outage_seconds - (time.monotonic() - down)))
        assert "ended" not in server.log().split("answered by agent")[-1], "the call is still up during the outage"
        kamailio.start()
        back = time.monotonic()
        server.wait_for_log(r"account 'desk' registered", timeout=30, count=2)
        reregistered_after = time.monotonic() - back
        wait_until(lambda: server.http_get("/readyz")[0] == 200, 10, what="ready again")
        out, _ = caller.communicate(timeout=call_seconds + 30)
        server.wait_for_log(r"ended, caller-hangup", timeout=15)
    finally:
        caller.kill()
        assert server.stop() == 0
    print(f"\nregistrar away {outage_seconds:.0f} s during a call; registered again {reregistered_after:.1f} s after "
          "its return")
    assert reregistered_after < 10, "re-registered within seconds of the registrar's return"
    [call] = server.calls()
    assert call["end_reason"] == "caller-hangup", "the caller's BYE arrived through the restarted proxy"
    assert call["frames_received"] >= 0.95 * 50 * call_seconds, "media flowed all through the outage"


def test_a_registrar_outage_during_a_call_drops_nothing(tmp_path, kamailio):
    outage_during_a_call(tmp_path, kamailio, outage_seconds=8)


@pytest.mark.soak
@pytest.mark.timeout(300)
def test_a_registrar_gone_for_a_minute_during_a_call_drops_nothing(tmp_path, kamailio):
    outage_during_a_call(tmp_path, kamailio, outage_seconds=60)
