"""Two instances sharing PostgreSQL: a call answered by one shows live on the other's console, turn by turn
(LISTEN/NOTIFY between them), with a real SIP caller and a real PostgreSQL server on loopback."""

import threading

import httpx
import pytest

from tests.support.postgres import Postgres
from tests.support.processes import LOOPBACK, Victoria, add_console_user, run_caller
from tests.support.server_events import ServerEvents

pytestmark = pytest.mark.integration

PASSWORD = "watching password"
CONFIG = '[stt]\nprovider = "none"\n'


def test_a_call_on_one_instance_grows_live_on_the_other_instance_s_console(tmp_path, speech_wav):
    import psycopg2

    postgres = Postgres()
    postgres.start()
    watched, answering = (Victoria(tmp_path / name, CONFIG, db_url=postgres.url) for name in ("a", "b"))
    try:
        for server in (watched, answering):
            server.start()
        for server in (watched, answering):
            server.wait_ready(timeout=90)
        add_console_user(postgres.url, "ops", PASSWORD)
        console = httpx.Client(base_url=f"http://{LOOPBACK}:{watched.web_port}", timeout=30)
        assert console.post("/api/login", json={"username": "ops", "password": PASSWORD}).status_code == 200

        with console.stream("GET", "/api/live") as response:
            live = ServerEvents(response)
            assert live.read(1) == [("calls", [])]
            with psycopg2.connect(postgres.url) as stranger:  # someone else's NOTIFY on the channel: ignored
                stranger.cursor().execute("NOTIFY victoria_call_events, 'not json'")
            caller = threading.Thread(target=run_caller, daemon=True,
                                      args=(f"sip:7000@{LOOPBACK}:{answering.sip_port}",),
                                      kwargs={"play": speech_wav, "hangup_after": 4})
            caller.start()
            seen = []
            while not seen or seen[-1]["status"] != "ended":
                [(name, call)] = live.read(1)
                assert name == "call"
                seen.append(call)
            caller.join(30)
        assert {c["id"] for c in seen} == {seen[0]["id"]}, "one call"
        statuses = [c["status"] for c in seen]
        assert "active" in statuses and statuses[-1] == "ended", statuses
        growing = [len(c["turns"]) for c in seen]
        assert growing == sorted(growing) and growing[-1] >= 1, "the greeting arrived as a turn of its own"
        assert seen[-1]["turns"][0]["role"] == "assistant" and seen[-1]["end_reason"] == "caller-hangup"
        assert "lost the other instances" not in watched.log()
    finally:
        for server in (watched, answering):
            server.stop()
        postgres.stop()
