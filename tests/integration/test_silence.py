"""A caller who says nothing is reprompted, then politely hung up on; long calls end too."""

import pytest

from tests.support.processes import LOOPBACK, Victoria, run_caller

pytestmark = pytest.mark.integration

CONFIG = """
[stt]
provider = "none"

[[agents]]
name = "front"
first_message = "Hello."
reprompt_message = "Are you still there?"
goodbye_message = "Goodbye for now."

[agents.turn_taking]
reprompt_after_seconds = {reprompt}
max_reprompts = {max_reprompts}
max_call_seconds = {max_call}
"""


def test_silence_is_reprompted_then_victoria_says_goodbye_and_hangs_up(tmp_path):
    server = Victoria(tmp_path / "v", CONFIG.format(reprompt=2, max_reprompts=2, max_call=600))
    server.start()
    server.wait_ready()
    try:
        report = run_caller(f"sip:7000@{LOOPBACK}:{server.sip_port}", hangup_after=30, timeout=30)
        server.wait_for_log(r"ended, agent-hangup", timeout=10)
    finally:
        assert server.stop() == 0
    assert report["answered"] and not report["hung_up_by_caller"], "Victoria hung up"
    # greeting ~1 s, then 2 × (2 s silence + reprompt ~1.5 s), 2 s silence, goodbye
    assert 8 < report["call_seconds"] < 16, report
    [summary] = server.calls()
    assert summary["end_reason"] == "agent-hangup"
    texts = [t["text"] for t in server.call_detail(summary["id"])["turns"]]
    assert texts == ["Hello.", "Are you still there?", "Are you still there?", "Goodbye for now."]


def test_a_call_longer_than_the_maximum_is_ended_politely(tmp_path):
    server = Victoria(tmp_path / "v", CONFIG.format(reprompt=3600, max_reprompts=0, max_call=10))
    server.start()
    server.wait_ready()
    try:
        report = run_caller(f"sip:7000@{LOOPBACK}:{server.sip_port}", hangup_after=40, timeout=40)
        server.wait_for_log(r"ended, agent-hangup", timeout=10)
    finally:
        assert server.stop() == 0
    assert 10 < report["call_seconds"] < 14, report
    [summary] = server.calls()
    assert [t["text"] for t in server.call_detail(summary["id"])["turns"]] == ["Hello.", "Goodbye for now."]
