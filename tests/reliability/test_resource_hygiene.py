"""Many calls in a row leave no growth in threads, file descriptors or memory (read from /proc).

SIPp's built-in UAC places the calls (INVITE, 1 s of call, BYE), at most three at a time: Victoria answers,
greets, opens and closes a recogniser stream, stores the call. Warm-up calls come first, so what is measured
is growth per call, not the first call's one-off allocations."""

import os
import shutil
import subprocess
import time

import pytest

from tests.support.processes import LOOPBACK, Victoria, free_port, wait_until

pytestmark = pytest.mark.integration

MAX_THREAD_GROWTH = 2
MAX_FD_GROWTH = 5
MAX_RSS_GROWTH_MB = 30
# Measured (PJSIP 2.17 as setup builds it, rounds of 300 calls after warm-up): 21-23 KB a call, steady, with
# STT off too. It is live heap (malloc_stats: in-use bytes follow RSS, so not fragmentation) that is freed at
# shutdown (heaptrack: 3.7 MB unfreed at exit after 300 calls), Python's object counts flat: something long-lived
# in pjsua/pjsip holds it. NOTES.md "One process under load"; the bound allows that and no more.
RSS_GROWTH_PER_CALL_MB = 0.025


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as status:
        return dict(line.split(":", 1) for line in status)


def children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as listing:
            found += [int(child) for child in listing.read().split()]
    return found


def usage(pid: int) -> dict[str, float]:
    """Victoria's threads and file descriptors, and the memory of it and its worker processes (the STT)."""
    fields = _status(pid)
    rss_kb = sum(int(_status(p)["VmRSS"].split()[0]) for p in [pid, *children(pid)])
    return {"threads": int(fields["Threads"]), "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "rss_mb": round(rss_kb / 1024, 1)}


def place_calls(server: Victoria, count: int, workdir) -> subprocess.CompletedProcess:
    sipp = shutil.which("sipp")
    assert sipp, "sipp is not installed: run ./scripts/setup.sh (package sip-tester)"
    return subprocess.run(
        [sipp, "-sn", "uac", "-s", "7000", f"{LOOPBACK}:{server.sip_port}", "-i", LOOPBACK, "-p", str(free_port()),
         "-mi", LOOPBACK, "-mp", str(free_port()), "-m", str(count), "-l", "3", "-r", "6", "-d", "1000",
         "-nostdin", "-timeout", f"{count}s", "-timeout_error", "-trace_err", "-error_file", str(workdir / "sipp.err")],
        capture_output=True, text=True, timeout=count + 30, cwd=workdir)


def calls_in_a_row(tmp_path, count: int) -> None:
    server = Victoria(tmp_path / "v", "")
    server.start()
    server.wait_ready()
    try:
        assert place_calls(server, 10, tmp_path).returncode == 0  # warm-up
        wait_until(lambda: len(server.calls()) == 10, 20, what="warm-up calls stored")
        time.sleep(1)
        before = usage(server.process.pid)
        started = time.monotonic()
        result = place_calls(server, count, tmp_path)
        elapsed = time.monotonic() - started
        wait_until(lambda: server.log().count("ended, caller-hangup") >= 10 + count, 30, what="every call ended")
        time.sleep(1)
        after = usage(server.process.pid)
    finally:
        assert server.stop() == 0, server.log()[-3000:]
    print(f"\n{count} calls in {elapsed:.0f} s: {before} -> {after}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    calls = server.calls()
    assert len(calls) == 10 + count and all(c["end_reason"] == "caller-hangup" for c in calls)
    assert after["threads"] - before["threads"] <= MAX_THREAD_GROWTH, (before, after)
    assert after["fds"] - before["fds"] <= MAX_FD_GROWTH, (before, after)
    assert after["rss_mb"] - before["rss_mb"] <= MAX_RSS_GROWTH_MB + RSS_GROWTH_PER_CALL_MB * count, (before, after)


def test_100_calls_in_a_row_leave_no_growth(tmp_path):
    calls_in_a_row(tmp_path, 100)


@pytest.mark.soak
@pytest.mark.timeout(1200)  # ~3 calls a second
def test_1000_calls_in_a_row_leave_no_growth(tmp_path):
    calls_in_a_row(tmp_path, 1000)
