"""``victoria-sip doctor`` checks the TLS certificates Victoria presents and the CA files she trusts (issue 16),
on real PEM files: a good listener passes, soon-to-expire warns, an expired or unknown one fails with the cause."""

import pytest

from tests.integration.test_doctor import finding, run
from tests.support.certificates import TestPki
from tests.support.processes import LOOPBACK, free_port

pytestmark = pytest.mark.integration

LISTENER = """
transport = "tls"
certificate = "{certificate}"
private_key = "{private_key}"
ca_file = "{ca_file}"
"""

CONFIG = """
[sip]
listen = "{listen}"
{listener}
[stt]
provider = "none"

[llm]
host = "http://{loopback}:{closed}"

[metrics]
listen = "off"

[database]
url = "sqlite:///{db}"
"""


def tls_account(name: str, ca_file, issued=None) -> str:
    account = (f'\n[[sip.accounts]]\nname = "{name}"\nregistrar = "sip:{LOOPBACK}:{free_port()}"\nuser = "7000"\n'
               f'password = "x"\nagent = "victoria"\ntransport = "tls"\nca_file = "{ca_file}"\n')
    if issued is not None:
        account += f'certificate = "{issued.certificate}"\nprivate_key = "{issued.private_key}"\n'
    return account


def doctor(tmp_path, listener, ca_file, accounts: str = "", listen_host: str = LOOPBACK) -> str:
    """doctor's output for a config with a TLS listener presenting ``listener`` (none: UDP) and ``accounts``."""
    config = tmp_path / "victoria.toml"
    config.touch(mode=0o600)  # the accounts' passwords are in it
    tls = "" if listener is None else LISTENER.format(certificate=listener.certificate,
                                                      private_key=listener.private_key, ca_file=ca_file)
    config.write_text(CONFIG.format(listen=f"{listen_host}:{free_port()}", listener=tls, loopback=LOOPBACK,
                                    closed=free_port(), db=tmp_path / "calls.db") + accounts)
    result = run("doctor", "--config", str(config), password="x")
    assert "tls " in result.stdout, result.stdout + result.stderr
    return result.stdout


def test_doctor_passes_good_certificates_and_warns_before_expiry(tmp_path):
    pki = TestPki(tmp_path / "pki")
    out = doctor(tmp_path, pki.issue("listener", names=("localhost", LOOPBACK)), pki.ca_file,
                 tls_account("desk", pki.ca_file, pki.issue("desk", days=(-300, 20), client=True))
                 + tls_account("front", pki.ca_file))
    listener = finding(out, "tls listener")
    assert listener.startswith("ok  ") and "CN=localhost, expires " in listener and "WARNING" not in listener
    desk = finding(out, "tls account:desk")
    assert desk.startswith("WARN  ") and "expires in 19 days" in desk and "renew it" in desk, desk
    front = finding(out, "tls account:front")
    assert front.startswith("ok  ") and "CN=localhost" in front, "it presents [sip]'s certificate, inherited"


def test_doctor_checks_the_ca_file_of_a_tls_account_without_a_client_certificate(tmp_path):
    pki = TestPki(tmp_path / "pki")
    not_pem = tmp_path / "not-a-ca.pem"
    not_pem.write_text("this is not a certificate\n")
    out = doctor(tmp_path, None, None, tls_account("front", pki.ca_file) + tls_account("back", not_pem))
    assert "tls listener" not in out, "a UDP listener has no certificate"
    front = finding(out, "tls account:front")
    assert front.startswith("ok  ") and "no client certificate" in front and "1 CA certificate(s)" in front
    back = finding(out, "tls account:back")
    assert back.startswith("FAIL") and "not-a-ca.pem holds no PEM certificate" in back and "fix: set ca_file" in back


def test_doctor_fails_an_expired_unknown_or_misnamed_certificate_naming_each_cause(tmp_path):
    pki = TestPki(tmp_path / "pki")
    stranger = TestPki(tmp_path / "stranger", name="Stranger CA").issue("desk", client=True)
    not_pem = tmp_path / "not-a-ca.pem"
    not_pem.write_text("this is not a certificate\n")
    out = doctor(tmp_path, pki.issue("listener", names=("sip.example",), days=(-90, -2)), pki.ca_file,
                 tls_account("desk", pki.ca_file, stranger) + tls_account("front", not_pem))
    listener = finding(out, "tls listener")
    assert listener.startswith("FAIL") and "expired on" in listener, listener
    assert f"is not valid for {LOOPBACK} (it covers sip.example)" in listener
    assert "fix:" in listener and "SIGHUP" in listener
    desk = finding(out, "tls account:desk")
    assert desk.startswith("FAIL") and "issued by CN=Stranger CA" in desk and "does not chain" in desk, desk
    front = finding(out, "tls account:front")
    assert front.startswith("FAIL") and "not-a-ca.pem holds no PEM certificate" in front, front


def test_doctor_checks_no_name_when_the_listener_listens_on_every_address(tmp_path):
    pki = TestPki(tmp_path / "pki")
    out = doctor(tmp_path, pki.issue("listener", names=("sip.example",)), pki.ca_file, listen_host="0.0.0.0")
    assert finding(out, "tls listener").startswith("ok  "), out
