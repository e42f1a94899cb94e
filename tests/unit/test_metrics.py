"""The Prometheus adapter: names, units and label hygiene; the shipped dashboard uses only real metrics."""

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from victoria_sip.adapters.metrics import PrometheusTelemetry
from victoria_sip.domain import EndReason, TurnLatency

ROOT = Path(__file__).parents[2]


def samples(telemetry: PrometheusTelemetry) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(telemetry.exposition().decode()) for s in f.samples}


def test_series_exist_at_zero_before_anything_happens():
    got = samples(PrometheusTelemetry(["front"], ["desk"]))
    assert got[("victoria_active_calls", (("agent", "front"),))] == 0
    assert got[("victoria_calls_answered_total", (("agent", "front"),))] == 0
    assert got[("victoria_registered", (("account", "desk"),))] == 0
    assert got[("victoria_model_errors_total", (("stage", "llm"),))] == 0


def test_a_call_moves_the_gauge_up_and_down_and_counts_its_outcome():
    telemetry = PrometheusTelemetry(["front"])
    telemetry.call_answered("front")
    assert samples(telemetry)[("victoria_active_calls", (("agent", "front"),))] == 1
    telemetry.call_ended("front", EndReason.CALLER_HANGUP)
    telemetry.call_rejected("front", EndReason.BUSY)
    got = samples(telemetry)
    assert got[("victoria_active_calls", (("agent", "front"),))] == 0
    assert got[("victoria_calls_total", (("agent", "front"), ("outcome", "caller-hangup")))] == 1
    assert got[("victoria_calls_total", (("agent", "front"), ("outcome", "rejected-busy")))] == 1


def test_reply_latency_is_observed_in_seconds_per_stage():
    telemetry = PrometheusTelemetry()
    telemetry.reply_timed("front", TurnLatency(stt_final_ms=640, llm_first_token_ms=650, tts_first_audio_ms=800,
                                               first_frame_out_ms=820))
    got = samples(telemetry)
    assert got[("victoria_reply_seconds_sum", (("stage", "first_audio_out"),))] == 0.82
    assert got[("victoria_reply_seconds_count", (("stage", "stt_final"),))] == 1


def test_the_probe_seeing_the_registrar_go_is_not_counted_as_a_register_failure():
    telemetry = PrometheusTelemetry([], ["desk"])
    telemetry.registration_result("desk", True, 200)
    telemetry.registration_result("desk", False, 0)
    telemetry.registration_result("desk", False, 401)
    got = samples(telemetry)
    assert got[("victoria_registered", (("account", "desk"),))] == 0
    assert got[("victoria_registrations_total", (("account", "desk"),))] == 1
    failures = {labels: v for (name, labels), v in got.items() if name == "victoria_registration_failures_total"}
    assert failures == {(("account", "desk"), ("code", "401")): 1}


def test_the_grafana_dashboard_and_alert_examples_use_only_metrics_that_exist():
    telemetry = PrometheusTelemetry(["front"], ["desk"])
    # labelled series appear once used: use every one
    telemetry.reply_timed("front", TurnLatency(first_frame_out_ms=1))
    telemetry.call_rejected("front", EndReason.BUSY)
    telemetry.registration_result("desk", False, 401)
    exposed = {name for name, _ in samples(telemetry)}
    dashboard = json.loads((ROOT / "config" / "grafana" / "victoria-sip.json").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    expressions.append((ROOT / "config" / "prometheus.yml").read_text())
    used = {name for e in expressions for name in re.findall(r"\bvictoria_[a-z_]+", e)}
    assert used, "the dashboard queries something"
    assert used <= exposed | {n + "_bucket" for n in exposed}, used - exposed
