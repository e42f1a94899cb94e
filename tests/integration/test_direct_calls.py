"""Direct calls, no registration (a PBX trunk pointing at Victoria), on the embedded defaults."""

import signal
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.processes import LOOPBACK, Victoria, run_caller, run_sipp

pytestmark = pytest.mark.integration


@pytest.fixture
def defaults_server(tmp_path):
    server = Victoria(tmp_path / "v")  # no --config: embedded defaults
    server.start()
    server.wait_ready()
    yield server
    assert server.stop() == 0, server.log()[-3000:]


def test_sipp_desk_phone_streams_speech_to_victoria_on_embedded_defaults(defaults_server, speech_ulaw, tmp_path):
    result = run_sipp("uac_speech_pcmu.xml", f"{LOOPBACK}:{defaults_server.sip_port}", "7000",
                      fill={"speech": str(speech_ulaw), "pause_ms": "10000"}, workdir=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

    defaults_server.wait_for_log(r"ended, caller-hangup", timeout=10)
    [call] = defaults_server.calls()
    assert call["agent"] == "victoria" and call["caller"] == "4711" and call["callee"] == "7000"
    assert call["status"] == "ended" and call["end_reason"] == "caller-hangup"
    assert call["frames_received"] >= 0.9 * 50 * 10, call
    assert call["caller_peak_dbfs"] > -30, "Victoria heard the spoken sentence, not silence"
    assert call["frames_sent"] > 100, "the greeting went out"


def test_calls_beyond_the_limit_get_busy_here(tmp_path, speech_wav):
    server = Victoria(tmp_path / "v", '[sip]\nmax_concurrent_calls = 1\n')
    server.start()
    server.wait_ready()
    try:
        target = f"sip:7000@{LOOPBACK}:{server.sip_port}"
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(run_caller, target, play=speech_wav, hangup_after=6)
            server.wait_for_log(r"answered by agent", timeout=20)
            second = run_caller(target, hangup_after=1)
            first = first.result()
        assert first["answered"]
        assert not second["answered"] and second["last_status"] == 486, second
        server.wait_for_log(r"ended, caller-hangup", timeout=10)
        statuses = sorted((c["status"], c["end_reason"]) for c in server.calls())
        assert statuses == [("ended", "caller-hangup"), ("rejected", "rejected-busy")]
    finally:
        assert server.stop() == 0


def test_pcma_callers_are_answered_too(defaults_server, speech_wav):
    report = run_caller(f"sip:7000@{LOOPBACK}:{defaults_server.sip_port}", play=speech_wav, codec="PCMA/8000/1",
                        hangup_after=2)
    assert report["answered"] and report["codec"] == "PCMA"
    assert report["seconds_answer_to_voice"] is not None and report["seconds_answer_to_voice"] < 2.0


def test_g722_callers_get_wideband(defaults_server, speech_wav):
    report = run_caller(f"sip:7000@{LOOPBACK}:{defaults_server.sip_port}", play=speech_wav, codec="G722/16000/1",
                        hangup_after=2)
    assert report["answered"] and report["codec"] == "G722"
    assert report["received_rms_dbfs"] > -40


def test_a_second_sigterm_during_a_call_hangs_up_at_once_with_bye_and_logs_the_call(tmp_path, speech_wav):
    server = Victoria(tmp_path / "v")
    server.start()
    try:
        server.wait_ready()
        with ThreadPoolExecutor(1) as pool:
            caller = pool.submit(run_caller, f"sip:7000@{LOOPBACK}:{server.sip_port}", play=speech_wav, hangup_after=20)
            server.wait_for_log(r"answered by agent", timeout=20)
            server.process.send_signal(signal.SIGTERM)  # the first drains: the call may go on (60 s by default)
            server.wait_for_log(r"draining: no new calls", timeout=10)
            assert server.stop() == 0  # the second: now
            report = caller.result()
    finally:
        server.stop()
    assert report["answered"] and not report["hung_up_by_caller"], "Victoria ended the call, not the caller"
    assert report["call_seconds"] is not None and report["call_seconds"] < 10
    [call] = server.calls()
    assert call["status"] == "ended" and call["end_reason"] == "shutdown"
    assert [t["role"] for t in server.call_detail(call["id"])["turns"]] == ["assistant"]


def test_three_calls_at_once_are_answered_and_a_fourth_is_told_busy_by_victoria(tmp_path, speech_wav):
    server = Victoria(tmp_path / "v", '[sip]\nmax_concurrent_calls = 3\n[stt]\nprovider = "none"\n')
    server.start()
    server.wait_ready()
    try:
        target = f"sip:7000@{LOOPBACK}:{server.sip_port}"
        with ThreadPoolExecutor(3) as pool:
            first_three = [pool.submit(run_caller, target, play=speech_wav, hangup_after=8) for _ in range(3)]
            server.wait_for_log(r"answered by agent", count=3, timeout=30)
            fourth = run_caller(target, hangup_after=1)
            answered = [f.result() for f in first_three]
        server.wait_for_log(r"ended, caller-hangup", count=3, timeout=15)
    finally:
        assert server.stop() == 0
    assert all(report["answered"] for report in answered)
    assert not fourth["answered"] and fourth["last_status"] == 486
    assert "already 3 calls (max_concurrent_calls)" in server.log(), "Victoria itself said busy, and logged it"
    statuses = sorted(c["status"] for c in server.calls())
    assert statuses == ["ended", "ended", "ended", "rejected"]


def test_calls_and_turns_are_logged_to_postgresql_for_larger_sites(tmp_path, speech_wav):
    from tests.support.postgres import Postgres

    postgres = Postgres()
    postgres.start()
    try:
        server = Victoria(tmp_path / "v", '[stt]\nprovider = "none"\n', db_url=postgres.url)
        server.start()
        server.wait_ready()
        try:
            report = run_caller(f"sip:7000@{LOOPBACK}:{server.sip_port}", play=speech_wav, hangup_after=6)
            server.wait_for_log(r"ended, caller-hangup", timeout=10)
        finally:
            assert server.stop() == 0
        assert report["answered"]
        assert "call database: postgresql://victoria@127.0.0.1" in server.log()
        [call] = server.calls()  # read back through the CLI from PostgreSQL
        detail = server.call_detail(call["id"])
        assert detail["status"] == "ended" and detail["turns"][0]["role"] == "assistant"
    finally:
        postgres.stop()
