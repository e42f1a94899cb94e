"""Calls and turns in SQL with peewee: SQLite (WAL) by default, PostgreSQL by URL.

Every write is its own transaction and is committed before the method returns,
so a crash never loses a turn the call had already moved past. peewee keeps one
connection per thread; the application funnels writes through one thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import peewee as pw
from playhouse.db_url import connect
from playhouse.migrate import SchemaMigrator, migrate

from victoria_sip.domain import (
    Call,
    CallFilter,
    CallId,
    CallStatus,
    Conversation,
    ConversationTurn,
    Encryption,
    EndReason,
    MediaStats,
    PhoneNumber,
    Role,
    TurnLatency,
)
from victoria_sip.errors import RepositoryError

OPEN_LOCKED_SECONDS = 10.0
SQLITE_PRAGMAS = {
    # first: pragmas run in this order, and two instances opening one new file at once both switch it to WAL;
    # without the timeout set, the second gets "database is locked" at start-up (seen in the dispatcher test)
    "busy_timeout": 5000,
    "journal_mode": "wal",  # readers (calls list) never block the writer
    "synchronous": "full",  # a committed turn survives power loss, not just a crash
    "foreign_keys": 1,
}

class _Model(pw.Model):
    """Rows are bound to a database by ``SqlCallRepository`` (one database per process)."""


class CallRow(_Model):
    id = pw.CharField(primary_key=True, max_length=64)
    agent = pw.CharField(max_length=64, index=True)
    caller = pw.CharField(max_length=64)
    callee = pw.CharField(max_length=64)
    status = pw.CharField(max_length=16, index=True)
    end_reason = pw.CharField(max_length=32, null=True)
    created_at = pw.DateTimeField(index=True)
    started_at = pw.DateTimeField(null=True)
    ended_at = pw.DateTimeField(null=True)
    frames_received = pw.IntegerField(default=0)
    frames_sent = pw.IntegerField(default=0)
    caller_peak_dbfs = pw.FloatField(null=True)
    recording = pw.CharField(max_length=512, null=True)
    signalling = pw.CharField(max_length=8, null=True)  # the INVITE's last hop: tls, tcp, udp
    media = pw.CharField(max_length=8, null=True)  # srtp, rtp
    instance = pw.CharField(max_length=128, null=True, index=True)  # which process took it (host:sip-port)
    channel = pw.CharField(max_length=8, null=True)  # sip, web (a browser test call); older rows: sip

    class Meta:
        table_name = "calls"


class TurnRow(_Model):
    call = pw.ForeignKeyField(CallRow, backref="turns", on_delete="CASCADE", column_name="call_id")
    index = pw.IntegerField()
    role = pw.CharField(max_length=16)
    text = pw.TextField()
    at = pw.DateTimeField()
    interrupted = pw.BooleanField(default=False)
    # milliseconds from the end of the caller's speech (assistant replies only)
    stt_final_ms = pw.FloatField(null=True)
    llm_first_token_ms = pw.FloatField(null=True)
    tts_first_audio_ms = pw.FloatField(null=True)
    first_frame_out_ms = pw.FloatField(null=True)
    endpoint_ms = pw.FloatField(null=True)
    llm_request_ms = pw.FloatField(null=True)
    first_chunk_ms = pw.FloatField(null=True)
    tool_ms = pw.FloatField(null=True)  # a site tool's answer: request sent -> answer read

    class Meta:
        table_name = "turns"
        indexes = ((("call", "index"), True),)


class ConsoleUserRow(_Model):
    """Who may log in to the console (``adapters/console_users.py``); passwords only as scrypt hashes."""

    name = pw.CharField(primary_key=True, max_length=64)
    role = pw.CharField(max_length=16)
    password_hash = pw.CharField(max_length=256)
    created_at = pw.DateTimeField()

    class Meta:
        table_name = "console_users"


_MODELS = [CallRow, TurnRow, ConsoleUserRow]


def open_database(url: str) -> pw.Database:
    """Open (creating if needed) the database at ``url`` and its tables. Instances starting together on one
    SQLite file may find it locked while another sets it up (switching it to WAL is not covered by the busy
    timeout): they try again for OPEN_LOCKED_SECONDS."""
    deadline = time.monotonic() + OPEN_LOCKED_SECONDS
    while True:
        try:
            return _open_database(url)
        except RepositoryError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _open_database(url: str) -> pw.Database:
    try:
        if url.startswith("sqlite:"):
            path = url.split("sqlite:///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            database = connect(url, pragmas=SQLITE_PRAGMAS)
        else:
            database = connect(url)
        with database.bind_ctx(_MODELS), _schema_lock(database):
            database.create_tables(_MODELS, safe=True)
            _add_missing_columns(database)
    except (pw.PeeweeException, OSError, RuntimeError, ValueError) as exc:
        raise RepositoryError(f"cannot open the call database {redact(url)}: {exc}") from exc
    return database


SCHEMA_LOCK = 0x76696374  # "vict": PostgreSQL advisory lock key for setting up the tables


@contextmanager
def _schema_lock(database: pw.Database) -> Iterator[None]:
    """PostgreSQL: one instance at a time sets up the tables. Two starting together on a new database both ran
    CREATE ... IF NOT EXISTS and one failed on pg_class's unique index (IF NOT EXISTS is not atomic there);
    DDL is transactional, so the lock and the tables go in one transaction. SQLite has its own file lock."""
    if not isinstance(database, pw.PostgresqlDatabase):
        yield
        return
    with database.atomic():
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        yield


def _add_missing_columns(database: pw.Database) -> None:
    """Bring a database made by an older version up to date (columns are only ever added)."""
    migrator = SchemaMigrator.from_database(database)
    for model in _MODELS:
        existing = {column.name for column in database.get_columns(model._meta.table_name)}
        missing = [field for field in model._meta.sorted_fields if field.column_name not in existing]
        if missing:
            migrate(*(migrator.add_column(model._meta.table_name, f.column_name, f) for f in missing))


def redact(url: str) -> str:
    """The URL without its password, for logs and errors."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        if ":" in credentials:
            return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
    return url


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def _naive_utc(value: datetime | None) -> datetime | None:
    # stored as naive UTC: portable between SQLite and PostgreSQL ``timestamp``
    return None if value is None else value.astimezone(timezone.utc).replace(tzinfo=None)


class SqlCallRepository:
    """The ``CallRepository`` port over peewee."""

    def __init__(self, database: pw.Database, instance: str | None = None) -> None:
        self._database = database
        self._instance = instance
        database.bind(_MODELS)

    @property
    def database(self) -> pw.Database:
        """The open database, for the console's users beside the calls."""
        return self._database

    def save_call(self, call: Call) -> None:
        row = {
            "agent": call.agent,
            "caller": call.caller.value,
            "callee": call.callee,
            "status": call.status.value,
            "end_reason": call.end_reason.value if call.end_reason else None,
            "created_at": _naive_utc(call.created_at),
            "started_at": _naive_utc(call.started_at),
            "ended_at": _naive_utc(call.ended_at),
            "frames_received": call.media.frames_received,
            "frames_sent": call.media.frames_sent,
            "caller_peak_dbfs": call.media.caller_peak_dbfs,
            "recording": call.recording,
            "signalling": call.encryption.signalling or None,
            "media": call.encryption.media or None,
            "instance": self._instance,
            "channel": call.channel,
        }
        with self._writing():
            CallRow.insert(id=call.id.value, **row).on_conflict(
                conflict_target=[CallRow.id], update=row
            ).execute()

    def add_turn(self, call_id: CallId, turn: ConversationTurn) -> None:
        with self._writing():
            TurnRow.create(
                call=call_id.value,
                index=turn.index,
                role=turn.role.value,
                text=turn.content,
                at=_naive_utc(turn.at),
                interrupted=turn.interrupted,
                **asdict(turn.latency or TurnLatency()),
            )

    def close_interrupted_calls(self) -> list[tuple[str, str]]:
        """Calls this instance left ringing or active when it last died (kill -9, power cut): mark them ended
        abnormally, at the last moment they are known to have been alive. Returns (call id, agent) of each."""
        open_statuses = (CallStatus.RINGING.value, CallStatus.ACTIVE.value)
        with self._writing():
            rows = list(CallRow.select().where(CallRow.status.in_(open_statuses), CallRow.instance == self._instance))
            for row in rows:
                last_turn = TurnRow.select(pw.fn.MAX(TurnRow.at)).where(TurnRow.call == row.id).scalar()
                row.ended_at = max(t for t in (last_turn, row.started_at, row.created_at) if t is not None)
                row.status, row.end_reason = CallStatus.ENDED.value, EndReason.ABNORMAL.value
                row.save()
        return [(row.id, row.agent) for row in rows]

    def get_call(self, call_id: CallId) -> Call | None:
        row = CallRow.get_or_none(CallRow.id == call_id.value)
        if row is None:
            return None
        turns = list(TurnRow.select().where(TurnRow.call == row.id).order_by(TurnRow.index))
        return _to_call(row, turns)

    def find_calls(self, prefix: str) -> list[Call]:
        """Calls whose id starts with ``prefix`` (people type the first few characters)."""
        rows = CallRow.select().where(CallRow.id.startswith(prefix)).limit(2)
        return [c for c in (self.get_call(CallId(r.id)) for r in rows) if c]

    def list_calls(self, limit: int = 50, agent: str | None = None, status: str | None = None,
                   since: datetime | None = None, matching: CallFilter | None = None,
                   before: CallId | None = None) -> list[Call]:
        """The newest calls first, without their turns; ``before``: the page after this call (keyset paging:
        calls arriving meanwhile do not shift the pages)."""
        query = _filtered(matching or CallFilter(agent, status, since))
        if before is not None:
            last = CallRow.get_or_none(CallRow.id == before.value)
            if last is None:
                return []
            query = query.where((CallRow.created_at < last.created_at) |
                                ((CallRow.created_at == last.created_at) & (CallRow.id < last.id)))
        rows = query.order_by(CallRow.created_at.desc(), CallRow.id.desc()).limit(limit)
        return [_to_call(row, []) for row in rows]

    def export_calls(self, agent: str | None = None, status: str | None = None, since: datetime | None = None,
                     batch: int = 500, matching: CallFilter | None = None) -> Iterator[Call]:
        """Every matching call with its turns, oldest first, read ``batch`` calls at a time."""
        wanted = matching or CallFilter(agent, status, since)
        last: tuple[datetime, str] | None = None
        while True:
            query = _filtered(wanted)
            if last is not None:  # keyset paging: stable while calls are being added
                query = query.where((CallRow.created_at > last[0]) | ((CallRow.created_at == last[0]) & (CallRow.id > last[1])))
            rows = list(query.order_by(CallRow.created_at, CallRow.id).limit(batch))
            if not rows:
                return
            turns: dict[str, list[TurnRow]] = {}
            for turn in TurnRow.select().where(TurnRow.call.in_([r.id for r in rows])).order_by(TurnRow.index):
                turns.setdefault(turn.call_id, []).append(turn)
            for row in rows:
                yield _to_call(row, turns.get(row.id, []))
            last = (rows[-1].created_at, rows[-1].id)

    def calls_in_progress(self) -> list[Call]:
        """Ringing and active calls of every instance sharing this database, oldest first, with their turns."""
        open_statuses = (CallStatus.RINGING.value, CallStatus.ACTIVE.value)
        rows = CallRow.select(CallRow.id).where(CallRow.status.in_(open_statuses)).order_by(CallRow.created_at)
        return [c for c in (self.get_call(CallId(r.id)) for r in rows) if c]

    def calls_from(self, caller: str) -> list[Call]:
        """Every call from this caller, with its turns, oldest first."""
        rows = CallRow.select(CallRow.id).where(CallRow.caller == caller).order_by(CallRow.created_at)
        return [c for c in (self.get_call(CallId(r.id)) for r in rows) if c]

    def calls_ended_before(self, cutoff: datetime, limit: int) -> list[Call]:
        """Up to ``limit`` calls over before ``cutoff`` (ended, or refused or failed when they came), oldest
        first, with their turns."""
        final = [s.value for s in CallStatus if s.is_final]
        when = pw.fn.COALESCE(CallRow.ended_at, CallRow.created_at)
        rows = (CallRow.select(CallRow.id).where(CallRow.status.in_(final), when < _naive_utc(cutoff))
                .order_by(when).limit(limit))
        return [c for c in (self.get_call(CallId(r.id)) for r in rows) if c]

    def delete_calls(self, call_ids: Sequence[CallId]) -> int:
        """Delete these calls and their turns in one transaction; returns how many calls were deleted."""
        ids = [c.value for c in call_ids]
        with self._writing():
            TurnRow.delete().where(TurnRow.call.in_(ids)).execute()  # not left to ON DELETE: older files lack it
            return CallRow.delete().where(CallRow.id.in_(ids)).execute()

    def check_writable(self) -> str:
        """Take the write lock and let it go, on a connection of this thread's own (closed after).
        Raises ``RepositoryError`` when the database cannot be written."""
        try:
            with self._database.connection_context():
                with self._database.atomic():
                    TurnRow.update(index=TurnRow.index).where(TurnRow.id == -1).execute()  # touches no row
        except pw.PeeweeException as exc:
            raise RepositoryError(f"cannot write to the call database: {exc}") from exc
        return "writable"

    def close(self) -> None:
        self._database.close()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            with self._database.atomic():
                yield
        except pw.PeeweeException as exc:
            raise RepositoryError(f"cannot write to the call database: {exc}") from exc


def _filtered(matching: CallFilter):
    query = CallRow.select()
    if matching.agent:
        query = query.where(CallRow.agent == matching.agent)
    if matching.status:
        query = query.where(CallRow.status == matching.status)
    if matching.since:
        query = query.where(CallRow.created_at >= _naive_utc(matching.since))
    if matching.until:
        query = query.where(CallRow.created_at < _naive_utc(matching.until))
    if matching.text:
        # LIKE on SQLite, ILIKE on PostgreSQL: case-insensitive either way; wildcards taken literally
        pattern = matching.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        said = TurnRow.select(TurnRow.call).where(_contains(TurnRow.text, pattern))
        query = query.where(_contains(CallRow.caller, pattern) | _contains(CallRow.callee, pattern) |
                            CallRow.id.in_(said))
    return query


def _contains(field: pw.Field, pattern: str) -> pw.Expression:
    return pw.Expression(field, pw.OP.ILIKE, pw.NodeList((f"%{pattern}%", pw.SQL("ESCAPE '\\'"))))


def _latency(row: TurnRow) -> TurnLatency | None:
    latency = TurnLatency(**{name: getattr(row, name) for name in TurnLatency.__dataclass_fields__})
    return None if latency == TurnLatency() else latency


def _to_call(row: CallRow, turns: list[TurnRow]) -> Call:
    conversation = Conversation(
        [
            ConversationTurn(index=t.index, role=Role(t.role), content=t.text, at=_utc(t.at), interrupted=t.interrupted,
                             latency=_latency(t))
            for t in turns
        ]
    )
    return Call(
        id=CallId(row.id),
        agent=row.agent,
        caller=PhoneNumber(row.caller),
        callee=row.callee,
        status=CallStatus(row.status),
        conversation=conversation,
        created_at=_utc(row.created_at),
        started_at=_utc(row.started_at),
        ended_at=_utc(row.ended_at),
        end_reason=EndReason(row.end_reason) if row.end_reason else None,
        media=MediaStats(row.frames_received, row.frames_sent, row.caller_peak_dbfs),
        recording=row.recording,
        encryption=Encryption(row.signalling or "", row.media or ""),
        channel=row.channel or "sip",
    )
