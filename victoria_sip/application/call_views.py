"""Calls as plain data (JSON-ready dicts): what `calls list/show --json` print and the console's API returns."""

from __future__ import annotations

import copy
from dataclasses import asdict, replace

from victoria_sip.domain import Call, Conversation

KEYPAD_PREFIX = "[keypad] "  # keypad turns may be PINs: masked for viewers


def call_summary(call: Call) -> dict:
    return {
        "id": call.id.value,
        "agent": call.agent,
        "caller": call.caller.value,
        "callee": call.callee,
        "status": call.status.value,
        "end_reason": call.end_reason.value if call.end_reason else None,
        "created_at": call.created_at.isoformat(),
        "started_at": call.started_at.isoformat() if call.started_at else None,
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "duration_seconds": call.duration_seconds,
        "frames_received": call.media.frames_received,
        "frames_sent": call.media.frames_sent,
        "caller_peak_dbfs": call.media.caller_peak_dbfs,
        "recording": call.recording,
        "signalling": call.encryption.signalling or None,  # the INVITE's last hop: tls, tcp, udp
        "media": call.encryption.media or None,  # srtp, rtp
        "channel": call.channel,  # sip, or web: a test call from the console
    }


def call_with_turns(call: Call) -> dict:
    summary = call_summary(call)
    summary["turns"] = [
        {"index": t.index, "role": t.role.value, "text": t.content, "at": t.at.isoformat(),
         "interrupted": t.interrupted, "latency_ms": asdict(t.latency) if t.latency else None}
        for t in call.conversation.turns
    ]
    return summary


def mask_keypad(shown: dict) -> dict:
    """``call_with_turns`` output with every keypad turn's digits hidden (for viewers)."""
    for turn in shown["turns"]:
        turn["text"] = masked(turn["text"])
    return shown


def mask_call(call: Call) -> Call:
    """A copy of the call with every keypad turn's digits hidden (a viewer's export)."""
    shown = copy.copy(call)
    shown.conversation = Conversation([replace(t, content=masked(t.content)) for t in call.conversation.turns])
    return shown


def masked(text: str) -> str:
    if not text.startswith(KEYPAD_PREFIX):
        return text
    return KEYPAD_PREFIX + "•" * (len(text) - len(KEYPAD_PREFIX))
