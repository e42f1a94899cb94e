"""Logging in to the console: passwords checked, failures slowed and locked out, sessions kept.

    guard = LoginGuard()
    sessions = ConsoleSessions()
    outcome = await login(users, guard, sessions, name, password)     # a Session, or why not
    sessions.get(token, users)                                         # None once expired or the user removed

A wrong password costs the asker ``FAILURE_DELAY_SECONDS`` before the answer,
whoever they are; after ``max_failures`` in a row an account is locked for
``lock_seconds`` (even the right password is refused meanwhile, with the same
answer, so a guesser learns nothing). Failures of names that do not exist are
counted the same way, and hashing runs for them too: timing does not tell which
names exist. Sessions live in the instance that made them (a console belongs to
one instance); each request checks the user is still in the shared database,
so ``users remove`` ends their sessions everywhere at once.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from victoria_sip.domain import ConsoleRole, ConsoleUser
from victoria_sip.domain.console_user import hash_password, verify_password

FAILURE_DELAY_SECONDS = 1.0
MAX_FAILURES = 5
LOCK_SECONDS = 300.0
IDLE_SECONDS = 8 * 3600.0  # a working day without a click
MAX_SESSION_SECONDS = 24 * 3600.0
_NOBODY = hash_password("no such user: hashed only so that unknown names cost as much as known ones")


class UserStore(Protocol):
    def get(self, name: str) -> ConsoleUser | None: ...


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


class LoginGuard:
    def __init__(self, max_failures: int = MAX_FAILURES, lock_seconds: float = LOCK_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.lock_seconds = lock_seconds
        self._clock = clock
        self._failures: dict[str, _Failures] = {}

    def locked(self, name: str) -> bool:
        return self._failures.get(name, _Failures()).locked_until > self._clock()

    def failed(self, name: str) -> bool:
        """Count a failure; True if it locked the account."""
        failures = self._failures.setdefault(name, _Failures())
        failures.count += 1
        if failures.count >= self.max_failures:
            failures.count = 0
            failures.locked_until = self._clock() + self.lock_seconds
            return True
        return False

    def succeeded(self, name: str) -> None:
        self._failures.pop(name, None)


@dataclass
class Session:
    token: str  # the cookie's value
    csrf: str  # sent back in a header on every state-changing request
    user: str
    role: ConsoleRole
    started: float
    seen: float = field(default=0.0)


class ConsoleSessions:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def open(self, user: ConsoleUser) -> Session:
        now = self._clock()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), user.name, user.role, now, now)
        self._sessions[session.token] = session
        return session

    def get(self, token: str | None, users: UserStore) -> Session | None:
        """The live session for ``token``, with the user's current role; None if expired, closed or the user
        is gone."""
        session = self._sessions.get(token or "")
        if session is None:
            return None
        now = self._clock()
        user = users.get(session.user)
        if user is None or now - session.seen > IDLE_SECONDS or now - session.started > MAX_SESSION_SECONDS:
            self._sessions.pop(session.token, None)
            return None
        session.seen, session.role = now, user.role  # a role changed by an admin applies at once
        return session

    def close(self, token: str | None) -> None:
        self._sessions.pop(token or "", None)


@dataclass(frozen=True)
class LoginRefused:
    reason: str  # for the log and the metric: "wrong-password", "unknown-user", "locked"
    locked_now: bool = False


async def login(users: UserStore, guard: LoginGuard, sessions: ConsoleSessions, name: str,
                password: str) -> Session | LoginRefused:
    user = users.get(name)
    # hashing runs off the event loop (~0.1 s of CPU) and for unknown names too
    matches = await asyncio.to_thread(verify_password, password, user.password_hash if user else _NOBODY)
    if guard.locked(name):
        await asyncio.sleep(FAILURE_DELAY_SECONDS)
        return LoginRefused("locked")
    if user is None or not matches:
        locked_now = guard.failed(name)
        await asyncio.sleep(FAILURE_DELAY_SECONDS)
        return LoginRefused("unknown-user" if user is None else "wrong-password", locked_now)
    guard.succeeded(name)
    return sessions.open(user)
