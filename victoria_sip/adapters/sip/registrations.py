"""SIP thread: the extensions Victoria registers as. Registration is retried with our own backoff (pjsua's
interval is fixed), re-sent at once when the registrar probe sees the registrar come back, and undone
when draining or stopping."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pjsua2 as pj

from victoria_sip.adapters.sip.register_check import REGISTRATION_HINTS
from victoria_sip.adapters.sip.registrar_probe import RegistrarTarget
from victoria_sip.adapters.sip.shims import PjAccount
from victoria_sip.settings import SipAccountSettings

if TYPE_CHECKING:
    from victoria_sip.domain.ports import Telemetry

log = logging.getLogger("victoria.sip")

TLS_REFUSED_HINT = ("Victoria refused the registrar's TLS certificate: the \"TLS connection to\" line says why; "
                    "check ca_file and that the certificate names the host in registrar (victoria-sip doctor)")
TLS_HANDSHAKE_HINT = ("the TLS handshake with the registrar failed: a protocol version or cipher both sides "
                      "accept (TLS 1.2+), or a client certificate it asks for (certificate, private_key); see "
                      "docs/troubleshooting.md, TLS and SRTP")
RETRY_FIRST_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0


@dataclass
@dataclass
class Registration:
    settings: SipAccountSettings
    account: PjAccount
    registered: bool = False
    unregistering: bool = False  # an unregister (Expires 0) is out: a second one would be refused as busy
    last_code: int = 0
    failures: int = 0
    retry_at: float | None = None


class RegistrationsMixin:
    """Part of ``SipUserAgent``: everything here runs on the SIP thread."""

    _registrations: dict[str, Registration]
    _status: dict[str, bool]
    _stopping: threading.Event
    _draining: bool
    _telemetry: Telemetry

    def _create_registered_account(self, settings: SipAccountSettings) -> PjAccount:
        tls = settings.tls if settings.transport == "tls" else None
        config = self._account_config(settings.aor, settings.srtp, tls)
        registrar = settings.registrar + (f";transport={settings.transport}" if settings.transport != "udp" else "")
        config.regConfig.registrarUri = registrar
        config.regConfig.timeoutSec = settings.expires_seconds
        config.regConfig.retryIntervalSec = 0  # we retry ourselves, with backoff (_retry_registrations)
        config.regConfig.dropCallsOnFail = False
        config.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", "*", settings.auth_user or settings.user, 0, settings.password)
        )
        account = PjAccount(self, settings.name)
        log.info("registering account %r as %s with %s over %s%s", settings.name, settings.aor, settings.registrar,
                 settings.transport.upper(), f", SRTP {settings.srtp}" if settings.srtp != "off" else "")
        account.create(config)
        return account

    def _start_draining(self) -> None:
        self._draining = True
        for registration in self._registrations.values():
            registration.retry_at = None
            if registration.registered:
                log.info("draining: unregistering %r", registration.settings.name)
            self._unregister(registration)

    def _unregister(self, registration: Registration) -> None:
        if not registration.registered or registration.unregistering:
            return
        try:
            registration.account.setRegistration(False)
            registration.unregistering = True
        except pj.Error as exc:
            log.warning("could not unregister %r: %s", registration.settings.name, exc.reason)

    def _registered_any(self) -> bool:
        return any(r.registered or r.unregistering for r in self._registrations.values())

    def on_registration_state(self, account: PjAccount, code: int, reason: str, expiration: int) -> None:
        registration = self._registrations.get(account.name or "")
        if registration is None:
            return
        registration.last_code = code
        if self._stopping.is_set() or self._draining:
            registration.registered = registration.unregistering = False
            self._status[account.name] = False
            self._telemetry.registration_result(account.name, False, 0)
            return
        self._telemetry.registration_result(account.name, 200 <= code < 300 and expiration > 0, code)
        if 200 <= code < 300 and expiration > 0:
            if not registration.registered:
                log.info("account %r registered as %s (expires in %d s)", account.name, registration.settings.aor, expiration)
            registration.registered, registration.failures, registration.retry_at = True, 0, None
        else:
            registration.registered = False
            registration.failures += 1
            delay = min(RETRY_FIRST_SECONDS * 2 ** (registration.failures - 1), RETRY_MAX_SECONDS)
            registration.retry_at = time.monotonic() + delay
            hint = tls_hint(reason) or REGISTRATION_HINTS.get(code, "")
            log.error(
                "account %r: registration as %s with %s failed: %d %s%s; retrying in %.0f s",
                account.name, registration.settings.aor, registration.settings.registrar, code, reason.strip(),
                f" ({hint})" if hint else "", delay,
            )
        self._status[account.name] = registration.registered

    def _retry_registrations(self) -> None:
        now = time.monotonic()
        for registration in self._registrations.values():
            if registration.retry_at is not None and now >= registration.retry_at:
                registration.retry_at = None
                self._register(registration)

    def _register(self, registration: Registration) -> None:
        try:
            registration.account.setRegistration(True)
        except pj.Error as exc:
            self.on_registration_state(registration.account, 503, exc.reason, 0)

    def _on_registrar_reachability(self, target: RegistrarTarget, reachable: bool) -> None:
        # probe thread: hand over to the SIP thread
        if reachable:
            self.submit(lambda: self._reregister_at(target))
        else:
            self.submit(lambda: self._mark_unreachable(target))

    def _reregister_at(self, target: RegistrarTarget) -> None:
        if self._draining:
            return
        for registration in self._registrations.values():
            if RegistrarTarget.of(registration.settings) == target:
                log.info("registrar for %r is back: registering again now", registration.settings.name)
                registration.failures, registration.retry_at = 0, None
                self._register(registration)

    def _mark_unreachable(self, target: RegistrarTarget) -> None:
        for name, registration in self._registrations.items():
            if RegistrarTarget.of(registration.settings) == target:
                registration.registered = False
                self._status[name] = False
                self._telemetry.registration_result(name, False, 0)


def tls_hint(reason: str) -> str:
    """What to check when a registration failed in its TLS handshake (pjsua reports these as 503)."""
    if "ECERTVERIF" in reason:
        return TLS_REFUSED_HINT
    if re.search(r"tlsv1\d? alert|ssl|handshake|cipher", reason, re.IGNORECASE):
        return TLS_HANDSHAKE_HINT
    return ""
