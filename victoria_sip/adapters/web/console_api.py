"""The console's HTTP API (FastAPI): log in, read calls; every other ``/api/`` path needs a session.

    app = console_app(users, calls, ConsoleSessions(), LoginGuard())

    POST /api/login   {"username", "password"}  ->  the session cookie (HttpOnly, SameSite=Strict) and a CSRF token
    POST /api/logout  GET /api/me  GET /api/calls (?text=&since=&until=&before=)  GET /api/calls/{id}
    GET /api/calls/export?format=csv|jsonl   GET /api/live (server-sent events: calls in progress, as they change)
    GET /api/agents  GET /api/system                                        (OpenAPI: /api/docs)
    WebSocket /api/test-call?agent=NAME&csrf=TOKEN   admins: a call from the browser (browser_call.py)
    admins: GET /api/users, POST /api/users {"username", "password", "role"}, DELETE /api/users/{name}
    pages: /login, /live, /calls, /calls/{id}, /agents, /system (console_pages.py); without a session a page
    redirects to /login
    admins only: DELETE /api/calls/{id}, DELETE /api/calls?caller=X (erasure), GET /api/calls/{id}/turns/{n}
    (a keypad turn unmasked), GET /api/calls/{id}/recording (the stereo WAV: it holds what masks hide)

The session check is one middleware in front of every path under ``/api/``
(the OpenAPI pages included), not a dependency on each route, so a route added
later cannot slip by without it. State-changing requests also need the
session's CSRF token in ``X-CSRF-Token``: a page of another site can make the
browser send the cookie (SameSite aside), never the header. Login takes JSON
only, which a cross-site form cannot send.

Database reads run in worker threads: this app shares the event loop with the
calls' media ticker, which a slow query must never hold up.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from urllib.parse import quote
from typing import Literal, Protocol

from fastapi import FastAPI, HTTPException, Query, Request, Response, WebSocket
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, StreamingResponse
from pydantic import BaseModel

from victoria_sip.adapters.web.browser_call import BrowserCallLeg, run_browser_call
from victoria_sip.adapters.web.console_pages import (add_console_pages, call_filter, find_call, shown_to,
                                                     transcript_for)
from victoria_sip.application.call_events import CallEvents, Overflowed
from victoria_sip.application.call_export import export_lines
from victoria_sip.application.call_views import call_summary, call_with_turns, mask_call
from victoria_sip.application.console_login import ConsoleSessions, LoginGuard, LoginRefused, UserStore, login
from victoria_sip.application.erasure import CallEraser, CallInProgress, Erasure
from victoria_sip.adapters.console_users import UserExists
from victoria_sip.domain import Call, CallFilter, CallId, CallStatus, ConsoleRole, ConsoleUser
from victoria_sip.domain.console_user import hash_password, password_problem
from victoria_sip.domain.ports import CallHandler

log = logging.getLogger("victoria.console")

SESSION_COOKIE = "victoria_session"
CSRF_HEADER = "X-CSRF-Token"
OPEN_PATHS = frozenset({"/api/login", "/login"})
STATIC_PREFIX = "/static/"  # the style sheet and scripts: nothing about calls
SECURITY_HEADERS = {
    # only what Victoria serves: no inline script, no other origin, not framed (clickjacking)
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KEEPALIVE_SECONDS = 15.0  # a comment down an idle event stream: proxies and browsers keep it open


class CallReader(Protocol):
    def list_calls(self, limit: int = 50, *, matching: CallFilter | None = None,
                   before: CallId | None = None) -> list[Call]: ...
    def export_calls(self, *, matching: CallFilter | None = None) -> Iterator[Call]: ...
    def calls_in_progress(self) -> list[Call]: ...
    def get_call(self, call_id: CallId) -> Call | None: ...


class Site(Protocol):
    """What the Agents and System pages show of the running Victoria, and who answers its calls."""

    service: CallHandler | None  # None while Victoria starts: no test calls yet

    def agents(self) -> list[dict]: ...
    def system(self) -> dict: ...


class Credentials(BaseModel):
    username: str
    password: str


class NewUser(Credentials):
    role: ConsoleRole = ConsoleRole.VIEWER


class UserDirectory(UserStore, Protocol):
    def list(self) -> list[ConsoleUser]: ...
    def add(self, user: ConsoleUser) -> None: ...  # UserExists when the name is taken
    def remove(self, name: str) -> bool: ...


def console_app(users: UserDirectory, calls: CallReader, sessions: ConsoleSessions, guard: LoginGuard,
                eraser: CallEraser, events: CallEvents, site: Site,
                login_refused: Callable[[str], None] = lambda reason: None, secure_cookies: bool = False) -> FastAPI:
    """``events``: calls as they change, for the Live page; ``login_refused(reason)``: counts a refused login (the
    metric); ``secure_cookies``: served over TLS."""
    app = FastAPI(title="Victoria SIP console", docs_url="/api/docs", openapi_url="/api/openapi.json",
                  redoc_url=None, swagger_ui_oauth2_redirect_url=None)

    @app.middleware("http")
    async def require_session(request: Request, call_next):
        path = request.url.path
        if not is_open(path):  # everything else, pages included
            session = await asyncio.to_thread(sessions.get, request.cookies.get(SESSION_COOKIE), users)
            if session is None:
                if path.startswith("/api/"):
                    return JSONResponse({"error": "log in first (POST /api/login)"}, status_code=401)
                return RedirectResponse(f"/login?next={quote(path)}", 303)
            if request.method not in SAFE_METHODS and \
                    not hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), session.csrf):
                return JSONResponse({"error": f"missing or wrong {CSRF_HEADER} header"}, status_code=403)
            request.state.session = session
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.post("/api/login")
    async def log_in(credentials: Credentials, request: Request, response: Response) -> dict:
        outcome = await login(users, guard, sessions, credentials.username, credentials.password)
        if isinstance(outcome, LoginRefused):
            login_refused(outcome.reason)
            client = request.client.host if request.client else "?"
            log.warning("console: login refused for %r from %s (%s)%s", credentials.username, client, outcome.reason,
                        "; locked for a while" if outcome.locked_now else "")
            raise HTTPException(401, "wrong user name or password, or too many failures: wait a few minutes")
        response.set_cookie(SESSION_COOKIE, outcome.token, httponly=True, samesite="strict", secure=secure_cookies,
                            path="/")
        log.info("console: %s logged in", outcome.user)
        return {"user": outcome.user, "role": outcome.role.value, "csrf": outcome.csrf}

    @app.post("/api/logout", status_code=204)
    async def log_out(request: Request, response: Response) -> None:
        sessions.close(request.state.session.token)
        response.delete_cookie(SESSION_COOKIE, path="/")

    @app.get("/api/me")
    async def me(request: Request) -> dict:
        session = request.state.session
        return {"user": session.user, "role": session.role.value, "csrf": session.csrf}

    @app.get("/api/calls")
    async def list_calls(limit: int = Query(50, ge=1, le=1000), agent: str | None = None,
                         status: CallStatus | None = None, text: str | None = None, since: datetime | None = None,
                         until: datetime | None = None, before: str | None = None) -> list[dict]:
        """Newest first; ``before``: the last call of the previous page."""
        matching = call_filter(agent, status, text, since, until)
        found = await asyncio.to_thread(calls.list_calls, limit, matching=matching, before=page_after(before))
        return [call_summary(call) for call in found]

    @app.get("/api/calls/export")
    async def export(request: Request, format: Literal["csv", "jsonl"] = "jsonl", agent: str | None = None,
                     status: CallStatus | None = None, text: str | None = None, since: datetime | None = None,
                     until: datetime | None = None) -> StreamingResponse:
        """Every matching call with its transcript, oldest first, as ``calls export`` writes it."""
        session = request.state.session
        matching = call_filter(agent, status, text, since, until)
        log.info("console: %s exported calls (%s)", session.user, matching)
        found = calls.export_calls(matching=matching)  # read as it is sent, in a worker thread (a sync iterator)
        if session.role is not ConsoleRole.ADMIN:
            found = (mask_call(call) for call in found)
        media = "text/csv" if format == "csv" else "application/x-ndjson"
        name = f"victoria-calls-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.{format}"
        return StreamingResponse(export_lines(found, format), media_type=media,
                                 headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.get("/api/live")
    async def live(request: Request) -> StreamingResponse:
        """Server-sent events: ``calls`` (every call in progress, on connecting), then ``call`` (one call, as a
        turn is committed or its state changes, on any instance sharing the database)."""
        session = request.state.session
        log.info("console: %s watches the calls in progress", session.user)
        return StreamingResponse(live_events(session), media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})

    async def live_events(session) -> AsyncIterator[str]:
        with events.subscribe() as watching:  # before the snapshot: nothing falls between the two
            in_progress = await asyncio.to_thread(calls.calls_in_progress)
            yield server_event("calls", [shown_to(session, call) for call in in_progress])
            while True:
                try:
                    event = await watching.next(KEEPALIVE_SECONDS)
                except Overflowed:
                    return  # the page reconnects and starts from the snapshot again
                if event is None:
                    yield ": still here\n\n"
                    continue
                call = await asyncio.to_thread(calls.get_call, CallId(event.call_id))
                if call is not None:
                    yield server_event("call", shown_to(session, call))

    @app.websocket("/api/test-call")
    async def test_call(websocket: WebSocket, agent: str = "", csrf: str = "") -> None:
        """An admin calls an agent from the browser: microphone audio in, the voice out (browser_call.py).
        The HTTP middleware does not see WebSockets: the session, role, CSRF token and origin are checked here,
        and anything wrong is refused before the upgrade (HTTP 403)."""
        session = await asyncio.to_thread(sessions.get, websocket.cookies.get(SESSION_COOKIE), users)
        refusal = test_call_refusal(websocket, session, csrf)
        if refusal is not None:
            log.warning("console: test call refused (%s) from %s", refusal,
                        websocket.client.host if websocket.client else "?")
            await websocket.close(code=1008)
            return
        await websocket.accept()
        handler = site.service
        if handler is None or agent not in {a["name"] for a in site.agents()}:
            detail = "Victoria is still starting" if handler is None else f"no agent {agent!r}"
            await websocket.send_json({"type": "ended", "reason": detail})
            await websocket.close(code=1008 if handler else 1013)
            return
        leg = BrowserCallLeg(websocket, session.user, asyncio.get_running_loop())
        log.info("console: %s calls agent %r from the browser (call %s)", session.user, agent, leg.call_id)
        await run_browser_call(leg, handler, agent)
        with contextlib.suppress(Exception):  # the page may have closed it already
            await websocket.close()

    @app.get("/api/users")
    async def list_users(request: Request) -> list[dict]:
        admin(request)
        found = await asyncio.to_thread(users.list)
        return [{"name": u.name, "role": u.role.value, "created_at": u.created_at.isoformat()} for u in found]

    @app.post("/api/users", status_code=201)
    async def add_user(new: NewUser, request: Request) -> dict:
        """As ``victoria-sip users add``: at least 10 characters, stored as a salted scrypt hash."""
        user = admin(request)
        problem = password_problem(new.password)
        if problem is not None:
            raise HTTPException(422, problem)
        try:
            added = ConsoleUser.new(new.username, new.role, await asyncio.to_thread(hash_password, new.password))
            await asyncio.to_thread(users.add, added)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        except UserExists as exc:
            raise HTTPException(409, str(exc)) from None
        log.warning("console: %s added user %r (%s)", user, added.name, added.role.value)
        return {"name": added.name, "role": added.role.value}

    @app.delete("/api/users/{name}", status_code=204)
    async def remove_user(name: str, request: Request) -> None:
        """Their sessions end at once, on every instance (each request looks the user up)."""
        user = admin(request)
        if name == user:
            raise HTTPException(409, "you cannot remove yourself: another admin can")
        if not await asyncio.to_thread(users.remove, name):
            raise HTTPException(404, f"no user {name!r}")
        log.warning("console: %s removed user %r", user, name)

    @app.get("/api/agents")
    async def agents() -> list[dict]:
        return site.agents()

    @app.get("/api/system")
    async def system() -> dict:
        return await asyncio.to_thread(site.system)

    @app.get("/api/calls/{call_id}")
    async def show_call(call_id: str, request: Request) -> dict:
        return transcript_for(request.state.session, await find_call(calls, call_id))

    @app.get("/api/calls/{call_id}/turns/{index}")
    async def reveal_turn(call_id: str, index: int, request: Request) -> dict:
        """One turn as it was said, keypad digits included (admins; logged)."""
        user = admin(request)
        call = await find_call(calls, call_id)
        turns = [t for t in call_with_turns(call)["turns"] if t["index"] == index]
        if not turns:
            raise HTTPException(404, f"call {call_id} has no turn {index}")
        log.warning("console: %s revealed turn %d of call %s", user, index, call_id)
        return turns[0]

    @app.get("/api/calls/{call_id}/recording")
    async def recording(call_id: str, request: Request) -> FileResponse:
        """The call's stereo WAV (left: the caller, right: Victoria). Admins only: keypad tones are in it."""
        user = admin(request)
        call = await find_call(calls, call_id)
        path = Path(call.recording) if call.recording else None
        if path is None or not await asyncio.to_thread(path.is_file):
            raise HTTPException(404, f"call {call_id} has no recording (not recorded, or deleted by retention)")
        log.warning("console: %s listened to the recording of call %s", user, call_id)
        return FileResponse(path, media_type="audio/wav", filename=f"{call_id}.wav")

    @app.delete("/api/calls/{call_id}")
    async def erase_call(call_id: str, request: Request) -> dict:
        user = admin(request)
        call = await find_call(calls, call_id)
        return await erase(user, partial(eraser.erase, [call.id]))

    @app.delete("/api/calls")
    async def erase_callers_calls(request: Request, caller: str = Query(min_length=1)) -> dict:
        """Every ended call from ``caller``, as the calls list shows it."""
        return await erase(admin(request), partial(eraser.erase_caller, caller))

    async def erase(user: str, erasing: Callable[[], Erasure]) -> dict:
        try:
            erased = await asyncio.to_thread(erasing)
        except CallInProgress as exc:
            raise HTTPException(409, str(exc)) from None
        log.warning("console: %s erased %s: %s", user, erased.describe(), ", ".join(erased.calls) or "none")
        return {"erased": erased.calls, "turns": erased.turns, "recordings_deleted": erased.recordings_deleted,
                "recordings_left": erased.recordings_left}

    add_console_pages(app, calls, site, users)
    return app


def test_call_refusal(websocket: WebSocket, session, csrf: str) -> str | None:
    """Why this WebSocket may not carry a test call; None when it may."""
    if session is None:
        return "no session"
    if session.role is not ConsoleRole.ADMIN:
        return f"{session.user} is not an admin"
    if not hmac.compare_digest(csrf, session.csrf):
        return "missing or wrong CSRF token"
    origin, host = websocket.headers.get("origin", ""), websocket.headers.get("host", "")
    if not host or origin not in (f"http://{host}", f"https://{host}"):  # another site's page opening it
        return f"origin {origin or 'missing'} is not this console"
    return None


def page_after(before: str | None) -> CallId | None:
    try:
        return CallId(before) if before else None
    except ValueError:
        raise HTTPException(422, f"before: {before!r} is not a call id") from None


def server_event(name: str, data) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def is_open(path: str) -> bool:
    """Reachable without a session: logging in, and the static assets the login page needs."""
    return path in OPEN_PATHS or path.startswith(STATIC_PREFIX)


def admin(request: Request) -> str:
    """The admin making this request, or 403."""
    session = request.state.session
    if session.role is not ConsoleRole.ADMIN:
        raise HTTPException(403, "admins only")
    return session.user
