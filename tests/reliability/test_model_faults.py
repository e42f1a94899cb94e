"""Model faults: the recogniser or the voice raises, Ollama refuses, stalls or drops mid-stream. The caller hears
the apology within the agent's max_reply_delay, the call goes on, and the error is counted by stage."""

from concurrent.futures import Future

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.ollama_double import OllamaDouble
from tests.support.processes import LOOPBACK, Victoria, run_caller
from tests.unit.test_call_session import FakeLLM, FakeSTT, run_session, silence, voiced
from victoria_sip.adapters.metrics import PrometheusTelemetry
from victoria_sip.domain import Role
from victoria_sip.errors import ModelError

APOLOGY = "Sorry, could you repeat that?"


def errors(telemetry: PrometheusTelemetry, stage: str) -> float:
    return telemetry.registry.get_sample_value("victoria_model_errors_total", {"stage": stage}) or 0.0


class BrokenVoice:
    def synthesize(self, text, voice):
        raise ModelError("the voice model crashed")


class BrokenRecogniser(FakeSTT):
    def open_stream(self, sample_rate):
        stream = super().open_stream(sample_rate)

        def finish():
            transcript = Future()
            transcript.set_exception(ModelError("the recogniser crashed"))
            return transcript

        stream.finish = finish
        return stream


@pytest.mark.parametrize("stage, models", [
    ("tts", {"tts": BrokenVoice()}),
    ("stt", {"stt": BrokenRecogniser("")}),
    ("llm", {"llm": FakeLLM("", fail=True)}),
])
def test_a_failing_model_is_answered_with_the_apology_counted_and_the_call_goes_on(stage, models):
    telemetry = PrometheusTelemetry(["front"])
    llm = models.pop("llm", FakeLLM("We open at nine."))
    _, leg, turns = run_session(np.concatenate([silence(2.0), voiced(1.0)]), llm, seconds=5, telemetry=telemetry,
                                **models)
    said = [t.content for t in turns if t.role is Role.ASSISTANT]
    assert said[-1] == APOLOGY, turns
    assert errors(telemetry, stage) == 1
    assert not leg.hung_up, "the call goes on"


CONFIG = """
[stt]
provider = "none"

[llm]
host = "{llm}"
first_token_timeout = 10.0
token_timeout = 10.0

[[agents]]
name = "front"
first_message = "Hello."
max_reply_delay = 2.0
"""


@pytest.mark.integration
@pytest.mark.parametrize("failure", ["refused", "drop", "stall"])  # HTTP 500 and error lines: test_llm_ollama, test_transfer
def test_on_a_live_call_ollama_failing_any_way_is_answered_within_max_reply_delay(tmp_path, failure):
    with OllamaDouble(reply="Let me see, we open at nine on weekdays") as ollama:
        # without an end of sentence before the failure, nothing speakable arrives: the apology is all
        ollama.failure = None if failure == "refused" else failure
        host = ollama.host
        if failure == "refused":
            ollama.__exit__(None, None, None)  # nothing listens there any more: connection refused
        server = Victoria(tmp_path / "v", CONFIG.format(llm=host))
        server.start()
        server.wait_ready()
        try:
            report = run_caller(f"sip:7000@{LOOPBACK}:{server.sip_port}", dtmf="1#,2#", dtmf_after=2.0,
                                dtmf_gap=5.0, hangup_after=25, timeout=40)
            server.wait_for_log(r"call \w+: ended", timeout=15)
            status, metrics = server.http_get("/metrics")
        finally:
            assert server.stop() == 0
    assert report["answered"] and not report["hung_up_by_caller"], report
    assert status == 200
    [call] = server.calls()
    assert call["end_reason"] == "agent-hangup", "two failures in a row, no fallback destination: a polite goodbye"
    turns = server.call_detail(call["id"])["turns"]
    said = [t for t in turns if t["role"] == "assistant"]
    apologies = said[1:3]
    assert [t["text"] for t in apologies] == ["I'm sorry, I'm having trouble understanding right now. Could you say "
                                              "that again?"] * 2, turns
    assert said[-1]["text"] == "Thank you for calling. Goodbye."
    for apology in apologies:  # from the caller's last key to the apology's first frame going out
        assert apology["latency_ms"]["first_frame_out_ms"] <= 2000 + 200, apology
    counted = {s.labels["stage"]: s.value for f in text_string_to_metric_families(metrics) for s in f.samples
               if s.name == "victoria_model_errors_total"}
    assert counted["llm"] == 2, counted
