"""Calls as JSON Lines (one call with its turns a line) or CSV (one row a turn), for ``calls export`` and the
console's export link: the same columns wherever they come from.

    for line in export_lines(calls, "csv"): output.write(line)
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from victoria_sip.application.call_views import call_with_turns
from victoria_sip.domain import Call, TurnLatency

FORMATS = ("jsonl", "csv")
CSV_COLUMNS = ("call_id", "agent", "caller", "callee", "status", "end_reason", "call_started_at",
               "duration_seconds", "turn", "role", "at", "text", "interrupted", "stt_final_ms",
               "llm_first_token_ms", "tts_first_audio_ms", "first_frame_out_ms", "signalling", "media")


def export_lines(calls: Iterable[Call], fmt: str) -> Iterator[str]:
    """Each call's text as it is read (an export may hold every call ever made: never all in memory)."""
    if fmt == "jsonl":
        for call in calls:
            yield json.dumps(call_with_turns(call)) + "\n"
        return
    if fmt != "csv":
        raise ValueError(f"export format {fmt!r}: one of {', '.join(FORMATS)}")
    yield _csv_line(CSV_COLUMNS)
    for call in calls:
        yield "".join(_csv_line(_turn_row(call, turn)) for turn in call.conversation.turns)


def _turn_row(call: Call, turn) -> list:
    latency = turn.latency or TurnLatency()
    return [call.id.value, call.agent, call.caller.value, call.callee, call.status.value,
            call.end_reason.value if call.end_reason else "",
            call.started_at.isoformat() if call.started_at else "", call.duration_seconds or "",
            turn.index, turn.role.value, turn.at.isoformat(), turn.content, turn.interrupted,
            latency.stt_final_ms or "", latency.llm_first_token_ms or "", latency.tts_first_audio_ms or "",
            latency.first_frame_out_ms or "", call.encryption.signalling, call.encryption.media]


def _csv_line(values) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()
