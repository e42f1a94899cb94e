"""check_certificate on real PEM files from a test CA: each fault is found and named so an admin can act on it."""

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.certificates import TestPki
from victoria_sip.adapters.certificates import certificate_expiry, certificates_in_use, check_certificate
from victoria_sip.settings import HostPort, SipAccountSettings, SipSettings, TlsSettings


def test_a_good_certificate_passes_and_says_what_it_covers(tmp_path):
    pki = TestPki(tmp_path)
    issued = pki.issue("sip", names=("sip.example", "127.0.0.1"))
    check = check_certificate(str(issued.certificate), str(issued.private_key), str(pki.ca_file), "sip.example")
    assert check.ok and check.problems == () and check.warnings == (), check
    assert check.subject == "CN=sip.example"
    assert check.names == ("sip.example", "127.0.0.1")
    assert 363 <= check.days_left <= 365
    assert check.summary().startswith("CN=sip.example, expires ")
    assert check_certificate(str(issued.certificate), str(issued.private_key), str(pki.ca_file), "127.0.0.1").ok


def test_a_certificate_from_an_unknown_ca_is_named_as_such(tmp_path):
    pki = TestPki(tmp_path / "ours")
    stranger = TestPki(tmp_path / "theirs", name="Stranger CA").issue("sip")
    check = check_certificate(str(stranger.certificate), str(stranger.private_key), str(pki.ca_file))
    [problem] = check.problems
    assert "does not chain to a CA in" in problem and str(pki.ca_file) in problem
    assert "issued by CN=Stranger CA" in problem


def test_a_name_the_certificate_does_not_cover_is_named(tmp_path):
    pki = TestPki(tmp_path)
    issued = pki.issue("sip", names=("sip.example",))
    check = check_certificate(str(issued.certificate), str(issued.private_key), str(pki.ca_file), "pbx.example")
    [problem] = check.problems
    assert "is not valid for pbx.example (it covers sip.example)" in problem


def test_a_wildcard_covers_one_label_only(tmp_path):
    pki = TestPki(tmp_path)
    issued = pki.issue("sip", names=("*.example.org",))
    check = lambda name: check_certificate(str(issued.certificate), str(issued.private_key), str(pki.ca_file), name)
    assert check("pbx.example.org").ok
    assert not check("a.pbx.example.org").ok and not check("example.org").ok


def test_an_expired_certificate_is_named_by_its_date_not_as_a_chain_fault(tmp_path):
    pki = TestPki(tmp_path)
    old = pki.issue("old", days=(-90, -2))  # ended before the CA began: no moment when both were valid
    check = check_certificate(str(old.certificate), str(old.private_key), str(pki.ca_file))
    [problem] = check.problems
    assert "expired on" in problem and "SIGHUP" in problem
    assert check.seconds_left < 0 and check.summary().startswith("CN=localhost, expired ")


def test_a_certificate_not_yet_valid_is_named(tmp_path):
    pki = TestPki(tmp_path)
    later = pki.issue("later", days=(2, 30))
    [problem] = check_certificate(str(later.certificate), str(later.private_key), str(pki.ca_file)).problems
    assert "is not valid before" in problem and "clock" in problem


def test_a_key_that_is_not_the_certificates_is_named(tmp_path):
    pki = TestPki(tmp_path)
    one, other = pki.issue("one"), pki.issue("other")
    [problem] = check_certificate(str(one.certificate), str(other.private_key), str(pki.ca_file)).problems
    assert f"the private key {other.private_key} is not the key of {one.certificate}" in problem


def test_twenty_days_left_is_a_warning_not_a_problem(tmp_path):
    pki = TestPki(tmp_path)
    soon = pki.issue("soon", days=(-300, 20))
    check = check_certificate(str(soon.certificate), str(soon.private_key), str(pki.ca_file))
    assert check.ok
    [warning] = check.warnings
    assert "expires in 19 days" in warning or "expires in 20 days" in warning
    assert "renew" in warning


def test_files_that_are_missing_or_not_pem_are_named(tmp_path):
    pki = TestPki(tmp_path)
    issued = pki.issue("sip")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello\n")
    [problem] = check_certificate(str(tmp_path / "none.pem"), str(issued.private_key), str(pki.ca_file)).problems
    assert "cannot read" in problem and "none.pem" in problem
    [problem] = check_certificate(str(garbage), str(issued.private_key), str(pki.ca_file)).problems
    assert "garbage.pem holds no PEM certificate" in problem
    [problem] = check_certificate(str(issued.certificate), str(garbage), str(pki.ca_file)).problems
    assert "garbage.pem holds no PEM private key" in problem
    [problem] = check_certificate(str(issued.certificate), str(issued.private_key), str(garbage)).problems
    assert problem.startswith("the CA file:") and "garbage.pem holds no PEM certificate" in problem


def test_an_intermediate_after_the_certificate_in_its_file_completes_the_chain(tmp_path):
    root_key, root = _ca("Root CA")
    intermediate_key, intermediate = _ca("Intermediate CA", issuer=(root_key, root))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _signed(x509.CertificateBuilder().subject_name(_name("sip.example")).public_key(leaf_key.public_key())
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("sip.example")]), critical=False),
                   intermediate_key, intermediate.subject)
    ca_file, alone, with_chain, key = (tmp_path / n for n in ("ca.pem", "alone.pem", "chain.pem", "leaf.key"))
    ca_file.write_bytes(_pem(root))
    alone.write_bytes(_pem(leaf))
    with_chain.write_bytes(_pem(leaf) + _pem(intermediate))
    key.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    assert check_certificate(str(with_chain), str(key), str(ca_file), "sip.example").ok
    [problem] = check_certificate(str(alone), str(key), str(ca_file)).problems
    assert "issued by CN=Intermediate CA" in problem and "does not chain" in problem


def test_certificate_expiry_reads_only_the_date(tmp_path):
    issued = TestPki(tmp_path).issue("sip", days=(-1, 10))
    left = certificate_expiry(str(issued.certificate)) - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(days=9) < left <= datetime.timedelta(days=10)


def test_certificates_in_use_are_the_tls_listeners_and_the_tls_accounts_client_certificates():
    tls = TlsSettings("/c/listener.pem", "/c/listener.key", "/c/ca.pem")
    client = TlsSettings("/c/desk.pem", "/c/desk.key")
    accounts = (SipAccountSettings("desk", "sip:pbx", "7000", "x", "front", transport="tls", tls=client),
                SipAccountSettings("plain", "sip:pbx", "7001", "x", "front"),
                SipAccountSettings("nocert", "sip:pbx", "7002", "x", "front", transport="tls"))
    found = certificates_in_use(SipSettings(HostPort("sip.example", 5061), "tls", accounts=accounts, tls=tls))
    assert [(c.label, c.certificate, c.ca_file, c.name) for c in found] == [
        ("listener", "/c/listener.pem", "/c/ca.pem", "sip.example"),
        ("account:desk", "/c/desk.pem", "/etc/ssl/certs/ca-certificates.crt", None)]
    anywhere = certificates_in_use(SipSettings(HostPort("0.0.0.0", 5061), "tls", tls=tls))
    assert anywhere[0].name is None, "no name to check when listening on every address"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str, issuer=None):
    key = ec.generate_private_key(ec.SECP256R1())
    signer_key, signer = issuer or (key, None)
    builder = (x509.CertificateBuilder().subject_name(_name(common_name)).public_key(key.public_key())
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    return key, _signed(builder, signer_key, signer.subject if signer else _name(common_name))


def _signed(builder: x509.CertificateBuilder, key, issuer: x509.Name) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (builder.issuer_name(issuer).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=90))
            .sign(key, hashes.SHA256()))


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)
