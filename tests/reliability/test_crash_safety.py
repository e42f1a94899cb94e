"""kill -9 during a call: the database is intact, every committed turn is there, and on restart the call that
was cut off is marked ended-abnormally (only this instance's calls: several may share one database)."""

import signal
import sqlite3
import subprocess
import sys

import pytest

from tests.support.ollama_double import OllamaDouble
from tests.support.processes import LOOPBACK, ROOT, Victoria, wait_until

pytestmark = pytest.mark.integration

CONFIG = """
[stt]
provider = "none"

[llm]
host = "{llm}"
"""


def stored_turns(db_path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        return db.execute("SELECT role, text FROM turns ORDER BY id").fetchall()


def test_a_killed_instance_keeps_every_committed_turn_and_closes_the_call_on_restart(tmp_path):
    with OllamaDouble(reply="Noted.") as ollama:
        server = Victoria(tmp_path / "v", CONFIG.format(llm=ollama.host))
        server.start()
        server.wait_ready()
        db_path = tmp_path / "v" / "victoria.db"
        caller = subprocess.Popen(
            [sys.executable, "-m", "tests.support.sip_caller", "--dial", f"sip:7000@{LOOPBACK}:{server.sip_port}",
             "--dtmf", "1#,2#", "--dtmf-after", "2", "--dtmf-gap", "3", "--hangup-after", "60", "--timeout", "60"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: ("assistant", "Noted.") in stored_turns(db_path)[3:], 20, what="second reply stored")
            before_kill = stored_turns(db_path)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(10)
        finally:
            caller.kill()
            caller.wait(10)

        with sqlite3.connect(db_path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            [(status,)] = db.execute("SELECT status FROM calls").fetchall()
        assert status == "active", "the kill left the call open"

        server.start()
        server.wait_ready()
        try:
            log = server.wait_for_log(r"1 call\(s\) were in progress .* marked ended-abnormally", timeout=10)
        finally:
            assert server.stop() == 0
    assert before_kill[:5] == [("assistant", "Hello, this is Victoria, your virtual assistant. How can I help you today?"),
                               ("caller", "[keypad] 1"), ("assistant", "Noted."), ("caller", "[keypad] 2"),
                               ("assistant", "Noted.")], before_kill
    assert stored_turns(db_path)[:len(before_kill)] == before_kill, "no committed turn lost"
    [call] = server.calls()
    assert call["status"] == "ended" and call["end_reason"] == "ended-abnormally", call
    assert call["id"] in log
    assert call["ended_at"] >= call["started_at"]
