"""One process, many calls: PJSIP as setup builds it holds far more than the 3 calls of the stock wheel."""

import itertools
from datetime import datetime

import pytest

from tests.support.processes import LOOPBACK, Victoria, run_sipp

pytestmark = pytest.mark.integration

CALLS = 20
CALL_MS = 8000


def test_twenty_sipp_calls_with_speech_are_answered_and_logged_by_one_process(tmp_path, speech_ulaw):
    server = Victoria(tmp_path / "v", f'[sip]\nmax_concurrent_calls = {CALLS}\n[stt]\nprovider = "none"\n')
    server.start()
    server.wait_ready()
    try:
        result = run_sipp("uac_speech_pcmu.xml", f"{LOOPBACK}:{server.sip_port}", "7000",
                          fill={"speech": str(speech_ulaw), "pause_ms": str(CALL_MS)}, calls=CALLS, rate=10,
                          timeout=60, workdir=tmp_path)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        server.wait_for_log(r"ended, caller-hangup", count=CALLS, timeout=30)
    finally:
        assert server.stop() == 0, server.log()[-3000:]
    assert "rejected with 486" not in server.log(), "every call found a place"
    calls = server.calls()
    assert len(calls) == CALLS and all(c["status"] == "ended" and c["end_reason"] == "caller-hangup" for c in calls)
    assert all(c["frames_received"] >= 0.9 * 50 * CALL_MS / 1000 for c in calls), "each heard its caller"
    assert all(c["caller_peak_dbfs"] > -30 for c in calls), "speech, not silence, on every call"
    assert all(c["frames_sent"] > 100 for c in calls), "each was greeted"
    assert most_at_once(calls) == CALLS, "all twenty were up at the same time"


def most_at_once(calls: list[dict]) -> int:
    events = sorted([(datetime.fromisoformat(c["started_at"]), 1) for c in calls] +
                    [(datetime.fromisoformat(c["ended_at"]), -1) for c in calls])
    return max(itertools.accumulate(change for _, change in events))
