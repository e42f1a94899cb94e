"""The call log on a real SQLite file (WAL mode, commits visible at once) and on a real PostgreSQL server."""

import sqlite3
from datetime import datetime, timezone

import pytest

from victoria_sip.adapters.repository import SqlCallRepository, open_database, redact
from victoria_sip.domain import Call, CallFilter, CallId, CallStatus, EndReason, MediaStats, PhoneNumber, Role, TurnLatency
from victoria_sip.errors import RepositoryError
from tests.support.postgres import Postgres


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "sub" / "calls.db"


@pytest.fixture(scope="module")
def postgres():
    server = Postgres()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_repository(request, db_path):
    if request.param == "sqlite":
        repo = SqlCallRepository(open_database(f"sqlite:///{db_path}"))
    else:
        database = open_database(request.getfixturevalue("postgres").url)
        database.execute_sql("TRUNCATE turns, calls")
        repo = SqlCallRepository(database)
    yield repo
    repo.close()


@pytest.fixture
def repository(db_path):
    repo = SqlCallRepository(open_database(f"sqlite:///{db_path}"))
    yield repo
    repo.close()


def new_call() -> Call:
    return Call(id=CallId.new(), agent="reception", caller=PhoneNumber("+4930123"), callee="7000")


def test_the_database_is_created_in_wal_mode(repository, db_path):
    with sqlite3.connect(db_path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_turn_is_committed_when_add_turn_returns(repository, db_path):
    call = new_call()
    call.start()
    repository.save_call(call)
    turn = call.conversation.add_turn(Role.ASSISTANT, "Hello.")
    repository.add_turn(call.id, turn)
    # another connection (another process, after a crash) sees it without any close or checkpoint
    with sqlite3.connect(db_path) as other:
        rows = other.execute("SELECT call_id, idx_or_index, role, text FROM turns".replace("idx_or_index", '"index"')).fetchall()
    assert rows == [(call.id.value, 0, "assistant", "Hello.")]


def test_calls_round_trip_with_their_turns_in_order(any_repository):
    call = new_call()
    call.start()
    any_repository.save_call(call)
    for role, text in [("assistant", "Hello."), ("caller", "Hi, a table please."), ("assistant", "For how many?")]:
        any_repository.add_turn(call.id, call.conversation.add_turn(role, text))
    call.media = MediaStats(300, 250, -12.5)
    call.end(EndReason.CALLER_HANGUP)
    any_repository.save_call(call)

    loaded = any_repository.get_call(call.id)
    assert loaded is not None
    assert loaded.status is CallStatus.ENDED and loaded.end_reason is EndReason.CALLER_HANGUP
    assert loaded.conversation.get_transcript() == call.conversation.get_transcript()
    assert loaded.media == MediaStats(300, 250, -12.5)
    assert abs((loaded.started_at - call.started_at).total_seconds()) < 0.001
    assert loaded.started_at.tzinfo is not None
    assert [c.id for c in any_repository.find_calls(call.id.value[:6])] == [call.id]


def test_a_turn_index_is_stored_once_per_call(any_repository):
    call = new_call()
    any_repository.save_call(call)
    turn = call.conversation.add_turn("caller", "hello")
    any_repository.add_turn(call.id, turn)
    with pytest.raises(RepositoryError):
        any_repository.add_turn(call.id, turn)


def test_calls_list_newest_first(any_repository):
    older, newer = new_call(), new_call()
    older.created_at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for call in (older, newer):
        any_repository.save_call(call)
    assert [c.id for c in any_repository.list_calls()] == [newer.id, older.id]


def test_an_unusable_database_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(RepositoryError, match="cannot open the call database"):
        open_database(f"sqlite:///{blocker}/calls.db")


def test_passwords_are_redacted_from_database_urls():
    assert redact("postgresql://victoria:s3cret@db.local/calls") == "postgresql://victoria:***@db.local/calls"
    assert redact("sqlite:////var/lib/v.db") == "sqlite:////var/lib/v.db"
    assert redact("postgresql://victoria@db.local/calls") == "postgresql://victoria@db.local/calls"


def test_calls_are_filtered_by_agent_status_and_time(any_repository):
    old, sales, busy = new_call(), new_call(), new_call()
    old.created_at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    sales.agent = "sales"
    busy.reject(EndReason.BUSY)
    for call in (old, sales, busy):
        any_repository.save_call(call)
    since = datetime(2026, 6, 1, tzinfo=timezone.utc)
    assert [c.id for c in any_repository.list_calls(agent="sales")] == [sales.id]
    assert [c.id for c in any_repository.list_calls(status="rejected")] == [busy.id]
    assert {c.id for c in any_repository.list_calls(since=since)} == {sales.id, busy.id}
    assert [c.id for c in any_repository.list_calls(agent="reception", since=since)] == [busy.id]


def test_export_pages_through_every_call_oldest_first_with_turns(any_repository):
    calls = []
    for n in range(7):
        call = new_call()
        call.created_at = datetime(2026, 3, 1, 12, 0, n // 2, tzinfo=timezone.utc)  # pairs share a timestamp
        any_repository.save_call(call)
        any_repository.add_turn(call.id, call.conversation.add_turn(Role.ASSISTANT, f"Hello {n}."))
        calls.append(call)
    exported = list(any_repository.export_calls(batch=3))
    assert sorted(c.id.value for c in exported) == sorted(c.id.value for c in calls), "each call exactly once"
    assert [c.created_at for c in exported] == sorted(c.created_at for c in calls)
    assert all(len(c.conversation.turns) == 1 for c in exported)
    assert {c.conversation.turns[0].content for c in exported} == {f"Hello {n}." for n in range(7)}


def test_calls_are_found_by_what_was_said_or_who_called_wildcards_taken_literally(any_repository):
    booking, refund, percent = new_call(), new_call(), new_call()
    refund.caller = PhoneNumber("+4940777")
    for call, said in ((booking, "I'd like to BOOK a table."), (refund, "My refund, please."),
                       (percent, "Is it 50% off?")):
        any_repository.save_call(call)
        any_repository.add_turn(call.id, call.conversation.add_turn(Role.CALLER, said))

    def found(text: str) -> set:
        return {c.id for c in any_repository.list_calls(matching=CallFilter(text=text))}

    assert found("book a") == {booking.id}, "any case"
    assert found("40777") == {refund.id}, "the caller's number"
    assert found("50%") == {percent.id}
    assert found("%") == {percent.id}, "% is a character here, not 'anything'"
    assert found("_") == set()
    assert [c.id for c in any_repository.export_calls(matching=CallFilter(text="refund"))] == [refund.id]


def test_pages_of_calls_follow_each_other_without_gaps_or_repeats(any_repository):
    calls = []
    for n in range(7):
        call = new_call()
        call.created_at = datetime(2026, 3, 1, 12, 0, n // 2, tzinfo=timezone.utc)  # pairs share a timestamp
        any_repository.save_call(call)
        calls.append(call)
    pages, before = [], None
    while page := any_repository.list_calls(3, before=before):
        pages.append([c.id for c in page])
        before = page[-1].id
    assert [len(p) for p in pages] == [3, 3, 1]
    seen = [i for p in pages for i in p]
    assert sorted(i.value for i in seen) == sorted(c.id.value for c in calls), "each call exactly once"
    assert any_repository.list_calls(3, before=CallId.new()) == [], "an unknown call: no page"
    until = datetime(2026, 3, 1, 12, 0, 2, tzinfo=timezone.utc)
    assert {c.id for c in any_repository.list_calls(matching=CallFilter(until=until))} == {c.id for c in calls[:4]}


def test_calls_in_progress_are_the_ringing_and_active_ones_with_their_turns(any_repository):
    ringing, active, ended = new_call(), new_call(), new_call()
    active.start()
    ended.start()
    ended.end(EndReason.CALLER_HANGUP)
    for call in (ringing, active, ended):
        any_repository.save_call(call)
    any_repository.add_turn(active.id, active.conversation.add_turn(Role.ASSISTANT, "Hello."))
    in_progress = any_repository.calls_in_progress()
    assert [c.id for c in in_progress] == [ringing.id, active.id]
    assert [t.content for t in in_progress[1].conversation.turns] == ["Hello."]


def test_a_tool_answer_keeps_how_long_the_site_took(any_repository):
    call = new_call()
    any_repository.save_call(call)
    any_repository.add_turn(call.id, call.conversation.add_turn(Role.TOOL, "order_status: {}",
                                                                latency=TurnLatency(tool_ms=42.5)))
    [turn] = any_repository.get_call(call.id).conversation.turns
    assert turn.role is Role.TOOL and turn.latency == TurnLatency(tool_ms=42.5)


def test_instances_starting_together_on_a_new_postgresql_database_all_open_it(postgres):
    """Two serves started at once on a fresh database raced in CREATE TABLE/INDEX IF NOT EXISTS (one failed on
    pg_class's unique index); the schema is now set up under an advisory lock."""
    import threading

    import psycopg2

    admin = psycopg2.connect(postgres.url)
    admin.autocommit = True
    name = f"race_{CallId.new().value[:8]}"
    admin.cursor().execute(f"CREATE DATABASE {name}")
    admin.close()
    url = postgres.url.rsplit("/", 1)[0] + "/" + name
    barrier, outcomes = threading.Barrier(6), []

    def start() -> None:
        barrier.wait()
        try:
            open_database(url).close()
            outcomes.append("opened")
        except RepositoryError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes == ["opened"] * 6
