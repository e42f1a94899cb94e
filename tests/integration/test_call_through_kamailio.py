"""A real call, end to end: Kamailio registrar with digest auth, victoria-sip serve, a pjsua2 caller."""

import numpy as np
import pytest

from tests.integration.conftest import read_wav
from tests.support.processes import LOOPBACK, Kamailio, Victoria, run_caller
from tests.support.raw_sip import invite, send_request
from victoria_sip.audio.levels import rms_dbfs

pytestmark = pytest.mark.integration

TWO_EXTENSIONS = """
[sip]
max_concurrent_calls = 2

[[sip.accounts]]
name = "reception"
registrar = "{registrar}"
user = "7000"
agent = "reception"
expires = 60

[[sip.accounts]]
name = "support"
registrar = "{registrar}"
user = "7001"
agent = "support"
expires = 60

[[agents]]
name = "reception"
first_message = "Hello, this is Victoria at the front desk. How can I help you today?"

[[agents]]
name = "support"
first_message = "Technical support, Victoria speaking."
[agents.voice]
provider = "espeak"
voice = "en-us"
"""

SECRETS = {"VICTORIA_ACCOUNT_RECEPTION_PASSWORD": "reception-secret", "VICTORIA_ACCOUNT_SUPPORT_PASSWORD": "support-secret"}


@pytest.fixture
def victoria(tmp_path, kamailio):
    server = Victoria(tmp_path / "victoria", TWO_EXTENSIONS.format(registrar=kamailio.registrar), env=SECRETS)
    server.start()
    server.wait_for_log(r"account 'reception' registered", timeout=60)
    server.wait_for_log(r"account 'support' registered", timeout=30)
    yield server
    assert server.stop() == 0, server.log()[-3000:]


def call_through(kamailio, extension: str, tmp_path, speech_wav, hangup_after: float = 10.0) -> tuple[dict, np.ndarray]:
    heard = tmp_path / f"heard-{extension}.wav"
    report = run_caller(
        f"sip:{extension}@{kamailio.registrar}",
        proxy=f"sip:{kamailio.registrar}",
        user="caller",
        password="caller-secret",
        play=speech_wav,
        record=heard,
        hangup_after=hangup_after,
    )
    samples, _ = read_wav(heard)
    return report, samples


def test_a_registered_extension_answers_greets_and_logs_the_call(victoria, kamailio, tmp_path, speech_wav):
    report, heard = call_through(kamailio, "7000", tmp_path, speech_wav)

    assert report["answered"], report
    assert report["codec"] == "PCMU"
    assert report["seconds_answer_to_voice"] is not None and report["seconds_answer_to_voice"] < 2.0, report
    assert rms_dbfs(heard[: 16000 * 3]) > -35, "the first message should be clearly audible"

    log = victoria.wait_for_log(r"ended, caller-hangup", timeout=10)
    assert "account 'reception'" in log
    [summary] = victoria.calls()
    call = victoria.call_detail(summary["id"])
    assert call["status"] == "ended" and call["end_reason"] == "caller-hangup"
    assert call["agent"] == "reception" and call["caller"] == "caller" and call["callee"] == "7000"
    assert 9.0 < call["duration_seconds"] < 12.0
    # Victoria heard the caller: ~50 frames/s for the whole call, and speech, not silence
    assert call["frames_received"] >= 0.9 * 50 * 10.0
    assert call["caller_peak_dbfs"] > -30
    greeting = call["turns"][0]
    assert (greeting["index"], greeting["role"], greeting["text"]) == (
        0, "assistant", "Hello, this is Victoria at the front desk. How can I help you today?")

    shown = victoria.cli("calls", "show", summary["id"][:8], "--db", victoria.db_url)
    assert shown.returncode == 0 and "assistant: Hello, this is Victoria at the front desk." in shown.stdout


def test_each_extension_is_answered_by_its_own_agent(victoria, kamailio, tmp_path, speech_wav):
    reception, reception_audio = call_through(kamailio, "7000", tmp_path, speech_wav, hangup_after=3)
    support, support_audio = call_through(kamailio, "7001", tmp_path, speech_wav, hangup_after=3)
    assert reception["answered"] and support["answered"]
    victoria.wait_for_log(r"ended, caller-hangup", count=2, timeout=10)
    agents = {c["callee"]: c["agent"] for c in victoria.calls()}
    assert agents == {"7000": "reception", "7001": "support"}
    # two different voices said two different things
    assert rms_dbfs(reception_audio) > -40 and rms_dbfs(support_audio) > -40
    assert not np.array_equal(reception_audio[:8000], support_audio[:8000])


def test_an_unknown_extension_is_not_found_at_the_registrar(victoria, kamailio, tmp_path):
    report = run_caller(f"sip:7099@{kamailio.registrar}", proxy=f"sip:{kamailio.registrar}", user="caller",
                        password="caller-secret", hangup_after=1)
    assert not report["answered"] and report["last_status"] == 404


def test_after_sigterm_victoria_unregisters_and_exits_cleanly(tmp_path, kamailio):
    server = Victoria(tmp_path / "v", TWO_EXTENSIONS.format(registrar=kamailio.registrar), env=SECRETS)
    server.start()
    server.wait_for_log(r"account 'support' registered", timeout=60)
    assert server.stop() == 0
    log = server.log()
    assert "SIP stopped" in log and "stopped" in log
    # unregistered: the registrar no longer routes the extension to us
    report = run_caller(f"sip:7000@{kamailio.registrar}", proxy=f"sip:{kamailio.registrar}", user="caller",
                        password="caller-secret", hangup_after=1, timeout=10)
    assert not report["answered"] and report["last_status"] == 404, report


def test_the_test_registrar_relays_nothing_for_a_stranger(tmp_path):
    """config/kamailio/kamailio.cfg is no open relay: a non-subscriber from outside TRUSTED_NETWORKS gets 403,
    whether it asks for a local user or for another host; a trusted source still gets through."""
    registrar = Kamailio(tmp_path / "kamailio", defines={"TRUSTED_NETWORKS": '"127.0.0.1/32"'})
    registrar.start()
    try:
        host, port = registrar.registrar.rsplit(":", 1)
        local, elsewhere = f"{host}:{port}", "127.0.0.3:5999"  # a user of this registrar, another host
        expected = {("127.0.0.2", local): 403, ("127.0.0.2", elsewhere): 403,
                    (LOOPBACK, local): 404,        # trusted, but 7000 is not registered
                    (LOOPBACK, elsewhere): 100}    # trusted: relayed (100 Trying), nobody answers there
        for (source, target), status in expected.items():
            request = invite(host, int(port), user="7000", source=source).replace(
                f"INVITE sip:7000@{local}".encode(), f"INVITE sip:7000@{target}".encode())
            first = send_request(request, (host, int(port)), source=source, final_only=False)
            assert first == status, (source, target, first)
        assert "refused INVITE from 127.0.0.2" in registrar.log_path.read_text()
    finally:
        registrar.stop()
