"""Console login: right and wrong passwords, slowed failures, lock-out, sessions that end with the user."""

import asyncio
import time

from victoria_sip.adapters.console_users import SqlConsoleUsers
from victoria_sip.adapters.repository import open_database
from victoria_sip.application.console_login import (
    FAILURE_DELAY_SECONDS,
    IDLE_SECONDS,
    ConsoleSessions,
    LoginGuard,
    LoginRefused,
    Session,
    login,
)
from victoria_sip.domain import ConsoleRole, ConsoleUser
from victoria_sip.domain.console_user import hash_password

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store(tmp_path) -> SqlConsoleUsers:
    users = SqlConsoleUsers(open_database(f"sqlite:///{tmp_path / 'victoria.db'}"))
    users.add(ConsoleUser.new("ops", ConsoleRole.VIEWER, hash_password(PASSWORD)))
    return users


def test_the_right_password_opens_a_session_and_a_wrong_one_is_slowed(tmp_path):
    users, sessions = store(tmp_path), ConsoleSessions()
    session = asyncio.run(login(users, LoginGuard(), sessions, "ops", PASSWORD))
    assert isinstance(session, Session) and session.role is ConsoleRole.VIEWER
    assert sessions.get(session.token, users) is session and session.csrf != session.token
    started = time.monotonic()
    refused = asyncio.run(login(users, LoginGuard(), sessions, "ops", "not the password"))
    assert refused == LoginRefused("wrong-password")
    assert time.monotonic() - started >= FAILURE_DELAY_SECONDS
    assert asyncio.run(login(users, LoginGuard(), sessions, "nobody", PASSWORD)) == LoginRefused("unknown-user")


def test_repeated_failures_lock_the_account_even_against_the_right_password_for_a_while(tmp_path):
    users, sessions, clock = store(tmp_path), ConsoleSessions(), Clock()
    guard = LoginGuard(max_failures=2, lock_seconds=60, clock=clock)
    assert asyncio.run(login(users, guard, sessions, "ops", "guess one")) == LoginRefused("wrong-password")
    assert asyncio.run(login(users, guard, sessions, "ops", "guess two")) == LoginRefused("wrong-password", True)
    assert asyncio.run(login(users, guard, sessions, "ops", PASSWORD)) == LoginRefused("locked")
    clock.now += 61
    assert isinstance(asyncio.run(login(users, guard, sessions, "ops", PASSWORD)), Session)


def test_a_session_ends_when_the_user_is_removed_when_idle_or_on_logout(tmp_path):
    users, clock = store(tmp_path), Clock()
    sessions = ConsoleSessions(clock)
    first = sessions.open(users.get("ops"))
    second = sessions.open(users.get("ops"))
    assert sessions.get(first.token, users) is first
    sessions.close(first.token)
    assert sessions.get(first.token, users) is None
    clock.now += IDLE_SECONDS + 1
    assert sessions.get(second.token, users) is None
    third = sessions.open(users.get("ops"))
    users.remove("ops")
    assert sessions.get(third.token, users) is None
    assert sessions.get(None, users) is None and sessions.get("forged", users) is None
