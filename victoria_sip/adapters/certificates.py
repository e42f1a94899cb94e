"""TLS certificate files as an admin sees them: whom a certificate names, until when, and what is wrong with it.

    check = check_certificate("/etc/victoria/sip.pem", "/etc/victoria/sip.key", "/etc/victoria/ca.pem", "pbx.example")
    check.problems   # ("... is not valid for pbx.example (it covers sip.example) ...",)
    check.summary()  # "CN=sip.example, expires 2027-03-01 (400 days)"

Only reads files (``cryptography``); PJSIP reads them again for each new TLS connection, so a check here is what
the next connection will get. ``certificates_in_use`` says which files the SIP settings put in use.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from victoria_sip.errors import VictoriaError
from victoria_sip.settings import SipSettings

RENEW_WARNING_DAYS = 30
SECONDS_PER_DAY = 86400
ANY_ADDRESS = ("0.0.0.0", "::", "")


@dataclass(frozen=True, slots=True)
class CertificateCheck:
    """What ``check_certificate`` found. ``problems`` break TLS; ``warnings`` (renew soon) do not yet."""

    certificate: str
    subject: str = ""
    names: tuple[str, ...] = ()  # the host names and addresses it covers
    not_after: datetime.datetime | None = None
    seconds_left: float | None = None
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def days_left(self) -> int | None:
        return None if self.seconds_left is None else int(self.seconds_left / SECONDS_PER_DAY)

    def summary(self) -> str:
        """``CN=sip.example, expires 2027-03-01 12:00 UTC (400 days)``; what the file holds, good or bad."""
        if self.not_after is None:
            return self.certificate
        if self.seconds_left < 0:
            return f"{self.subject}, expired {self.not_after:%Y-%m-%d %H:%M} UTC"
        return f"{self.subject}, expires {self.not_after:%Y-%m-%d %H:%M} UTC ({self.days_left} days)"


@dataclass(frozen=True, slots=True)
class CertificateInUse:
    """A certificate Victoria presents: ``label`` is "listener" or "account:<name>"."""

    label: str
    certificate: str
    private_key: str
    ca_file: str
    name: str | None = None  # the name PBXs reach it by, when the settings say


def certificates_in_use(sip: SipSettings) -> list[CertificateInUse]:
    """The listener's certificate (with transport "tls") and each TLS account's client certificate."""
    found = []
    if sip.transport == "tls" and sip.tls.certificate:
        name = None if sip.listen.host in ANY_ADDRESS else sip.listen.host
        found.append(CertificateInUse("listener", sip.tls.certificate, sip.tls.private_key, sip.tls.trusted_cas, name))
    for account in sip.accounts:
        if account.transport == "tls" and account.tls.certificate:
            found.append(CertificateInUse(f"account:{account.name}", account.tls.certificate, account.tls.private_key,
                                          account.tls.trusted_cas))
    return found


def check_certificate(certificate: str, private_key: str, ca_file: str, name: str | None = None,
                      now: datetime.datetime | None = None) -> CertificateCheck:
    """Check one certificate file (the leaf first, then any intermediates), its key, its chain to a CA in
    ``ca_file``, its dates and, with ``name`` (a host name or IP address), that it covers that name."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    try:
        chain = _read_certificates(certificate)
    except VictoriaError as exc:
        return CertificateCheck(certificate, problems=(str(exc),))
    leaf = chain[0]
    not_after = leaf.not_valid_after_utc
    seconds_left = (not_after - now).total_seconds()
    names = covered_names(leaf)
    problems = [p for p in (_key_problem(leaf, certificate, private_key),
                            _chain_problem(chain, certificate, ca_file, now),
                            _name_problem(names, certificate, name),
                            _date_problem(leaf, certificate, now)) if p]
    warnings = []
    if 0 < seconds_left < RENEW_WARNING_DAYS * SECONDS_PER_DAY:
        warnings.append(f"{certificate} expires in {int(seconds_left / SECONDS_PER_DAY)} days "
                        f"({not_after:%Y-%m-%d}): renew it, then send Victoria SIGHUP")
    return CertificateCheck(certificate, leaf.subject.rfc4514_string(), names, not_after, seconds_left,
                            tuple(problems), tuple(warnings))


def certificate_expiry(certificate: str) -> datetime.datetime:
    """When the (first) certificate in a PEM file stops being valid; ``VictoriaError`` if it cannot be read."""
    return _read_certificates(certificate)[0].not_valid_after_utc


def trusted_certificates(ca_file: str) -> list[x509.Certificate]:
    """The CA certificates in ``ca_file``; ``VictoriaError`` if it cannot be read or holds none."""
    return _read_certificates(ca_file)


def covered_names(leaf: x509.Certificate) -> tuple[str, ...]:
    """subjectAltName's DNS names and IP addresses; the CN only when there is no subjectAltName, as TLS does."""
    try:
        alt = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return tuple(a.value for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    return tuple(alt.get_values_for_type(x509.DNSName)) + tuple(str(ip) for ip in alt.get_values_for_type(x509.IPAddress))


def _read_certificates(path: str) -> list[x509.Certificate]:
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise VictoriaError(f"cannot read {path}: {exc.strerror}; check the path and the service user's rights") \
            from None
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise VictoriaError(f"{path} holds no PEM certificate (expected '-----BEGIN CERTIFICATE-----'; "
                            "convert DER with `openssl x509 -inform der`)") from None
    return certificates


def _key_problem(leaf: x509.Certificate, certificate: str, private_key: str) -> str | None:
    try:
        with open(private_key, "rb") as file:
            key = serialization.load_pem_private_key(file.read(), password=None)
    except OSError as exc:
        return f"cannot read the private key {private_key}: {exc.strerror}; check the path and the service user's rights"
    except TypeError:
        return f"the private key {private_key} is encrypted; PJSIP needs it without a passphrase"
    except (ValueError, UnsupportedAlgorithm):
        return f"{private_key} holds no PEM private key Victoria can use"
    if _public_der(key.public_key()) != _public_der(leaf.public_key()):
        return f"the private key {private_key} is not the key of {certificate}: install the key it was issued for"
    return None


def _public_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _chain_problem(chain: list[x509.Certificate], certificate: str, ca_file: str,
                   now: datetime.datetime) -> str | None:
    try:
        cas = _read_certificates(ca_file)
    except VictoriaError as exc:
        return f"the CA file: {exc}"
    leaf = chain[0]
    # Checked at a moment the leaf is valid, so an expired leaf is reported once, by its dates, not as a chain
    # problem. Issuers must be CAs (basicConstraints); other extension rules are left to OpenSSL in PJSIP:
    # stricter than the stack that uses the file, this would fail certificates that work.
    moment = min(max(now, leaf.not_valid_before_utc), leaf.not_valid_after_utc)
    permissive = verification.ExtensionPolicy.permit_all()
    issuers = permissive.require_present(x509.BasicConstraints, verification.Criticality.AGNOSTIC, None)
    verifier = (verification.PolicyBuilder().store(verification.Store(cas)).time(moment)
                .extension_policies(ca_policy=issuers, ee_policy=permissive).build_client_verifier())
    try:
        verifier.verify(leaf, chain[1:])
    except verification.VerificationError as exc:
        if moment != now and "not valid at validation time" in str(exc):
            return None  # an issuer not yet valid when the leaf ended: the leaf's dates are the problem to fix
        reason = "" if "candidates exhausted" in str(exc) else f" ({exc})"
        return (f"{certificate} (issued by {leaf.issuer.rfc4514_string()}) does not chain to a CA in {ca_file}"
                f"{reason}: put the CA that issued it in ca_file, and any intermediate after the certificate in "
                f"{certificate}")
    return None


def _name_problem(names: tuple[str, ...], certificate: str, name: str | None) -> str | None:
    if name is None or any(_matches(pattern, name) for pattern in names):
        return None
    return (f"{certificate} is not valid for {name} (it covers {', '.join(names) or 'no name'}): PBXs that "
            f"connect to {name} will refuse it; issue one with {name} in subjectAltName")


def _matches(pattern: str, name: str) -> bool:
    try:
        return ipaddress.ip_address(pattern) == ipaddress.ip_address(name)
    except ValueError:
        pass
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern.startswith("*."):  # a wildcard stands for exactly one label
        return "." in name and name.split(".", 1)[1] == pattern[2:]
    return pattern == name


def _date_problem(leaf: x509.Certificate, certificate: str, now: datetime.datetime) -> str | None:
    if now > leaf.not_valid_after_utc:
        return (f"{certificate} expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: install a renewed "
                "certificate, then send Victoria SIGHUP")
    if now < leaf.not_valid_before_utc:
        return (f"{certificate} is not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC: check this "
                "machine's clock, or wait")
    return None
