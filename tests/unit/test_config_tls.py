"""TLS and SRTP settings (issue 16): what is refused at start-up, with the key and the reason."""

from pathlib import Path

import pytest

from tests.support.certificates import TestPki
from victoria_sip.config import load_settings
from victoria_sip.errors import ConfigError
from victoria_sip.settings import SYSTEM_CA_BUNDLE

ENV = {"VICTORIA_ACCOUNT_DESK_PASSWORD": "s3cret"}


@pytest.fixture
def pki(tmp_path) -> TestPki:
    return TestPki(tmp_path / "pki")


def load(tmp_path: Path, text: str):
    path = tmp_path / "victoria.toml"
    path.write_text(text)
    return load_settings(path, environ=ENV)


def refusal(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return caught.value


def account(transport: str, extra: str = "") -> str:
    return ('[[sip.accounts]]\nname = "desk"\nregistrar = "pbx.example"\nuser = "7000"\nagent = "victoria"\n'
            f'transport = "{transport}"\n{extra}')


def test_an_account_inherits_the_listeners_certificates_and_overrides_what_it_sets(tmp_path, pki):
    listener, client = pki.issue("listener"), pki.issue("client", client=True)
    settings = load(tmp_path, f'[sip]\ntransport = "tls"\ncertificate = "{listener.certificate}"\n'
                              f'private_key = "{listener.private_key}"\nca_file = "{pki.ca_file}"\n'
                              + account("tls", f'certificate = "{client.certificate}"\n'
                                               f'private_key = "{client.private_key}"\nsrtp = "mandatory"\n'))
    [desk] = settings.sip.accounts
    assert settings.sip.tls.certificate == str(listener.certificate)
    assert desk.tls.certificate == str(client.certificate) and desk.tls.ca_file == str(pki.ca_file)
    assert desk.tls.verify and desk.srtp == "mandatory" and settings.sip.srtp == "off"


def test_an_account_over_tls_trusts_the_system_cas_unless_told(tmp_path):
    [desk] = load(tmp_path, account("tls")).sip.accounts
    assert desk.tls.trusted_cas == SYSTEM_CA_BUNDLE and desk.tls.certificate == ""


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_srtp_without_tls_is_refused_because_the_keys_would_travel_in_clear(tmp_path, transport):
    error = refusal(tmp_path, account(transport, 'srtp = "optional"\n'))
    assert error.key == "sip.accounts[0].srtp" and 'transport = "tls"' in error.problem
    assert "read them" in error.problem
    error = refusal(tmp_path, '[sip]\nsrtp = "mandatory"\n')
    assert error.key == "sip.srtp"


def test_a_tls_listener_needs_a_certificate(tmp_path):
    error = refusal(tmp_path, '[sip]\ntransport = "tls"\n')
    assert error.key == "sip.certificate" and "private_key" in error.problem


def test_a_key_that_is_not_the_certificates_is_refused(tmp_path, pki):
    one, other = pki.issue("one"), pki.issue("other")
    error = refusal(tmp_path, f'[sip]\ntransport = "tls"\ncertificate = "{one.certificate}"\n'
                              f'private_key = "{other.private_key}"\n')
    assert error.key == "sip.private_key" and "is not the key of" in error.problem


def test_a_private_key_others_can_read_is_refused_with_the_fix(tmp_path, pki):
    issued = pki.issue("listener")
    issued.private_key.chmod(0o644)
    error = refusal(tmp_path, f'[sip]\ntransport = "tls"\ncertificate = "{issued.certificate}"\n'
                              f'private_key = "{issued.private_key}"\n')
    assert error.key == "sip.private_key" and f"chmod 600 {issued.private_key}" in error.problem


def test_missing_files_and_half_pairs_are_refused_by_name(tmp_path, pki):
    issued = pki.issue("listener")
    error = refusal(tmp_path, account("tls", f'ca_file = "{tmp_path / "nowhere.pem"}"\n'))
    assert error.key == "sip.accounts[0].ca_file" and "cannot read" in error.problem
    error = refusal(tmp_path, account("tls", f'certificate = "{issued.certificate}"\n'))
    assert error.key == "sip.accounts[0].private_key" and "go together" in error.problem


def test_verify_must_be_a_boolean(tmp_path):
    error = refusal(tmp_path, account("tls", 'verify = "no"\n'))
    assert error.key == "sip.accounts[0].verify"


def test_a_tls_listener_listens_on_5061_unless_told(tmp_path, pki):
    issued = pki.issue("listener")
    tls = f'transport = "tls"\ncertificate = "{issued.certificate}"\nprivate_key = "{issued.private_key}"\n'
    assert load(tmp_path, "[sip]\n" + tls).sip.listen.port == 5061
    assert load(tmp_path, '[sip]\nlisten = "0.0.0.0:5080"\n' + tls).sip.listen.port == 5080
    assert load(tmp_path, "[sip]\n").sip.listen.port == 5060
