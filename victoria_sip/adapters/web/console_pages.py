"""The console's pages: server-rendered HTML over the same data as the API.

    GET /login   GET /live (calls in progress, as they happen)   GET /calls (History: filters, search, pages)
    GET /calls/{id} (a call: transcript and each reply's latency waterfall)   GET /agents   GET /system
    GET /users (admins)

Text from calls is escaped (a caller's words may hold anything). The two small
scripts and the style sheet are served from ``static/`` by Victoria itself (no
CDN: sites are air-gapped), and pages allow nothing else (Content-Security-Policy
in ``console_api``). The page's CSRF token sits in a meta tag for the scripts.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from html import escape
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from victoria_sip.application.call_views import call_summary, call_with_turns, mask_keypad
from victoria_sip.domain import Call, CallFilter, CallId, CallStatus, ConsoleRole

log = logging.getLogger("victoria.console")

STATIC = Path(__file__).parent / "static"

# each reply's steps, in milliseconds from the end of the caller's speech
WATERFALL = (("endpoint", "endpoint_ms"), ("STT final", "stt_final_ms"), ("LLM asked", "llm_request_ms"),
             ("LLM first token", "llm_first_token_ms"), ("first clause", "first_chunk_ms"),
             ("TTS first audio", "tts_first_audio_ms"), ("first audio out", "first_frame_out_ms"))
BAR_WIDTH = 420  # px for the slowest step of the slowest reply
PAGE_SIZE = 50
NAV = (("/live", "Live"), ("/calls", "History"), ("/agents", "Agents"), ("/system", "System"))


def add_console_pages(app: FastAPI, calls, site, users) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/live", 303)

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login_page() -> str:
        return _page("Log in", """
<form id="login" class="login">
  <label>User name <input name="username" autocomplete="username" required autofocus></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <button type="submit">Log in</button>
  <p id="login-error" class="error" role="alert"></p>
</form>""", scripts=("login.js",))

    @app.get("/live", response_class=HTMLResponse, include_in_schema=False)
    async def live_page(request: Request) -> str:
        body = """
<p id="live-state" class="muted">connecting…</p>
<p id="no-calls" class="muted" hidden>no calls in progress</p>
<div id="calls" class="live"></div>"""
        return _page("Live", body, request.state.session, scripts=("live.js",))

    @app.get("/calls", response_class=HTMLResponse, include_in_schema=False)
    async def history_page(request: Request, agent: str | None = None, status: CallStatus | str | None = None,
                           text: str | None = None, since: str | None = None, until: str | None = None,
                           before: str | None = None) -> str:
        status = status if isinstance(status, CallStatus) else None  # "any" is sent as ""
        matching = call_filter(agent, status, text, _when(since), _when(until))
        after = _call_id_or_none(before)
        found = await asyncio.to_thread(calls.list_calls, PAGE_SIZE + 1, matching=matching, before=after)
        page, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
        rows = "".join(_call_row(call_summary(c)) for c in page) or \
            '<tr><td colspan="8">no calls match</td></tr>'
        statuses = "".join(f'<option{" selected" if status is s else ""}>{s.value}</option>' for s in CallStatus)
        query = {k: v for k, v in (("agent", agent), ("status", status.value if status else None), ("text", text),
                                   ("since", since), ("until", until)) if v}
        older = (f'<a id="older" href="/calls?{escape(urlencode({**query, "before": page[-1].id.value}))}">'
                 'Older calls →</a>') if more else ""
        newest = '<a href="/calls?' + escape(urlencode(query)) + '">← Newest</a>' if after else ""
        exports = " ".join(f'<a href="/api/calls/export?{escape(urlencode({**query, "format": f}))}" download>'
                           f'{f.upper()}</a>' for f in ("csv", "jsonl"))
        body = f"""
<form class="filters" method="get" action="/calls">
  <label>Said or number <input name="text" type="search" value="{escape(text or "")}"></label>
  <label>Agent <input name="agent" value="{escape(agent or "")}"></label>
  <label>Status <select name="status"><option value="">any</option>{statuses}</select></label>
  <label>From (UTC) <input name="since" type="datetime-local" value="{escape(since or "")}"></label>
  <label>Until (UTC) <input name="until" type="datetime-local" value="{escape(until or "")}"></label>
  <button type="submit">Search</button>
</form>
<table class="calls"><thead><tr><th>Started (UTC)</th><th>Agent</th><th>Caller</th><th>Status</th><th>Reason</th>
<th>Seconds</th><th>Encrypted</th><th>Channel</th></tr></thead><tbody>{rows}</tbody></table>
<p class="pages">{newest} {older} <span class="export">Export these calls: {exports}</span></p>"""
        return _page("History", body, request.state.session)

    @app.get("/agents", response_class=HTMLResponse, include_in_schema=False)
    async def agents_page(request: Request) -> str:
        session = request.state.session
        admin = session.role is ConsoleRole.ADMIN
        cards = "".join(_agent_card(agent, admin) for agent in site.agents())
        return _page("Agents", (TEST_CALL_PANEL if admin else "") + cards, session,
                     scripts=("test_call.js",) if admin else ())

    @app.get("/users", response_class=HTMLResponse, include_in_schema=False)
    async def users_page(request: Request) -> HTMLResponse:
        session = request.state.session
        if session.role is not ConsoleRole.ADMIN:
            return HTMLResponse(_page("Users", "<p>Only admins manage users.</p>", session), status_code=403)
        rows = "".join(
            f'<tr><td>{escape(u.name)}</td><td>{u.role.value}</td><td>{u.created_at:%Y-%m-%d %H:%M}</td><td>'
            + ("(you)" if u.name == session.user else
               f'<button class="remove-user danger" data-user="{escape(u.name)}">Remove</button>') + "</td></tr>"
            for u in await asyncio.to_thread(users.list))
        body = f"""
<table class="calls users"><thead><tr><th>Name</th><th>Role</th><th>Added (UTC)</th><th></th></tr></thead>
<tbody>{rows}</tbody></table>
<h2>Add a user</h2>
<form id="add-user" class="filters">
  <label>Name <input name="username" required pattern="[A-Za-z0-9][A-Za-z0-9._@-]{{0,63}}" autocomplete="off"></label>
  <label>Password (10 characters or more) <input name="password" type="password" minlength="10" required
    autocomplete="new-password"></label>
  <label>Role <select name="role"><option>viewer</option><option>admin</option></select></label>
  <button type="submit">Add</button>
</form>
<p id="users-error" class="error" role="alert"></p>"""
        return HTMLResponse(_page("Users", body, session, scripts=("users.js",)))

    @app.get("/system", response_class=HTMLResponse, include_in_schema=False)
    async def system_page(request: Request) -> str:
        report = await asyncio.to_thread(site.system)
        return _page("System", _system_body(report), request.state.session)

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
    """The call and its turns as this user may see them; the opening logged (who read which transcript)."""
    log.info("console: %s opened call %s", session.user, call.id.value)
    return shown_to(session, call)


def shown_to(session, call: Call) -> dict:
    """The call and its turns as this user may see them: keypad digits for admins only."""
    shown = call_with_turns(call)
    return shown if session.role is ConsoleRole.ADMIN else mask_keypad(shown)


def call_filter(agent: str | None, status: CallStatus | None, text: str | None, since: datetime | None,
                until: datetime | None) -> CallFilter:
    """What the History page and the API were asked for: empty fields mean "any"."""
    return CallFilter(agent or None, status.value if status else None, since, until, (text or "").strip() or None)


def _when(value: str | None) -> datetime | None:
    """A datetime-local field's value (UTC); one that does not parse is ignored (the form shows it again)."""
    try:
        return datetime.fromisoformat(value).replace(tzinfo=None) if value else None
    except ValueError:
        return None


def _call_id_or_none(value: str | None) -> CallId | None:
    try:
        return CallId(value) if value else None
    except ValueError:
        return None


def _call_row(call: dict) -> str:
    seconds = f"{call['duration_seconds']:.1f}" if call["duration_seconds"] is not None else "–"
    encrypted = "yes" if call["signalling"] == "tls" and call["media"] == "srtp" else "no"
    return (f'<tr><td><a href="/calls/{escape(call["id"])}">{escape(call["created_at"][:19].replace("T", " "))}</a>'
            f'</td><td>{escape(call["agent"])}</td><td>{escape(call["caller"])}</td><td>{escape(call["status"])}</td>'
            f'<td>{escape(call["end_reason"] or "–")}</td><td>{seconds}</td><td>{encrypted}</td>'
            f'<td>{escape(call["channel"])}</td></tr>')


def _call_body(call: dict, admin: bool) -> str:
    facts = "".join(f"<dt>{label}</dt><dd>{escape(str(call[key]) if call[key] is not None else '–')}</dd>"
                    for label, key in (("Agent", "agent"), ("Caller", "caller"), ("Dialled", "callee"),
                                       ("Status", "status"), ("Reason", "end_reason"), ("Started", "started_at"),
                                       ("Seconds", "duration_seconds"), ("Signalling", "signalling"),
                                       ("Media", "media"), ("Channel", "channel"), ("Recording", "recording")))
    slowest = max((v for t in call["turns"] for _, key in WATERFALL if (v := (t["latency_ms"] or {}).get(key))),
                  default=1.0)
    turns = "".join(_turn(t, slowest) for t in call["turns"]) or "<p>no turns</p>"
    erase = (f'<button id="erase" data-call="{escape(call["id"])}" class="danger">Erase this call</button>'
             if admin and call["status"] not in ("ringing", "active") else "")
    # admins only: the recording holds what the masks hide (keypad tones); left the caller, right Victoria
    audio = (f'<h2>Recording</h2><audio controls preload="none" src="/api/calls/{escape(call["id"])}/recording">'
             '</audio>' if admin and call["recording"] else "")
    return (f'<dl class="facts">{facts}</dl>{erase}{audio}<h2>Transcript</h2>'
            f'<ol class="turns">{turns}</ol>')


def _turn(turn: dict, slowest: float) -> str:
    marker = ' <span class="tag">interrupted</span>' if turn["interrupted"] else ""
    latency = turn["latency_ms"] or {}
    if latency.get("tool_ms") is not None:  # a site tool's answer: how long the site took
        waterfall = f'<p class="took">answered in {latency["tool_ms"]:.0f} ms</p>'
    else:
        waterfall = _waterfall(latency, slowest) if latency else ""
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


TEST_CALL_PANEL = """
<section id="test-call" class="test-call" hidden aria-live="polite">
  <h2>Test call to <span id="test-agent"></span></h2>
  <p id="test-state">asking for the microphone…</p>
  <div class="keypad">""" + "".join(f'<button class="key" data-key="{k}">{k}</button>' for k in "123456789*0#") + """</div>
  <p>Reply heard: <span id="heard-seconds">0.0</span> s <button id="hang-up" class="danger">Hang up</button></p>
</section>"""


def _agent_card(agent: dict, admin: bool) -> str:
    def rows(pairs) -> str:
        return "".join(f"<dt>{escape(label)}</dt><dd>{escape(str(value)) if value not in (None, '') else '–'}</dd>"
                       for label, value in pairs)

    destinations = "; ".join(f"{d['name']} → {d['uri']}{' (attended)' if d['attended'] else ''}"
                             for d in agent["destinations"])
    keys = ", ".join(f"{key}: {action}" for key, action in agent["keypad"]["escape_keys"])
    facts = rows((("Answers", ", ".join(agent["answers"])), ("First message", agent["first_message"]),
                  ("Voice", agent["voice"]), ("LLM model", agent["llm_model"]), ("Put through to", destinations),
                  ("When busy or failing", agent["fallback_destination"]),
                  ("Tools", "; ".join(f"{t['name']} → {t['url']}" for t in agent["tools"])),
                  ("Keypad", f"ends with {agent['keypad']['terminator']}, "
                             f"{agent['keypad']['inter_digit_seconds']:g} s between digits; {keys or 'no keys'}")))
    call = (f'<button class="call-agent" data-agent="{escape(agent["name"])}">Call from the browser</button>'
            if admin else "")
    return (f'<section class="agent" id="agent-{escape(agent["name"])}"><h2>{escape(agent["name"])} {call}</h2>'
            f'<dl class="facts">{facts}</dl><details open><summary>Prompt</summary>'
            f'<pre class="prompt">{escape(agent["system_prompt"])}</pre></details></section>')


def _system_body(report: dict) -> str:
    def table(title: str, rows: list[tuple[str, str, bool | None]], empty: str = "none") -> str:
        cells = "".join(
            f'<tr><th>{escape(name)}</th><td class="{"" if ok is None else "ok" if ok else "bad"}">'
            f'{"" if ok is None else "✔ " if ok else "✘ "}{escape(detail)}</td></tr>' for name, detail, ok in rows)
        return f'<h2>{escape(title)}</h2><table class="system">{cells or f"<tr><td>{empty}</td></tr>"}</table>'

    ready = [(name, check["detail"], check["ok"]) for name, check in report["readiness"].items()]
    accounts = [(a["name"], f'{a["registrar"]}: {"registered" if a["registered"] else "not registered"}',
                 a["registered"]) for a in report["registrations"]]
    facts = [(label, str(value), None) for label, value in report["build"].items()]
    models = [(label, str(value), None) for label, value in report["models"].items()]
    return (table("Readiness", ready) + table("Registrations", accounts, "no [[sip.accounts]]: direct calls only") + table("Models", models) +
            table("This instance", facts))


def _page(title: str, body: str, session=None, scripts: tuple[str, ...] = ()) -> str:
    nav = ""
    if session is not None:
        current = ' aria-current="page"'
        shown = NAV + ((("/users", "Users"),) if session.role is ConsoleRole.ADMIN else ())
        links = " ".join(f'<a href="{href}"{current if label == title else ""}>{label}</a>' for href, label in shown)
        nav = (f'<nav>{links} <span class="me">{escape(session.user)} ({session.role.value})'
               f'</span> <button id="logout">Log out</button></nav>')
        scripts = ("session.js", *scripts)
    csrf = f'<meta name="csrf" content="{escape(session.csrf)}">' if session is not None else ""
    tags = "".join(f'<script type="module" src="/static/{name}"></script>' for name in scripts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · Victoria</title>
<meta name="viewport" content="width=device-width, initial-scale=1">{csrf}
<link rel="stylesheet" href="/static/console.css">{tags}</head>
<body><header><strong>Victoria</strong>{nav}</header><main><h1>{escape(title)}</h1>{body}</main></body></html>"""
