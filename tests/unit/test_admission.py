"""Admission by inference headroom: which measure refuses, and how calls not yet measured count."""

import pytest

from victoria_sip.application.admission import Admission, AdmissionLimits, WaitMeasure
from victoria_sip.domain.ports import RecogniserLoad

LIMITS = AdmissionLimits(window_seconds=10, max_stt_queue_seconds=0.5, max_stt_busy=0.8, max_tts_queue_seconds=0.5,
                         max_cpu_busy=0.95)


class Measured:
    """What the recogniser pool and the CPU meter would report."""

    def __init__(self, **load) -> None:
        self.load = RecogniserLoad(**{"workers": 2, "queue_seconds": 0.05, "backlog_seconds": 0.0, "busy": 0.2,
                                      "busy_per_call": 0.1, **load})
        self.cpu = 0.5

    def measure(self) -> RecogniserLoad:
        return self.load

    def busy(self) -> float:
        return self.cpu


def admission(measured: Measured, voices: WaitMeasure | None = None, limits: AdmissionLimits = LIMITS) -> Admission:
    return Admission(limits, measured, voices or WaitMeasure(10), measured)


def test_headroom_everywhere_admits():
    assert admission(Measured()).check(now=100) is None


@pytest.mark.parametrize("load, reason", [
    ({"queue_seconds": 0.7}, "stt_queue"),
    ({"backlog_seconds": 2.0}, "stt_queue"),  # a stalled worker refuses at once, before any p95 moves
    ({"busy": 0.75, "busy_per_call": 0.1}, "stt_busy"),  # 0.85 with one more call
])
def test_the_recognisers_refuse_by_queue_delay_or_busy_share(load, reason):
    refusal = admission(Measured(**load)).check(now=100)
    assert refusal is not None and refusal[0] == reason, refusal


def test_the_refusal_says_what_was_measured_against_which_limit():
    reason, detail = admission(Measured(busy=0.75)).check(now=100)
    assert "85%" in detail and "max_stt_busy = 0.8" in detail, detail


def test_calls_answered_within_the_window_count_until_their_cost_shows():
    measured = Measured(busy=0.3, busy_per_call=0.2)
    gate = admission(measured)
    gate.admitted(now=100)
    gate.admitted(now=100)
    assert gate.check(now=100)[0] == "stt_busy"  # 0.3 + 0.2 x (2 unmeasured + 1)
    assert gate.check(now=105) is None  # half measured: 0.3 + 0.2 x (1 + 1)
    assert gate.check(now=111) is None  # their cost is in ``busy`` by now (or they never spoke)


def test_voices_waiting_refuse():
    voices = WaitMeasure(10)
    for t in range(20):
        voices.record(90 + t * 0.5, 0.8)
    assert admission(Measured(), voices).check(now=100)[0] == "tts_queue"
    assert admission(Measured(), voices).check(now=120) is None  # the window has moved on


def test_busy_cores_refuse_even_when_the_models_keep_up():
    measured = Measured()
    measured.cpu = 0.99
    assert admission(measured).check(now=100)[0] == "cpu"


def test_disabled_admits_whatever_is_measured():
    gate = admission(Measured(queue_seconds=9, busy=1.0), limits=AdmissionLimits(enabled=False))
    assert gate.check(now=100) is None


def test_without_a_recogniser_only_voices_and_cores_decide():
    gate = Admission(LIMITS, None, WaitMeasure(10), Measured())
    assert gate.check(now=100) is None
