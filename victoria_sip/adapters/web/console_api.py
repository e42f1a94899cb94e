"""The console's HTTP API (FastAPI): log in, read calls; every other ``/api/`` path needs a session.

    app = console_app(users, calls, ConsoleSessions(), LoginGuard())

    POST /api/login   {"username", "password"}  ->  the session cookie (HttpOnly, SameSite=Strict) and a CSRF token
    POST /api/logout  GET /api/me  GET /api/calls  GET /api/calls/{id}       (OpenAPI: /api/docs)
    pages: /login, /calls, /calls/{id} (console_pages.py); without a session a page redirects to /login
    admins only: DELETE /api/calls/{id}, DELETE /api/calls?caller=X (erasure), GET /api/calls/{id}/turns/{n}
    (a keypad turn unmasked)

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
import hmac
import logging
from collections.abc import Callable
from functools import partial
from urllib.parse import quote
from typing import Protocol

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel

from victoria_sip.adapters.web.console_pages import add_console_pages, find_call, transcript_for
from victoria_sip.application.call_views import call_summary, call_with_turns
from victoria_sip.application.console_login import ConsoleSessions, LoginGuard, LoginRefused, UserStore, login
from victoria_sip.application.erasure import CallEraser, CallInProgress, Erasure
from victoria_sip.domain import Call, CallId, CallStatus, ConsoleRole

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


class CallReader(Protocol):
    def list_calls(self, limit: int = 50, agent: str | None = None, status: str | None = None) -> list[Call]: ...
    def get_call(self, call_id: CallId) -> Call | None: ...


class Credentials(BaseModel):
    username: str
    password: str


def console_app(users: UserStore, calls: CallReader, sessions: ConsoleSessions, guard: LoginGuard,
                eraser: CallEraser, login_refused: Callable[[str], None] = lambda reason: None,
                secure_cookies: bool = False) -> FastAPI:
    """``login_refused(reason)``: counts a refused login (the metric); ``secure_cookies``: served over TLS."""
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
                         status: CallStatus | None = None) -> list[dict]:
        found = await asyncio.to_thread(calls.list_calls, limit, agent, status.value if status else None)
        return [call_summary(call) for call in found]

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

    add_console_pages(app, calls)
    return app


def is_open(path: str) -> bool:
    """Reachable without a session: logging in, and the static assets the login page needs."""
    return path in OPEN_PATHS or path.startswith(STATIC_PREFIX)


def admin(request: Request) -> str:
    """The admin making this request, or 403."""
    session = request.state.session
    if session.role is not ConsoleRole.ADMIN:
        raise HTTPException(403, "admins only")
    return session.user
