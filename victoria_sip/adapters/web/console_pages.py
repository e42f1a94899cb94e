"""The console's pages: server-rendered HTML over the same data as the API.

    GET /login   GET /calls (History)   GET /calls/{id} (a call: transcript and each reply's latency waterfall)

Text from calls is escaped (a caller's words may hold anything). The two small
scripts and the style sheet are served from ``static/`` by Victoria itself (no
CDN: sites are air-gapped), and pages allow nothing else (Content-Security-Policy
in ``console_api``). The page's CSRF token sits in a meta tag for the scripts.
"""

from __future__ import annotations

import asyncio
import logging
from html import escape
from pathlib import Path

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from victoria_sip.application.call_views import call_summary, call_with_turns, mask_keypad
from victoria_sip.domain import Call, CallId, CallStatus, ConsoleRole

log = logging.getLogger("victoria.console")

STATIC = Path(__file__).parent / "static"

# each reply's steps, in milliseconds from the end of the caller's speech
WATERFALL = (("endpoint", "endpoint_ms"), ("STT final", "stt_final_ms"), ("LLM asked", "llm_request_ms"),
             ("LLM first token", "llm_first_token_ms"), ("first clause", "first_chunk_ms"),
             ("TTS first audio", "tts_first_audio_ms"), ("first audio out", "first_frame_out_ms"))
BAR_WIDTH = 420  # px for the slowest step of the slowest reply


def add_console_pages(app: FastAPI, calls) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/calls", 303)

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login_page() -> str:
        return _page("Log in", """
<form id="login" class="login">
  <label>User name <input name="username" autocomplete="username" required autofocus></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <button type="submit">Log in</button>
  <p id="login-error" class="error" role="alert"></p>
</form>""", scripts=("login.js",))

    @app.get("/calls", response_class=HTMLResponse, include_in_schema=False)
    async def history_page(request: Request, agent: str | None = None, status: CallStatus | None = None,
                           limit: int = Query(100, ge=1, le=1000)) -> str:
        found = await asyncio.to_thread(calls.list_calls, limit, agent, status.value if status else None)
        rows = "".join(_call_row(call_summary(c)) for c in found) or \
            '<tr><td colspan="7">no calls yet</td></tr>'
        statuses = "".join(f'<option{" selected" if status is s else ""}>{s.value}</option>' for s in CallStatus)
        body = f"""
<form class="filters" method="get" action="/calls">
  <label>Agent <input name="agent" value="{escape(agent or "")}"></label>
  <label>Status <select name="status"><option value="">any</option>{statuses}</select></label>
  <button type="submit">Filter</button>
</form>
<table class="calls"><thead><tr><th>Started (UTC)</th><th>Agent</th><th>Caller</th><th>Status</th><th>Reason</th>
<th>Seconds</th><th>Encrypted</th></tr></thead><tbody>{rows}</tbody></table>"""
        return _page("History", body, request.state.session)

    @app.get("/calls/{call_id}", response_class=HTMLResponse, include_in_schema=False)
    async def call_page(call_id: str, request: Request) -> str:
        session = request.state.session
        shown = transcript_for(session, await find_call(calls, call_id))
        return _page(f"Call {call_id[:12]}", _call_body(shown, session.role is ConsoleRole.ADMIN), session,
                     scripts=("call.js",))


async def find_call(calls, call_id: str) -> Call:
    """The call with this id, read in a worker thread, or 404."""
    try:
        wanted = CallId(call_id)
    except ValueError:
        raise HTTPException(404, f"{call_id!r} is not a call id") from None
    call = await asyncio.to_thread(calls.get_call, wanted)
    if call is None:
        raise HTTPException(404, f"no call {call_id}")
    return call


def transcript_for(session, call: Call) -> dict:
    """The call and its turns as this user may see them (keypad digits for admins only); logged."""
    log.info("console: %s opened call %s", session.user, call.id.value)  # who read which transcript
    shown = call_with_turns(call)
    return shown if session.role is ConsoleRole.ADMIN else mask_keypad(shown)


def _call_row(call: dict) -> str:
    seconds = f"{call['duration_seconds']:.1f}" if call["duration_seconds"] is not None else "–"
    encrypted = "yes" if call["signalling"] == "tls" and call["media"] == "srtp" else "no"
    return (f'<tr><td><a href="/calls/{escape(call["id"])}">{escape(call["created_at"][:19].replace("T", " "))}</a>'
            f'</td><td>{escape(call["agent"])}</td><td>{escape(call["caller"])}</td><td>{escape(call["status"])}</td>'
            f'<td>{escape(call["end_reason"] or "–")}</td><td>{seconds}</td><td>{encrypted}</td></tr>')


def _call_body(call: dict, admin: bool) -> str:
    facts = "".join(f"<dt>{label}</dt><dd>{escape(str(call[key]) if call[key] is not None else '–')}</dd>"
                    for label, key in (("Agent", "agent"), ("Caller", "caller"), ("Dialled", "callee"),
                                       ("Status", "status"), ("Reason", "end_reason"), ("Started", "started_at"),
                                       ("Seconds", "duration_seconds"), ("Signalling", "signalling"),
                                       ("Media", "media"), ("Recording", "recording")))
    slowest = max((v for t in call["turns"] for v in (t["latency_ms"] or {}).values() if v), default=1.0)
    turns = "".join(_turn(t, slowest) for t in call["turns"]) or "<p>no turns</p>"
    erase = (f'<button id="erase" data-call="{escape(call["id"])}" class="danger">Erase this call</button>'
             if admin and call["status"] not in ("ringing", "active") else "")
    return f'<dl class="facts">{facts}</dl>{erase}<h2>Transcript</h2><ol class="turns">{turns}</ol>'


def _turn(turn: dict, slowest: float) -> str:
    marker = ' <span class="tag">interrupted</span>' if turn["interrupted"] else ""
    waterfall = _waterfall(turn["latency_ms"], slowest) if turn["latency_ms"] else ""
    return (f'<li class="turn {escape(turn["role"])}"><span class="who">{escape(turn["role"])}</span> '
            f'<time>{escape(turn["at"][11:19])}</time><p>{escape(turn["text"])}{marker}</p>{waterfall}</li>')


def _waterfall(latency: dict, slowest: float) -> str:
    """An SVG bar per step, from the step before it to this one (attributes, not inline styles: the CSP)."""
    steps = [(label, latency[key]) for label, key in WATERFALL if latency.get(key) is not None]
    rows, start = [], 0.0
    for row, (label, ms) in enumerate(steps):
        x, width = start / slowest * BAR_WIDTH, max(1.0, (ms - start) / slowest * BAR_WIDTH)
        y = row * 18
        rows.append(f'<text x="0" y="{y + 12}">{escape(label)}</text>'
                    f'<rect x="{130 + x:.1f}" y="{y + 2}" width="{width:.1f}" height="12" class="step"/>'
                    f'<text x="{136 + x + width:.1f}" y="{y + 12}">{ms:.0f} ms</text>')
        start = max(start, ms)
    height = len(steps) * 18 + 4
    return (f'<svg class="waterfall" role="img" aria-label="reply latency" width="{130 + BAR_WIDTH + 70}" '
            f'height="{height}">{"".join(rows)}</svg>')


def _page(title: str, body: str, session=None, scripts: tuple[str, ...] = ()) -> str:
    nav = ""
    if session is not None:
        nav = (f'<nav><a href="/calls">History</a> <span class="me">{escape(session.user)} ({session.role.value})'
               f'</span> <button id="logout">Log out</button></nav>')
        scripts = ("session.js", *scripts)
    csrf = f'<meta name="csrf" content="{escape(session.csrf)}">' if session is not None else ""
    tags = "".join(f'<script type="module" src="/static/{name}"></script>' for name in scripts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · Victoria</title>
<meta name="viewport" content="width=device-width, initial-scale=1">{csrf}
<link rel="stylesheet" href="/static/console.css">{tags}</head>
<body><header><strong>Victoria</strong>{nav}</header><main><h1>{escape(title)}</h1>{body}</main></body></html>"""
