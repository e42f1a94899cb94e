"""The ops listener on a live system: /metrics moves as a real call happens, /readyz follows the registrar."""

import socket
import threading

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import write_wav
from tests.integration.test_conversation import LONG_REPLY, QUESTION, RATE, silence, victoria_for
from tests.support.ollama_double import OllamaDouble
from tests.support.processes import LOOPBACK, Victoria, run_caller, wait_until

pytestmark = pytest.mark.integration


def scrape(server: Victoria) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics, parsed by prometheus_client: (name, sorted labels) -> value."""
    status, body = server.http_get("/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_follow_a_real_call_with_a_barge_in(tmp_path, kamailio, piper_voice):
    question = piper_voice(QUESTION)
    interruption = piper_voice("Sorry, stop, I have another question.")
    audio = np.concatenate([silence(3), question, silence(3.0), interruption, silence(5)])
    played = write_wav(tmp_path / "caller.wav", audio, RATE)
    with OllamaDouble(reply=LONG_REPLY) as ollama:
        server = victoria_for(tmp_path, kamailio, ollama.host)
        try:
            before = scrape(server)
            reports = []
            caller = threading.Thread(target=lambda: reports.append(run_caller(
                f"sip:7000@{kamailio.registrar}", proxy=f"sip:{kamailio.registrar}", password="caller-secret",
                play=played, hangup_after=len(audio) / RATE, timeout=60)))
            caller.start()
            server.wait_for_log(r"answered by agent", timeout=30)
            during = scrape(server)
            caller.join(90)
            server.wait_for_log(r"ended, caller-hangup", timeout=15)
            after = scrape(server)
        finally:
            assert server.stop() == 0
    assert reports and reports[0]["answered"]

    assert value(before, "victoria_registered", account="desk") == 1
    assert value(before, "victoria_registrations_total", account="desk") >= 1
    assert value(before, "victoria_active_calls", agent="front") == 0
    assert value(during, "victoria_active_calls", agent="front") == 1
    assert value(after, "victoria_active_calls", agent="front") == 0
    assert value(after, "victoria_calls_answered_total", agent="front") == 1
    assert value(after, "victoria_calls_total", agent="front", outcome="caller-hangup") == 1
    assert value(after, "victoria_barge_ins_total", agent="front") >= 1
    # greeting, question, interrupted reply, interruption: each committed
    assert value(after, "victoria_turns_persisted_total") >= 4
    for stage in ("stt_final", "llm_first_token", "tts_first_audio", "first_audio_out"):
        assert value(after, "victoria_reply_seconds_count", stage=stage) >= 1, stage
        mean = value(after, "victoria_reply_seconds_sum", stage=stage) / value(after, "victoria_reply_seconds_count", stage=stage)
        assert 0.05 < mean < 10, (stage, mean)  # after a hangover of 300 ms or more, in seconds not ms
    assert value(after, "victoria_tts_real_time_factor_count") >= 1
    seconds = len(audio) / RATE
    assert 0.95 * 50 * seconds < value(after, "victoria_rtp_packets_received_total") < 1.05 * 50 * seconds, \
        "every packet, up to the last seconds of the call"
    assert value(after, "victoria_rtp_packets_lost_total") == 0, "loopback loses nothing"
    assert value(after, "victoria_rtp_jitter_seconds_count") >= 1
    assert value(after, "victoria_model_errors_total", stage="llm") == 0
    assert all("call_id" not in dict(labels) for _, labels in after), "no call id in labels"


def test_readyz_follows_the_registrar_and_ollama(tmp_path, kamailio):
    with OllamaDouble() as ollama:
        server = victoria_for(tmp_path, kamailio, ollama.host)
        try:
            assert server.http_get("/healthz")[0] == 200
            wait_until(lambda: server.http_get("/readyz")[0] == 200, 10, what="ready")
            body = server.http_get("/readyz")[1]
            assert '"llama3.2:1b at' in body and '"registered: desk"' in body, body

            kamailio.stop()
            wait_until(lambda: server.http_get("/readyz")[0] == 503, 20, what="not ready without the registrar")
            assert "not registered: desk" in server.http_get("/readyz")[1]
            assert server.http_get("/healthz")[0] == 200, "alive all the same"
            assert value(scrape(server), "victoria_registered", account="desk") == 0

            kamailio.start()
            wait_until(lambda: server.http_get("/readyz")[0] == 200, 30, what="ready again once re-registered")
            assert value(scrape(server), "victoria_registered", account="desk") == 1

            ollama.models.clear()  # the model was removed from Ollama
            wait_until(lambda: server.http_get("/readyz")[0] == 503, 10, what="not ready without the model")
            assert "has no model 'llama3.2:1b': run `ollama pull llama3.2:1b`" in server.http_get("/readyz")[1]
        finally:
            assert server.stop() == 0


def test_a_taken_metrics_port_stops_serve_with_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        server = Victoria(tmp_path / "v", '[stt]\nprovider = "none"\n')
        server.metrics_port = taken.getsockname()[1]
        server.start()
        assert server.process.wait(60) != 0
    assert f"cannot listen for metrics on {LOOPBACK}:{server.metrics_port}" in server.log()
    assert "--metrics-listen" in server.log()
