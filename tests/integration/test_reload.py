"""SIGHUP reloads the agents: the next call gets the new ones, the call in progress goes on, a broken file is refused."""

import signal
import threading

import pytest

from tests.support.processes import LOOPBACK, Victoria, run_caller

pytestmark = pytest.mark.integration

CONFIG = """
[stt]
provider = "none"

[routes]
"7000" = "{agent}"

[[agents]]
name = "{agent}"
first_message = "{greeting}"
"""


def greeting_of(server: Victoria, call: dict) -> str:
    return server.call_detail(call["id"])["turns"][0]["text"]


def test_sighup_gives_the_next_call_the_new_agent_without_dropping_the_current_one(tmp_path, speech_wav):
    server = Victoria(tmp_path / "v", CONFIG.format(agent="front", greeting="Hello, front desk."))
    server.start()
    server.wait_ready()
    target = f"sip:7000@{LOOPBACK}:{server.sip_port}"
    try:
        reports = []
        in_progress = threading.Thread(target=lambda: reports.append(
            run_caller(target, play=speech_wav, hangup_after=8, timeout=30)))
        in_progress.start()
        server.wait_for_log(r"answered by agent 'front'", timeout=20)

        server.config_path.write_text(CONFIG.format(agent="sales", greeting="Welcome to sales."))
        server.process.send_signal(signal.SIGHUP)
        server.wait_for_log(r"SIGHUP: agents reloaded from .*: sales", timeout=30)
        after = run_caller(target, hangup_after=2)

        server.config_path.write_text("[[agents]]\nname = 'broken'\nfirst_message = 42\n")
        server.process.send_signal(signal.SIGHUP)
        server.wait_for_log(r"SIGHUP: configuration not reloaded", timeout=30)
        still = run_caller(target, hangup_after=2)
        in_progress.join(40)
        server.wait_for_log(r"ended, caller-hangup", count=3, timeout=15)
    finally:
        assert server.stop() == 0
    assert reports[0]["answered"] and reports[0]["hung_up_by_caller"] and reports[0]["call_seconds"] > 7
    assert after["answered"] and still["answered"]
    assert "first_message: expected a string" in server.log()
    calls = sorted(server.calls(), key=lambda c: c["started_at"])
    assert [(c["agent"], greeting_of(server, c)) for c in calls] == [
        ("front", "Hello, front desk."), ("sales", "Welcome to sales."), ("sales", "Welcome to sales.")]
