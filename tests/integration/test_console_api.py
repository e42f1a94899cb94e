"""The console's API over real HTTP on loopback (uvicorn), with users and calls in a real SQLite file.

Every route of the app is enumerated, so one added later without the session check fails here.
"""

import asyncio
import json
import re
import ssl
import threading
import time

import httpx
import numpy as np
import pytest
import uvicorn

from tests.support.processes import LOOPBACK, Victoria, add_console_user, free_port
from tests.support.server_events import ServerEvents
from victoria_sip.adapters.console_users import SqlConsoleUsers
from victoria_sip.adapters.repository import SqlCallRepository, open_database
from victoria_sip.adapters.web.console_api import CSRF_HEADER, OPEN_PATHS, SESSION_COOKIE, console_app
from victoria_sip.adapters.llm_ollama import OllamaLLM
from victoria_sip.application.call_events import CallEvents
from victoria_sip.application.call_log import CallLog
from victoria_sip.application.console_login import ConsoleSessions, LoginGuard
from victoria_sip.application.erasure import CallEraser
from victoria_sip.bootstrap import Readiness
from victoria_sip.console_site import ConsoleSite
from victoria_sip.domain import Call, CallId, ConsoleRole, ConsoleUser, EndReason, PhoneNumber, Role
from victoria_sip.settings import Settings
from victoria_sip.domain.console_user import hash_password

VIEWER_PASSWORD = "viewer password one"
ADMIN_PASSWORD = "admin password two"


@pytest.fixture
def events():
    """The console's call events: a test publishes through a CallLog on them, as serve's calls do."""
    return CallEvents()


@pytest.fixture
def console(tmp_path, events):
    database = open_database(f"sqlite:///{tmp_path / 'victoria.db'}")
    users, calls = SqlConsoleUsers(database), SqlCallRepository(database)
    users.add(ConsoleUser.new("ops", ConsoleRole.VIEWER, hash_password(VIEWER_PASSWORD)))
    users.add(ConsoleUser.new("boss", ConsoleRole.ADMIN, hash_password(ADMIN_PASSWORD)))
    call = Call(id=CallId.new(), agent="front", caller=PhoneNumber("+4930123"), callee="7000")
    calls.save_call(call)
    for role, text in [(Role.ASSISTANT, "Hello, front desk."), (Role.CALLER, "<b>my pin</b> is"),
                       (Role.CALLER, "[keypad] 4711")]:
        calls.add_turn(call.id, call.conversation.add_turn(role, text))
    refusals: list[str] = []
    settings = Settings()
    nowhere = OllamaLLM(f"http://{LOOPBACK}:{free_port()}", "llama3.2:1b", 1.0, 1.0)  # nothing listens there
    site = ConsoleSite(settings, Readiness(settings, calls, nowhere), f"sqlite:///{tmp_path / 'victoria.db'}",
                       "test:5060")
    app = console_app(users, calls, ConsoleSessions(), LoginGuard(max_failures=3, lock_seconds=60),
                      CallEraser(calls), events, site, login_refused=refusals.append)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://{LOOPBACK}:{port}", app, users, call, refusals, calls
    finally:
        server.should_exit = True
        thread.join(10)


def logged_in(base: str, username: str, password: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=10)
    answer = client.post("/api/login", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    return client, answer.json()["csrf"]


def test_every_route_but_login_refuses_a_request_without_a_session(console):
    base, app, *_ = console
    routes = [(route.path, method) for route in app.routes if hasattr(route, "methods")
              for method in sorted(route.methods - {"HEAD"})]
    assert len(routes) >= 12
    with httpx.Client(base_url=base, timeout=10) as client:
        for path, method in routes:
            if path in OPEN_PATHS:
                continue
            answer = client.request(method, path.replace("{call_id}", "0" * 32).replace("{index}", "0"))
            if path.startswith("/api/"):
                assert answer.status_code == 401, (method, path, answer.status_code)
            else:  # a page: to the login form, and back after it
                assert answer.status_code == 303, (method, path, answer.status_code)
                assert answer.headers["location"].startswith("/login?next=/"), answer.headers["location"]
        unmethodical = {getattr(route, "path", "") for route in app.routes if not hasattr(route, "methods")}
        assert unmethodical == {"/static", "/api/test-call"}  # the WebSocket is checked in its own test
        assert client.get("/static/console.css").status_code == 200  # the login page's own assets
        assert client.get("/static/%2e%2e/console_api.py").status_code == 404  # nothing but static/
    with httpx.Client(base_url=base, cookies={SESSION_COOKIE: "forged"}) as forged:
        assert forged.get("/api/me").status_code == 401


def test_login_sets_a_strict_http_only_cookie_and_logout_needs_the_csrf_token(console):
    base, *_ = console
    client = httpx.Client(base_url=base, timeout=10)
    answer = client.post("/api/login", json={"username": "ops", "password": VIEWER_PASSWORD})
    cookie, csrf = answer.headers["set-cookie"], answer.json()["csrf"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert client.get("/api/me").json() == {"user": "ops", "role": "viewer", "csrf": csrf}
    assert client.post("/api/logout").status_code == 403  # no CSRF header
    assert client.post("/api/logout", headers={CSRF_HEADER: "guessed"}).status_code == 403
    assert client.get("/api/me").status_code == 200  # refused requests changed nothing


def test_logout_ends_the_session(console):
    base, *_ = console
    client, csrf = logged_in(base, "ops", VIEWER_PASSWORD)
    token = client.cookies[SESSION_COOKIE]
    assert client.post("/api/logout", headers={CSRF_HEADER: csrf}).status_code == 204
    with httpx.Client(base_url=base, cookies={SESSION_COOKIE: token}) as replay:
        assert replay.get("/api/me").status_code == 401


def test_wrong_passwords_are_slowed_counted_and_lock_the_account(console):
    base, _, _, _, refusals, _ = console
    with httpx.Client(base_url=base, timeout=10) as client:
        started = time.monotonic()
        assert client.post("/api/login", json={"username": "ops", "password": "nope nope nope"}).status_code == 401
        assert time.monotonic() - started >= 1.0
        assert client.post("/api/login", data={"username": "ops", "password": VIEWER_PASSWORD}).status_code == 422
        for _ in range(2):
            client.post("/api/login", json={"username": "ops", "password": "still wrong"})
        locked = client.post("/api/login", json={"username": "ops", "password": VIEWER_PASSWORD})
        assert locked.status_code == 401  # the right password, but locked for a while
    assert refusals == ["wrong-password", "wrong-password", "wrong-password", "locked"]


def test_a_removed_user_s_session_stops_working(console):
    base, _, users, *_ = console
    client, _ = logged_in(base, "ops", VIEWER_PASSWORD)
    assert client.get("/api/me").status_code == 200
    users.remove("ops")
    assert client.get("/api/me").status_code == 401


def test_calls_are_listed_and_keypad_turns_are_masked_for_viewers_only(console):
    base, _, _, call, _, _ = console
    viewer, _ = logged_in(base, "ops", VIEWER_PASSWORD)
    [listed] = viewer.get("/api/calls").json()
    assert listed["id"] == call.id.value and listed["agent"] == "front"
    turns = viewer.get(f"/api/calls/{call.id.value}").json()["turns"]
    assert [t["text"] for t in turns] == ["Hello, front desk.", "<b>my pin</b> is", "[keypad] ••••"]
    admin, _ = logged_in(base, "boss", ADMIN_PASSWORD)
    assert admin.get(f"/api/calls/{call.id.value}").json()["turns"][2]["text"] == "[keypad] 4711"
    assert viewer.get("/api/calls/" + "f" * 32).status_code == 404
    assert viewer.get("/api/calls?status=nonsense").status_code == 422


def test_admins_reveal_keypad_turns_and_erase_calls_viewers_cannot_and_both_are_logged(console, caplog):
    base, _, _, ringing, _, calls = console
    ended = Call(id=CallId.new(), agent="front", caller=PhoneNumber("+4930999"), callee="7000")
    ended.start()
    calls.save_call(ended)
    calls.add_turn(ended.id, ended.conversation.add_turn(Role.CALLER, "[keypad] 1234"))
    ended.end(EndReason.CALLER_HANGUP)
    calls.save_call(ended)
    viewer, viewer_csrf = logged_in(base, "ops", VIEWER_PASSWORD)
    admin, admin_csrf = logged_in(base, "boss", ADMIN_PASSWORD)
    call_path = f"/api/calls/{ended.id.value}"

    assert viewer.get(f"{call_path}/turns/0").status_code == 403
    assert viewer.delete(call_path, headers={CSRF_HEADER: viewer_csrf}).status_code == 403
    assert viewer.delete("/api/calls?caller=%2B4930999", headers={CSRF_HEADER: viewer_csrf}).status_code == 403
    with caplog.at_level("INFO", "victoria.console"):
        assert admin.get(f"{call_path}/turns/0").json()["text"] == "[keypad] 1234"
        assert admin.get(f"{call_path}/turns/7").status_code == 404
        assert admin.delete(call_path).status_code == 403  # no CSRF token
        assert admin.delete(f"/api/calls/{ringing.id.value}", headers={CSRF_HEADER: admin_csrf}).status_code == 409
        erased = admin.delete(call_path, headers={CSRF_HEADER: admin_csrf})
    assert erased.status_code == 200 and erased.json()["erased"] == [ended.id.value], erased.text
    assert "boss revealed turn 0 of call " + ended.id.value in caplog.text
    assert f"boss erased 1 call(s) and 1 turn(s): {ended.id.value}" in caplog.text
    assert viewer.get(call_path).status_code == 404
    assert [c["id"] for c in viewer.get("/api/calls").json()] == [ringing.id.value]
    nobody = admin.delete("/api/calls?caller=%2B4930123", headers={CSRF_HEADER: admin_csrf}).json()
    assert nobody["erased"] == []  # that caller's only call is still ringing


def test_serve_runs_the_console_for_the_users_added_on_the_command_line(tmp_path):
    server = Victoria(tmp_path / "victoria")
    server.start()
    try:
        server.wait_ready(timeout=90)
        assert re.search(r"web console on http://127\.0\.0\.1:\d+: no users yet", server.log())
        add_console_user(server.db_url, "boss", ADMIN_PASSWORD, "admin")
        base = f"http://{LOOPBACK}:{server.web_port}"
        assert httpx.get(f"{base}/api/calls", timeout=10).status_code == 401
        assert httpx.post(f"{base}/api/login", json={"username": "boss", "password": "wrong password"},
                          timeout=10).status_code == 401
        client, _ = logged_in(base, "boss", ADMIN_PASSWORD)
        assert client.get("/api/me").json()["role"] == "admin" and client.get("/api/calls").json() == []
        _, metrics = server.http_get("/metrics")
        assert 'victoria_console_login_refusals_total{reason="wrong-password"} 1.0' in metrics
        assert "login refused for 'boss'" in server.log()
    finally:
        assert server.stop() == 0


def test_history_is_searched_by_what_was_said_paged_and_exported_as_the_cli_does(console):
    base, _, _, ringing, _, calls = console
    for n in range(4):
        call = Call(id=CallId.new(), agent="sales", caller=PhoneNumber(f"+49301{n}"), callee="7001")
        calls.save_call(call)
        calls.add_turn(call.id, call.conversation.add_turn(Role.CALLER, f"Order number {n}, 100% sure"))
    viewer, _ = logged_in(base, "ops", VIEWER_PASSWORD)
    assert len(viewer.get("/api/calls", params={"text": "ORDER"}).json()) == 4
    assert viewer.get("/api/calls", params={"text": "my pin"}).json()[0]["id"] == ringing.id.value
    assert len(viewer.get("/api/calls", params={"text": "%"}).json()) == 4, "% is a character, not 'anything'"
    assert viewer.get("/api/calls", params={"text": "+493012"}).json()[0]["caller"] == "+493012"
    first = viewer.get("/api/calls", params={"limit": 3}).json()
    rest = viewer.get("/api/calls", params={"limit": 3, "before": first[-1]["id"]}).json()
    assert len(first) == 3 and len(rest) == 2 and not {c["id"] for c in first} & {c["id"] for c in rest}
    assert viewer.get("/api/calls", params={"before": "f" * 32}).json() == [], "after an unknown call: nothing"
    assert viewer.get("/api/calls", params={"before": "no/such id"}).status_code == 422
    assert viewer.get("/api/calls", params={"until": "2000-01-01T00:00:00"}).json() == []

    csv = viewer.get("/api/calls/export", params={"format": "csv", "text": "pin"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert 'attachment; filename="victoria-calls-' in csv.headers["content-disposition"]
    lines = csv.text.splitlines()
    assert lines[0].startswith("call_id,agent,caller") and len(lines) == 4  # the header and the call's 3 turns
    assert "[keypad] ••••" in csv.text and "4711" not in csv.text, "a viewer's export is masked too"
    admin, _ = logged_in(base, "boss", ADMIN_PASSWORD)
    jsonl = admin.get("/api/calls/export", params={"agent": "sales"}).text.splitlines()
    assert len(jsonl) == 4 and all(json.loads(line)["agent"] == "sales" for line in jsonl)
    assert "4711" in admin.get("/api/calls/export", params={"text": "pin"}).text


def test_live_events_show_calls_in_progress_then_each_committed_turn_masked_for_viewers(console, events):
    base, _, _, ringing, _, calls = console
    viewer, _ = logged_in(base, "ops", VIEWER_PASSWORD)
    call_log = CallLog(calls, events=events)
    with viewer.stream("GET", "/api/live", timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        live = ServerEvents(response)
        [(name, snapshot)] = live.read(1)
        assert name == "calls" and [c["id"] for c in snapshot] == [ringing.id.value]
        assert snapshot[0]["turns"][2]["text"] == "[keypad] ••••"

        async def caller_speaks_then_hangs_up():
            ringing.start()
            await call_log.save_call(ringing)
            await call_log.add_turn(ringing.id, ringing.conversation.add_turn(Role.CALLER, "[keypad] 99"))
            ringing.end(EndReason.CALLER_HANGUP)
            await call_log.save_call(ringing)

        asyncio.run(caller_speaks_then_hangs_up())
        answered, turn, ended = live.read(3)
    call_log.close()
    assert answered[0] == "call" and answered[1]["status"] == "active"
    assert turn[1]["turns"][-1]["text"] == "[keypad] ••", "masked for a viewer"
    assert ended[1]["status"] == "ended" and ended[1]["end_reason"] == "caller-hangup"


def test_closing_the_events_ends_every_live_stream(console, events):
    base, *_ = console
    viewer, _ = logged_in(base, "ops", VIEWER_PASSWORD)
    with viewer.stream("GET", "/api/live", timeout=10) as response:
        live = ServerEvents(response)
        live.read(1)
        threading.Timer(0.3, events.close).start()
        started = time.monotonic()
        assert live.rest() in ([], [""]), "nothing more, then the end"
        assert time.monotonic() - started < 5


def test_agents_and_system_say_what_runs_without_secrets(console):
    base, *_ = console
    viewer, _ = logged_in(base, "ops", VIEWER_PASSWORD)
    [agent] = viewer.get("/api/agents").json()
    assert agent["name"] == Settings().default_agent and agent["answers"] == ["any other direct call"]
    system = viewer.get("/api/system").json()
    assert system["readiness"]["database"]["ok"] is True
    assert system["readiness"]["llm"]["ok"] is False, "nothing listens where the LLM should be"
    assert system["readiness"]["sip"] == {"ok": False, "detail": "the SIP stack is starting"}
    assert system["build"]["instance"] == "test:5060" and system["build"]["PJSIP"].startswith("PJSIP")


def test_a_test_call_needs_an_admin_session_its_csrf_token_and_this_console_s_origin(console):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    base, *_ = console
    url = base.replace("http://", "ws://") + "/api/test-call?agent=victoria"
    viewer, viewer_csrf = logged_in(base, "ops", VIEWER_PASSWORD)
    admin, admin_csrf = logged_in(base, "boss", ADMIN_PASSWORD)

    def opened(client: httpx.Client | None, csrf: str = "", origin: str = base) -> str:
        cookie = {"Cookie": f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"} if client else {}
        try:
            with connect(f"{url}&csrf={csrf}", origin=origin, additional_headers=cookie, open_timeout=10) as socket:
                return json.loads(socket.recv(timeout=10))["reason"]
        except InvalidStatus as refused:
            return f"HTTP {refused.response.status_code}"

    assert opened(None) == "HTTP 403"
    assert opened(viewer, viewer_csrf) == "HTTP 403", "viewers do not make test calls"
    assert opened(admin, "guessed") == "HTTP 403"
    assert opened(admin, admin_csrf, origin="http://evil.example") == "HTTP 403"
    assert opened(admin, admin_csrf) == "Victoria is still starting", "let in; nothing answers calls in this test"


def test_admins_manage_users_over_http_and_a_removed_user_is_out_at_once(console, caplog):
    base, *_ = console
    viewer, viewer_csrf = logged_in(base, "ops", VIEWER_PASSWORD)
    admin, admin_csrf = logged_in(base, "boss", ADMIN_PASSWORD)
    new = {"username": "nina", "password": "nina's long password", "role": "viewer"}
    assert viewer.get("/api/users").status_code == 403
    assert viewer.post("/api/users", json=new, headers={CSRF_HEADER: viewer_csrf}).status_code == 403
    assert admin.post("/api/users", json=new).status_code == 403, "no CSRF token"
    short = admin.post("/api/users", json={**new, "password": "short"}, headers={CSRF_HEADER: admin_csrf})
    assert short.status_code == 422 and "10 characters" in short.text
    bad_name = admin.post("/api/users", json={**new, "username": "<b>"}, headers={CSRF_HEADER: admin_csrf})
    assert bad_name.status_code == 422
    with caplog.at_level("INFO", "victoria.console"):
        assert admin.post("/api/users", json=new, headers={CSRF_HEADER: admin_csrf}).status_code == 201
    assert "boss added user 'nina' (viewer)" in caplog.text
    assert admin.post("/api/users", json=new, headers={CSRF_HEADER: admin_csrf}).status_code == 409
    assert [u["name"] for u in admin.get("/api/users").json()] == ["boss", "nina", "ops"]
    nina, _ = logged_in(base, "nina", new["password"])
    assert nina.get("/api/me").json()["role"] == "viewer"

    assert admin.delete("/api/users/boss", headers={CSRF_HEADER: admin_csrf}).status_code == 409, "not yourself"
    assert admin.delete("/api/users/nobody", headers={CSRF_HEADER: admin_csrf}).status_code == 404
    assert admin.delete("/api/users/nina", headers={CSRF_HEADER: admin_csrf}).status_code == 204
    assert nina.get("/api/me").status_code == 401, "her session ended with her account"


def test_over_https_the_session_cookie_is_secure_and_a_bad_key_stops_start_up(tmp_path):
    from tests.support.certificates import TestPki

    pki = TestPki(tmp_path / "pki")
    issued = pki.issue("console")
    config = f'[stt]\nprovider = "none"\n[web]\ncertificate = "{issued.certificate}"\nprivate_key = "{issued.private_key}"\n'
    server = Victoria(tmp_path / "victoria", config)
    server.start()
    try:
        server.wait_ready(timeout=90)
        assert re.search(r"web console on https://127\.0\.0\.1:\d+: no users yet", server.log())
        add_console_user(server.db_url, "boss", ADMIN_PASSWORD, "admin")
        with httpx.Client(base_url=f"https://{LOOPBACK}:{server.web_port}", verify=ssl.create_default_context(cafile=str(pki.ca_file)),
                          timeout=10) as client:
            answer = client.post("/api/login", json={"username": "boss", "password": ADMIN_PASSWORD})
            assert answer.status_code == 200 and "Secure" in answer.headers["set-cookie"]
        with pytest.raises(httpx.HTTPError):  # plain HTTP to the HTTPS port: no answer that carries a cookie
            httpx.post(f"http://{LOOPBACK}:{server.web_port}/api/login",
                       json={"username": "boss", "password": ADMIN_PASSWORD}, timeout=5).raise_for_status()
    finally:
        assert server.stop() == 0

    issued.private_key.write_text("not a key\n")
    broken = Victoria(tmp_path / "broken", config)
    broken.start()
    assert broken.process.wait(60) != 0
    assert "cannot serve the web console over HTTPS" in broken.log() and "private_key" in broken.log()


def test_admins_play_a_call_s_recording_viewers_cannot_and_a_deleted_one_is_404(console, tmp_path):
    from tests.support.wav import write_wav

    base, _, _, _, _, calls = console
    recorded = Call(id=CallId.new(), agent="front", caller=PhoneNumber("+4930555"), callee="7000")
    recorded.recording = str(write_wav(tmp_path / "rec.wav", np.zeros(1600, np.int16), 16000))
    calls.save_call(recorded)
    viewer, _ = logged_in(base, "ops", VIEWER_PASSWORD)
    admin, _ = logged_in(base, "boss", ADMIN_PASSWORD)
    path = f"/api/calls/{recorded.id.value}/recording"
    assert viewer.get(path).status_code == 403
    wav = admin.get(path)
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav" and wav.content[:4] == b"RIFF"
    assert f'src="{path}"' in admin.get(f"/calls/{recorded.id.value}").text
    assert "<audio" not in viewer.get(f"/calls/{recorded.id.value}").text
    (tmp_path / "rec.wav").unlink()  # retention took it
    assert admin.get(path).status_code == 404
