"""Registration against a real Kamailio: bad credentials, a registrar that restarts."""

import re
import time

import pytest

from tests.support.processes import Victoria, run_caller

pytestmark = pytest.mark.integration

ONE_EXTENSION = """
[[sip.accounts]]
name = "reception"
registrar = "{registrar}"
user = "7000"
agent = "victoria"
expires = 300

[[agents]]
name = "victoria"
first_message = "Hello, this is Victoria."
"""


def test_a_wrong_password_is_reported_clearly_and_retried_with_backoff(tmp_path, kamailio):
    server = Victoria(tmp_path / "v", ONE_EXTENSION.format(registrar=kamailio.registrar),
                      env={"VICTORIA_ACCOUNT_RECEPTION_PASSWORD": "not-the-password"})
    server.start()
    try:
        log = server.wait_for_log(r"registration as sip:7000@127\.0\.0\.1 .* failed", timeout=60, count=2)
        failures = re.findall(r"failed: (\d+) .*\((.*)\); retrying in (\d+) s", log)
        assert failures[0][0] == "401"
        assert "check user, auth_user and password" in failures[0][1]
        delays = [int(delay) for _, _, delay in failures]
        assert delays[:2] == [2, 4], "the retry interval backs off"
        assert "not-the-password" not in log, "secrets never reach the log"
        assert server.process.poll() is None, "serve keeps running and retrying"
    finally:
        assert server.stop() == 0


def test_victoria_registers_again_when_the_registrar_comes_back(tmp_path, kamailio, speech_wav):
    server = Victoria(tmp_path / "v", ONE_EXTENSION.format(registrar=kamailio.registrar),
                      env={"VICTORIA_ACCOUNT_RECEPTION_PASSWORD": "reception-secret"})
    server.start()
    try:
        server.wait_for_log(r"account 'reception' registered", timeout=60)
        # the registrar goes away and comes back with an empty location table (usrloc in memory)
        kamailio.stop()
        # (the probe's first look may already find it gone: then it says "is not reachable")
        server.wait_for_log(r"registrar 127\.0\.0\.1:\d+ (stopped answering|is not reachable)", timeout=30)
        kamailio.start()
        back = time.monotonic()
        server.wait_for_log(r"account 'reception' registered", timeout=30, count=2)
        assert time.monotonic() - back < 15, "re-registered within seconds, not at the next refresh"

        report = run_caller(f"sip:7000@{kamailio.registrar}", proxy=f"sip:{kamailio.registrar}", user="caller",
                            password="caller-secret", play=speech_wav, hangup_after=2)
        assert report["answered"], report
        assert report["seconds_answer_to_voice"] is not None
    finally:
        assert server.stop() == 0
