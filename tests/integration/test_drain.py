"""Graceful drain: SIGTERM unregisters and refuses new calls; calls in progress finish; nothing is lost."""

import signal
import threading

import pytest

from tests.support.processes import Victoria, registered_victoria, run_caller

pytestmark = pytest.mark.integration

CONFIG = """
[stt]
provider = "none"

[sip]
drain_seconds = {drain}

[[agents]]
name = "front"
first_message = "Hello, front desk."
goodbye_message = "We are closing now. Goodbye."
"""


def draining_victoria(tmp_path, kamailio, drain: float) -> Victoria:
    return registered_victoria(tmp_path / "v", kamailio, CONFIG.format(drain=drain))


def call_in_background(kamailio, speech_wav, hangup_after: float) -> tuple[threading.Thread, list[dict]]:
    reports: list[dict] = []

    def place() -> None:
        reports.append(run_caller(f"sip:7000@{kamailio.registrar}", proxy=f"sip:{kamailio.registrar}",
                                  password="caller-secret", play=speech_wav, hangup_after=hangup_after, timeout=60))

    thread = threading.Thread(target=place)
    thread.start()
    return thread, reports


def test_sigterm_lets_the_call_finish_refuses_new_ones_and_exits_cleanly(tmp_path, kamailio, speech_wav):
    server = draining_victoria(tmp_path, kamailio, drain=30)
    try:
        caller, reports = call_in_background(kamailio, speech_wav, hangup_after=9)
        server.wait_for_log(r"answered by agent", timeout=20)
        server.process.send_signal(signal.SIGTERM)
        server.wait_for_log(r"draining: unregistering 'desk'", timeout=10)
        # unregistered: the registrar no longer knows 7000; a caller dialling Victoria directly hears 503
        through_pbx = run_caller(f"sip:7000@{kamailio.registrar}", proxy=f"sip:{kamailio.registrar}",
                                 password="caller-secret", hangup_after=1)
        direct = run_caller(f"sip:7000@127.0.0.1:{server.sip_port}", hangup_after=1)
        assert server.process.poll() is None, "still serving the call in progress"
        caller.join(60)
        assert server.process.wait(30) == 0
    finally:
        server.stop()
    assert reports and reports[0]["answered"] and reports[0]["hung_up_by_caller"], "the caller finished the call"
    assert reports[0]["call_seconds"] > 8
    assert not through_pbx["answered"] and through_pbx["last_status"] == 404, through_pbx
    assert not direct["answered"] and direct["last_status"] == 503, direct
    calls = {c["status"]: c for c in server.calls()}
    assert sorted(c["status"] for c in server.calls()) == ["ended", "rejected"]
    assert calls["ended"]["end_reason"] == "caller-hangup" and calls["rejected"]["end_reason"] == "shutdown"
    assert [t["role"] for t in server.call_detail(calls["ended"]["id"])["turns"]] == ["assistant"]


def test_at_the_drain_deadline_victoria_says_goodbye_and_hangs_up(tmp_path, kamailio, speech_wav):
    server = draining_victoria(tmp_path, kamailio, drain=2)
    try:
        caller, reports = call_in_background(kamailio, speech_wav, hangup_after=30)
        server.wait_for_log(r"answered by agent", timeout=20)
        server.process.send_signal(signal.SIGTERM)
        server.wait_for_log(r"drain deadline: saying goodbye to 1 call", timeout=10)
        caller.join(40)
        assert server.process.wait(30) == 0
    finally:
        server.stop()
    [report] = reports
    assert report["answered"] and not report["hung_up_by_caller"], "Victoria hung up"
    assert report["call_seconds"] < 20
    [call] = server.calls()
    assert call["status"] == "ended" and call["end_reason"] == "shutdown"
    turns = server.call_detail(call["id"])["turns"]
    assert turns[-1]["role"] == "assistant" and turns[-1]["text"] == "We are closing now. Goodbye."
