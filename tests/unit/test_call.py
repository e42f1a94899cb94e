import pytest
from hypothesis import given
from hypothesis import strategies as st

from victoria_sip.domain import Call, CallId, CallStatus, EndReason, IllegalTransition, PhoneNumber


def make_call() -> Call:
    return Call(id=CallId.new(), agent="victoria", caller=PhoneNumber("7001"), callee="7000")


def test_a_call_rings_then_runs_then_ends():
    call = make_call()
    assert call.status is CallStatus.RINGING
    call.start()
    assert call.status is CallStatus.ACTIVE and call.started_at is not None
    call.end(EndReason.CALLER_HANGUP)
    assert call.status is CallStatus.ENDED
    assert call.end_reason is EndReason.CALLER_HANGUP
    assert call.duration_seconds is not None and call.duration_seconds >= 0


def test_a_ringing_call_can_end_without_starting_when_the_caller_cancels():
    call = make_call()
    call.end(EndReason.CALLER_CANCELLED)
    assert call.status is CallStatus.ENDED and call.duration_seconds is None


@pytest.mark.parametrize("illegal", ["start_twice", "end_twice", "start_after_end", "reject_active", "end_rejected"])
def test_illegal_transitions_are_refused_and_leave_the_call_unchanged(illegal):
    call = make_call()
    steps = {
        "start_twice": (call.start, call.start),
        "end_twice": (lambda: call.end(EndReason.AGENT_HANGUP), lambda: call.end(EndReason.AGENT_HANGUP)),
        "start_after_end": (lambda: call.end(EndReason.CALLER_CANCELLED), call.start),
        "reject_active": (call.start, lambda: call.reject(EndReason.BUSY)),
        "end_rejected": (lambda: call.reject(EndReason.BUSY), lambda: call.end(EndReason.CALLER_HANGUP)),
    }[illegal]
    steps[0]()
    before = (call.status, call.end_reason, call.ended_at)
    with pytest.raises(IllegalTransition):
        steps[1]()
    assert (call.status, call.end_reason, call.ended_at) == before


def test_final_states_are_final():
    assert {s for s in CallStatus if s.is_final} == {CallStatus.ENDED, CallStatus.REJECTED, CallStatus.FAILED}


@pytest.mark.parametrize(
    "uri, number",
    [
        ('"Front desk" <sip:+4930123456@pbx.local;user=phone>', "+4930123456"),
        ("sip:7001@127.0.0.1:5070", "7001"),
        ("<sips:alice@example.org>", "alice"),
        ("tel:+15551234", "+15551234"),
        ("<sip:127.0.0.1>", "anonymous"),
        ("<sip:%2B4930123456@pbx.local>", "+4930123456"),
        # RFC 4475 3.1.1.3 (esc01), a valid INVITE: the caller id is kept, escaped as it came
        ("<sip:I%20have%20spaces@example.net>;tag=938", "I%20have%20spaces"),
        ("<sip:sip%3Auser%40example.com@company.com;other-param=summit>", "sip%3Auser%40example.com"),
        ("sip:%C3%A9mile@example.net", "%C3%A9mile"),
        ("sip:%00%0A@example.net", "%00%0A"),
        (f"sip:{'9' * 80}@example.net", "9" * 64),
        (f"sip:{'%20' * 30}@example.net", "%20" * 21),
        (f"sip:a{'%20' * 30}@example.net", "a" + "%20" * 21),
    ],
)
def test_phone_numbers_are_taken_from_sip_uris(uri, number):
    assert PhoneNumber.from_sip_uri(uri).value == number


@given(st.text(max_size=200))
def test_any_caller_uri_gives_a_caller_id(text):
    for uri in (text, f"sip:{text}@example.net", f"<tel:{text}>"):
        assert 1 <= len(PhoneNumber.from_sip_uri(uri).value) <= 64


@pytest.mark.parametrize("bad", ["", "a b", "x" * 65, "7000;drop"])
def test_bad_phone_numbers_are_refused(bad):
    with pytest.raises(ValueError):
        PhoneNumber(bad)


def test_call_ids_are_unique_and_validated():
    assert CallId.new() != CallId.new()
    with pytest.raises(ValueError):
        CallId("../etc/passwd")
