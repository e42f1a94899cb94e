"""The recogniser pool's faults on a live call: SIPp callers speaking, ``victoria-sip serve`` with one
PocketSphinx worker process. A killed worker costs the utterance it held (the caller hears the apology) and
is replaced; a stopped one never delays Victoria's RTP, and its backlog is decoded when it resumes."""

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from bench.rtp_sniffer import RtpSniffer
from tests.support.ollama_double import OllamaDouble
from tests.support.processes import LOOPBACK, Victoria, free_port, run_sipp, wait_until
from victoria_sip.audio.g711 import mulaw_encode

pytestmark = pytest.mark.integration

SENTENCE = "I would like to book a table for two people tomorrow evening."
WORDS = {"like", "book", "table", "two", "people", "tomorrow", "evening"}
GREETING_SECONDS = 5.5  # the caller lets the greeting finish (speaking over it would be a barge-in)
GAP_SECONDS = 5.0  # between the caller's sentences: Victoria's reply fits in it
APOLOGY = (Path(__file__).parents[2] / "media" / "prompts" / "apology.txt").read_text().strip()

CONFIG = """
[sip]
rtp_port = {rtp_port}
rtp_port_range = 10

[stt]
workers = 1

[llm]
host = "{llm}"
"""


def sentences(piper_voice, tmp_path: Path, count: int) -> tuple[Path, float]:
    """The caller's audio as raw μ-law for SIPp: the greeting's silence, then ``count`` sentences with gaps."""
    speech = piper_voice(SENTENCE, 8000)
    gap = np.zeros(int(8000 * GAP_SECONDS), np.int16)
    parts = [np.zeros(int(8000 * GREETING_SECONDS), np.int16)] + [speech, gap] * count
    path = tmp_path / "caller.ulaw"
    path.write_bytes(mulaw_encode(np.concatenate(parts)).tobytes())
    return path, len(speech) / 8000


def recogniser_pid(server: Victoria) -> int:
    """The serve process's recogniser worker (a spawned multiprocessing child, not its resource tracker)."""
    pid = server.process.pid
    children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                for c in (task / "children").read_text().split()]
    workers = [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
    assert len(workers) == 1, children
    return workers[0]


def start_call(server: Victoria, audio: Path, seconds: float, tmp_path: Path):
    import threading

    result = {}
    thread = threading.Thread(target=lambda: result.update(sipp=run_sipp(
        "uac_speech_pcmu.xml", f"{LOOPBACK}:{server.sip_port}", "7000",
        fill={"speech": str(audio), "pause_ms": str(int(seconds * 1000))}, timeout=seconds + 30, workdir=tmp_path)))
    thread.start()
    server.wait_for_log(r"answered by agent", timeout=15)
    return thread, result, time.monotonic()


def test_a_recogniser_worker_killed_mid_call_costs_one_utterance_and_the_call_goes_on(tmp_path, piper_voice):
    audio, speech_seconds = sentences(piper_voice, tmp_path, 3)
    call_seconds = GREETING_SECONDS + 3 * (speech_seconds + GAP_SECONDS)
    with OllamaDouble(reply="Certainly.") as ollama:
        server = Victoria(tmp_path / "v", CONFIG.format(rtp_port=free_port(), llm=ollama.host))
        server.start()
        server.wait_ready(timeout=90)
        try:
            first = recogniser_pid(server)
            thread, result, answered = start_call(server, audio, call_seconds, tmp_path)
            # halfway through the second sentence
            kill_at = answered + GREETING_SECONDS + speech_seconds + GAP_SECONDS + speech_seconds / 2
            time.sleep(max(0.0, kill_at - time.monotonic()))
            os.kill(first, signal.SIGKILL)
            server.wait_for_log(r"pocketsphinx worker 0 started", count=2, timeout=30)
            thread.join(call_seconds + 45)
            server.wait_for_log(r"ended, caller-hangup", timeout=15)
            replacement = recogniser_pid(server)
        finally:
            assert server.stop() == 0, server.log()[-3000:]
    assert result["sipp"].returncode == 0, result["sipp"].stdout[-2000:]
    assert replacement != first
    assert f"pocketsphinx worker 0 (pid {first}) exited: 1 utterance(s) lost" in server.log()
    [call] = server.calls()
    assert call["end_reason"] == "caller-hangup", "the call went on to the caller's hangup"
    turns = [(t["role"], t["text"]) for t in server.call_detail(call["id"])["turns"]]
    said = [text for role, text in turns if role == "caller"]
    assert len(said) == 2, turns  # the first and the third sentence; the second was lost with the worker
    for text in said:
        assert len(set(text.split()) & WORDS) >= 4, turns
    assert ("assistant", APOLOGY) in turns, turns
    apology = turns.index(("assistant", APOLOGY))
    assert turns[apology - 1][0] == "assistant" and ("caller", said[1]) in turns[apology:], \
        "the lost sentence was apologised for, and the next one was heard and answered"


def test_a_stopped_recogniser_worker_does_not_make_victorias_rtp_late(tmp_path, piper_voice):
    audio, speech_seconds = sentences(piper_voice, tmp_path, 2)
    call_seconds = GREETING_SECONDS + 2 * (speech_seconds + GAP_SECONDS)
    rtp_port = 20000 + free_port() % 20000
    sniffer = RtpSniffer(range(rtp_port, rtp_port + 12), levels=False)
    sniffer.start()
    with OllamaDouble(reply="Certainly.") as ollama:
        server = Victoria(tmp_path / "v", CONFIG.format(rtp_port=rtp_port, llm=ollama.host))
        server.start()
        server.wait_ready(timeout=90)
        worker = recogniser_pid(server)
        try:
            thread, result, answered = start_call(server, audio, call_seconds, tmp_path)
            sniffer.record(True)
            # stopped from the greeting to after the first sentence: its frames pile up, handed over unread
            time.sleep(max(0.0, answered + GREETING_SECONDS - 2 - time.monotonic()))
            os.kill(worker, signal.SIGSTOP)
            time.sleep(speech_seconds + 4)
            os.kill(worker, signal.SIGCONT)
            thread.join(call_seconds + 45)
            sniffer.record(False)
            server.wait_for_log(r"ended, caller-hangup", timeout=15)
        finally:
            os.kill(worker, signal.SIGCONT)
            sniffer.stop()
            assert server.stop() == 0, server.log()[-3000:]
    assert result["sipp"].returncode == 0, result["sipp"].stdout[-2000:]
    [stream] = sniffer.reports()
    assert stream.packets >= 50 * (call_seconds - 2), stream
    # a frame path that waited for the worker would be seconds late; pjmedia's own clock wobbles by a frame or two
    assert stream.missing == 0 and stream.worst_late_ms < 100, stream
    [call] = server.calls()
    said = [t["text"] for t in server.call_detail(call["id"])["turns"] if t["role"] == "caller"]
    assert len(said) == 2 and all(len(set(text.split()) & WORDS) >= 4 for text in said), said
    assert "exited" not in server.log() and "killed" not in server.log(), "stopped for less than HUNG_SECONDS"
