"""A TLS listener's certificate over its life (issue 16): /readyz and the expiry gauge report the days left; a
renewed file on disk plus SIGHUP is checked and logged without a restart, the call in progress goes on; an expired
one makes Victoria not ready, and says why."""

import os
import re
import shutil
import signal
import socket
import threading

import numpy as np
import pytest

from tests.integration.test_ops_endpoints import scrape, value
from tests.support.certificates import Issued, TestPki
from tests.support.ollama_double import OllamaDouble
from tests.support.processes import DESK_PASSWORD, LOOPBACK, Victoria, free_port, run_caller, wait_until
from tests.support.wav import write_wav

pytestmark = pytest.mark.integration

DAY = 86400

CONFIG = """
[sip]
transport = "tls"
certificate = "{certificate}"
private_key = "{private_key}"
ca_file = "{ca_file}"

[stt]
provider = "none"

[llm]
host = "{llm}"
"""


def install(issued: Issued, live: Issued) -> None:
    """Put a certificate and its key where Victoria reads them, each file replaced at once as a renewal tool does."""
    for source, target in ((issued.private_key, live.private_key), (issued.certificate, live.certificate)):
        shutil.copy2(source, f"{target}.new")
        os.replace(f"{target}.new", target)


def expiry(server: Victoria) -> float:
    return value(scrape(server), "victoria_tls_certificate_expiry_seconds", certificate="listener")


def test_a_renewed_certificate_is_checked_on_sighup_and_an_expired_one_makes_victoria_not_ready(tmp_path):
    pki = TestPki(tmp_path / "pki")
    live = Issued(tmp_path / "live.pem", tmp_path / "live.key")
    install(pki.issue("first", days=(-1, 365)), live)
    with OllamaDouble() as ollama:
        server = Victoria(tmp_path / "v", CONFIG.format(certificate=live.certificate, private_key=live.private_key,
                                                        ca_file=pki.ca_file, llm=ollama.host))
        server.start()
        try:
            server.wait_ready()
            assert re.search(r"TLS certificate for listener in use: CN=localhost, expires \S+ \S+ UTC \(36[45] days\)",
                             server.log())
            wait_until(lambda: server.http_get("/readyz")[0] == 200, 15, what="ready")
            assert re.search(r'"tls listener": \{\s*"ok": true,\s*"detail": "36[45] days left',
                             server.http_get("/readyz")[1])
            assert 364 * DAY < expiry(server) <= 365 * DAY

            reports = []
            silence = write_wav(tmp_path / "silence.wav", np.zeros(16000, np.int16), 16000)
            in_progress = threading.Thread(target=lambda: reports.append(run_caller(
                f"sip:7000@{LOOPBACK}:{server.sip_port};transport=tls", tls_ca=pki.ca_file, play=silence,
                hangup_after=8, timeout=30)))
            in_progress.start()
            server.wait_for_log(r"answered by agent", timeout=20)

            install(pki.issue("renewed", days=(-300, 20)), live)
            server.process.send_signal(signal.SIGHUP)
            server.wait_for_log(r"TLS certificate for listener reloaded: CN=localhost, expires \S+ \S+ UTC "
                                r"\(19 days\); .* expires in 19 days .*renew it", timeout=15)
            assert 19 * DAY < expiry(server) <= 20 * DAY
            in_progress.join(40)
            assert reports and reports[0]["answered"] and reports[0]["call_seconds"] > 7, \
                "the call in progress went on through the reload"
            server.wait_for_log(r"ended, caller-hangup", timeout=15)

            install(pki.issue("expired", days=(-90, -2)), live)
            wait_until(lambda: server.http_get("/readyz")[0] == 503, 15, what="not ready once the file expired")
            assert re.search(r'"tls listener": \{\s*"ok": false,\s*"detail": "\S+live.pem expired on',
                             server.http_get("/readyz")[1])
            server.process.send_signal(signal.SIGHUP)
            server.wait_for_log(r"TLS certificate for listener: \S+live.pem expired on", timeout=15)
            assert -3 * DAY < expiry(server) < -2 * DAY
            assert server.http_get("/healthz")[0] == 200, "alive all the same"
        finally:
            assert server.stop() == 0, server.log()[-3000:]


def test_an_accounts_client_certificate_is_reported_and_rechecked_on_sighup(tmp_path):
    pki = TestPki(tmp_path / "pki")
    live = Issued(tmp_path / "desk.pem", tmp_path / "desk.key")
    install(pki.issue("soon", days=(-300, 20), client=True), live)
    account = (f'\n[[sip.accounts]]\nname = "desk"\nregistrar = "sip:{LOOPBACK}:{free_port(socket.SOCK_STREAM)}"\n'
               f'user = "7000"\nagent = "victoria"\ntransport = "tls"\nca_file = "{pki.ca_file}"\n'
               f'certificate = "{live.certificate}"\nprivate_key = "{live.private_key}"\n')
    server = Victoria(tmp_path / "v", '[stt]\nprovider = "none"\n' + account, env=DESK_PASSWORD)
    server.start()
    try:
        server.wait_ready()  # the registrar is not there: she serves all the same
        assert re.search(r"TLS certificate for account:desk in use: CN=localhost, expires .* \(19 days\); "
                         r".*expires in 19 days", server.log())
        assert 19 * DAY < value(scrape(server), "victoria_tls_certificate_expiry_seconds",
                                certificate="account:desk") <= 20 * DAY
        assert re.search(r'"tls account:desk": \{\s*"ok": true,\s*"detail": "19 days left',
                         server.http_get("/readyz")[1])

        install(TestPki(tmp_path / "stranger", name="Stranger CA").issue("desk", client=True), live)
        server.process.send_signal(signal.SIGHUP)
        server.wait_for_log(r"TLS certificate for account:desk: \S+desk.pem \(issued by CN=Stranger CA\) does not "
                            r"chain to a CA in \S+ca.pem", timeout=15)
        assert 364 * DAY < value(scrape(server), "victoria_tls_certificate_expiry_seconds",
                                 certificate="account:desk") <= 365 * DAY
    finally:
        assert server.stop() == 0, server.log()[-3000:]
