"""Erasing calls over a real SQLite call database and real recording files."""

import logging
from datetime import datetime, timedelta, timezone

import pytest

from victoria_sip.adapters.repository import SqlCallRepository, open_database
from victoria_sip.application.erasure import CallEraser, CallInProgress
from victoria_sip.domain import Call, CallId, EndReason, PhoneNumber, Role

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def calls(tmp_path):
    repository = SqlCallRepository(open_database(f"sqlite:///{tmp_path / 'calls.db'}"))
    yield repository
    repository.close()


def stored_call(calls, tmp_path, caller="+4930123", ended_days_ago: float | None = 1.0, recorded=True) -> Call:
    call = Call(id=CallId.new(), agent="front", caller=PhoneNumber(caller), callee="7000",
                created_at=NOW - timedelta(days=(ended_days_ago or 0) + 0.01))
    call.start(at=call.created_at)
    if recorded:
        call.recording = str(tmp_path / f"{call.id.value}.wav")
        (tmp_path / f"{call.id.value}.wav").write_bytes(b"RIFF")
    calls.save_call(call)
    for role, text in [(Role.ASSISTANT, "Hello."), (Role.CALLER, "[keypad] 4711")]:
        calls.add_turn(call.id, call.conversation.add_turn(role, text))
    if ended_days_ago is not None:
        call.end(EndReason.CALLER_HANGUP, at=NOW - timedelta(days=ended_days_ago))
        calls.save_call(call)
    return call


def test_a_call_is_erased_with_its_turns_and_recording_and_others_stay(calls, tmp_path):
    gone, kept = stored_call(calls, tmp_path), stored_call(calls, tmp_path)
    erased = CallEraser(calls).erase([gone.id])
    assert erased.calls == [gone.id.value] and erased.turns == 2 and erased.recordings_deleted == 1
    assert calls.get_call(gone.id) is None and not (tmp_path / f"{gone.id.value}.wav").exists()
    assert len(calls.get_call(kept.id).conversation.turns) == 2 and (tmp_path / f"{kept.id.value}.wav").exists()
    assert calls.database.execute_sql("SELECT COUNT(*) FROM turns").fetchone()[0] == 2


def test_a_call_in_progress_or_unknown_refuses_the_whole_request(calls, tmp_path):
    ended, talking = stored_call(calls, tmp_path), stored_call(calls, tmp_path, ended_days_ago=None)
    with pytest.raises(CallInProgress, match="in progress"):
        CallEraser(calls).erase([ended.id, talking.id])
    with pytest.raises(LookupError, match="no call"):
        CallEraser(calls).erase([ended.id, CallId.new()])
    assert calls.get_call(ended.id) is not None and calls.get_call(talking.id) is not None


def test_one_caller_s_ended_calls_are_erased(calls, tmp_path):
    first, second = stored_call(calls, tmp_path, "+491111"), stored_call(calls, tmp_path, "+491111")
    talking = stored_call(calls, tmp_path, "+491111", ended_days_ago=None)
    other = stored_call(calls, tmp_path, "+492222")
    erased = CallEraser(calls).erase_caller("+491111")
    assert sorted(erased.calls) == sorted([first.id.value, second.id.value])
    assert calls.get_call(talking.id) is not None and calls.get_call(other.id) is not None


def test_calls_older_than_the_retention_are_erased_in_batches(calls, tmp_path):
    old = [stored_call(calls, tmp_path, ended_days_ago=40 + i, recorded=i % 2 == 0) for i in range(5)]
    recent = stored_call(calls, tmp_path, ended_days_ago=29)
    talking_long = stored_call(calls, tmp_path, ended_days_ago=None)  # started "now", still going
    erased = CallEraser(calls).erase_older_than(30, NOW, batch=2)
    assert sorted(erased.calls) == sorted(c.id.value for c in old)
    assert erased.recordings_deleted == 3 and erased.turns == 10
    assert calls.get_call(recent.id) is not None and calls.get_call(talking_long.id) is not None


def test_a_recording_that_cannot_be_deleted_is_named_and_the_rows_are_still_gone(calls, tmp_path, caplog):
    call = stored_call(calls, tmp_path)

    def refuse(path: str) -> bool:
        raise PermissionError(13, "Permission denied", path)

    with caplog.at_level(logging.ERROR, "victoria.erasure"):
        erased = CallEraser(calls, remove=refuse).erase([call.id])
    assert erased.recordings_left == [call.recording] and "could not delete" in erased.describe()
    assert calls.get_call(call.id) is None and call.recording in caplog.text
