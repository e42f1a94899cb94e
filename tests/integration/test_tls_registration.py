"""Victoria registers with Kamailio over TLS (issue 16): with a client certificate when the registrar asks for
one, callers reach her through it over TLS with SRTP; a registrar whose certificate is not to be trusted is
refused with the reason, and Victoria goes on."""

import numpy as np
import pytest

from tests.integration.test_conversation import QUESTION, REPLY, transcribe
from tests.support.certificates import Issued, TestPki
from tests.support.ollama_double import OllamaDouble
from tests.support.processes import DESK_PASSWORD, Kamailio, KamailioTls, Victoria, desk_account, run_caller
from tests.support.wav import read_wav, write_wav

pytestmark = pytest.mark.integration

RATE = 16000


def start_kamailio(tmp_path, pki: TestPki, server: Issued, require_client_cert: bool = False) -> Kamailio:
    kamailio = Kamailio(tmp_path / "kamailio", tls=KamailioTls(server.certificate, server.private_key, pki.ca_file,
                                                                require_client_cert))
    kamailio.start()
    return kamailio


def tls_victoria(tmp_path, kamailio: Kamailio, ca_file, client: Issued | None = None,
                 llm_host: str = "http://127.0.0.1:9") -> Victoria:
    account = f'[llm]\nhost = "{llm_host}"\nfirst_token_timeout = 3.0\n'
    account += desk_account(f"sip:{kamailio.tls_registrar}", agent="victoria")
    account += f'transport = "tls"\nca_file = "{ca_file}"\nsrtp = "mandatory"\n'
    if client is not None:
        account += f'certificate = "{client.certificate}"\nprivate_key = "{client.private_key}"\n'
    server = Victoria(tmp_path / "victoria", account, env=DESK_PASSWORD)
    server.start()
    return server


def test_victoria_registers_over_mutual_tls_and_converses_over_srtp_through_the_registrar(tmp_path, piper_voice):
    pki = TestPki(tmp_path / "pki")
    kamailio = start_kamailio(tmp_path, pki, pki.issue("registrar"), require_client_cert=True)
    question = piper_voice(QUESTION)
    speech = np.concatenate([np.zeros(3 * RATE, np.int16), question, np.zeros(9 * RATE, np.int16)])
    with OllamaDouble(reply=REPLY) as ollama:
        server = tls_victoria(tmp_path, kamailio, pki.ca_file, client=pki.issue("victoria", client=True),
                              llm_host=ollama.host)
        try:
            server.wait_for_log(r"account 'desk' registered", timeout=30)
            caller = pki.issue("caller", client=True)
            report = run_caller(f"sip:7000@{kamailio.tls_registrar};transport=tls",
                                proxy=f"sip:{kamailio.tls_registrar};transport=tls", password="caller-secret",
                                tls_ca=pki.ca_file, tls_cert=(caller.certificate, caller.private_key),
                                srtp="mandatory", play=write_wav(tmp_path / "question.wav", speech, RATE),
                                record=tmp_path / "heard.wav", hangup_after=13, timeout=35, codec="G722/16000/1")
            assert report["answered"] and report["media"] == "srtp", report
            server.wait_for_log(r"ended, caller-hangup", timeout=15)
        finally:
            assert server.stop() == 0, server.log()[-3000:]
            kamailio.stop()
    [call] = server.calls()
    assert (call["signalling"], call["media"]) == ("tls", "srtp")
    assert "media up (G722, SRTP over TLS)" in server.log()
    request = ollama.requests[-1]  # earlier ones: replies prepared in mid-sentence pauses, discarded
    assert len(set(request["messages"][-1]["content"].split()) & {"book", "table", "two", "people", "tomorrow"}) >= 3
    heard = read_wav(tmp_path / "heard.wav")[0]
    words = set(transcribe(heard[int(3 * RATE + len(question)):]).split())
    assert len(words & {"table", "two", "people", "seven", "tomorrow", "evening", "book", "you"}) >= 3, words


def test_without_the_client_certificate_the_registrar_asks_for_registration_fails_and_says_so(tmp_path):
    pki = TestPki(tmp_path / "pki")
    kamailio = start_kamailio(tmp_path, pki, pki.issue("registrar"), require_client_cert=True)
    server = tls_victoria(tmp_path, kamailio, pki.ca_file)
    try:
        server.wait_for_log(r"account 'desk': registration as .* failed: .*the TLS handshake with the registrar "
                            r"failed: .*a client certificate it asks for", timeout=30)
        assert server.process.poll() is None
    finally:
        assert server.stop() == 0, server.log()[-3000:]
        kamailio.stop()
    assert "account 'desk' registered" not in server.log()


@pytest.mark.parametrize("flaw, words", [
    ("unknown CA", "not signed by a CA in ca_file"),
    ("name mismatch", "names do not cover the host"),
    ("expired", "has expired"),
])
def test_a_registrar_certificate_that_cannot_be_trusted_is_refused_with_the_reason(tmp_path, flaw, words):
    pki = TestPki(tmp_path / "pki")
    certificate = {
        "unknown CA": lambda: TestPki(tmp_path / "stranger", "Nobody's CA").issue("registrar"),
        "name mismatch": lambda: pki.issue("registrar", names=("pbx.example",)),
        "expired": lambda: pki.issue("registrar", days=(-30, -1)),
    }[flaw]()
    kamailio = start_kamailio(tmp_path, pki, certificate)
    server = tls_victoria(tmp_path, kamailio, pki.ca_file)
    try:
        server.wait_for_log(rf"TLS connection to 127\.0\.0\.1:{kamailio.tls_port} refused: .*{words}", timeout=30)
        server.wait_for_log(r"registration as .* failed: .*refused the registrar's TLS certificate", timeout=10)
        assert server.process.poll() is None, "refused, not crashed"
    finally:
        assert server.stop() == 0, server.log()[-3000:]
        kamailio.stop()
    assert "account 'desk' registered" not in server.log()
