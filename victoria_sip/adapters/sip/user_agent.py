"""Victoria's SIP user agent: one pjsua2 endpoint per process, owned by one thread.

Threading (measured, see NOTES.md):

* **The SIP thread** (``"sip"``) creates the endpoint (so it is pjsua's "main
  thread"), runs with ``threadCnt=0`` + ``mainThreadOnly=True`` and polls
  ``libHandleEvents(10)``. Every SIP callback (incoming call, call and media
  state, registration) therefore runs here, and only here calls pjsua2. Other
  threads never call pjsua2: they ``submit`` a function that this thread runs
  between polls, so no foreign thread needs ``libRegisterThread``.
* **pjmedia's clock thread** calls each call's ``CallMediaPort`` every 20 ms. It
  only copies frames into/out of numpy buffers (``media_port.py``).
* **The application's event loop** gets ``CallHandler`` coroutines posted with
  ``run_coroutine_threadsafe``; it reads and writes audio through the leg's
  ring and playout queue, never through pjsua2.

Shutdown order matters (each step avoids a crash we reproduced): hang up,
unregister, poll until done, destroy media ports explicitly, drop every
``Call``, ``gc.collect()``, ``Account.shutdown()``, ``libDestroy()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pjsua2 as pj

from victoria_sip.adapters.recordings import Recorder
from victoria_sip.adapters.sip import byte_vector
from victoria_sip.adapters.sip.allow_list import InviteAllowList
from victoria_sip.adapters.sip.call_legs import SipCallLeg, SipConsultation
from victoria_sip.adapters.sip.incoming_calls import RTP_STATS_SECONDS, FloodReport, IncomingCallsMixin
from victoria_sip.adapters.sip.registrar_probe import RegistrarProbe, RegistrarTarget
from victoria_sip.adapters.sip.registrations import Registration, RegistrationsMixin
from victoria_sip.adapters.sip.secure_transport import configure_srtp, describe_verify_status, tls_config
from victoria_sip.adapters.sip.shims import PjAccount, PjCall, PjEndpoint, PjLogWriter
from victoria_sip.adapters.sip.transfers import TransfersMixin
from victoria_sip.application.telemetry import NoTelemetry
from victoria_sip.adapters.sip.pjsip_build import pjsip_build
from victoria_sip.settings import SipSettings, TlsSettings, invite_sources
from victoria_sip.domain.ports import CallHandler, Telemetry
from victoria_sip.errors import SipError

log = logging.getLogger("victoria.sip")

CODEC_IDS = {"PCMU": "PCMU/8000/1", "PCMA": "PCMA/8000/1", "G722": "G722/16000/1"}
POLL_MS = 10
SHUTDOWN_GRACE_SECONDS = 3.0
# pjmedia resamples each G.711 call 8 <-> 16 kHz for the bridge, on its one clock thread; quality 8 (the default)
# picks libresample's large filter, ~50 µs a call per 20 ms, the most expensive thing a call does there; 4 picks
# its small filter, ~10 µs (NOTES: Per-call cost). It also sets Speex's quality, which Victoria does not offer.
RESAMPLE_QUALITY = 4


class SipUserAgent(RegistrationsMixin, IncomingCallsMixin, TransfersMixin):
    """The SIP thread and the endpoint's life; what happens on it is split by subject: registration
    (``registrations.py``), answered calls (``incoming_calls.py``), transfers (``transfers.py``)."""

    def __init__(
        self,
        settings: SipSettings,
        handler: CallHandler,
        loop: asyncio.AbstractEventLoop,
        sample_rate: int = 16000,
        registrar_probe_seconds: float = 5.0,
        telemetry: Telemetry | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.settings = settings
        self.build = pjsip_build()  # what the installed PJSIP can take (call slots, I/O queue)
        self._recorder = recorder
        self._telemetry = telemetry or NoTelemetry()
        self._rtp_stats_due = time.monotonic() + RTP_STATS_SECONDS
        self._awaiting_ack = {}
        self._flood_report = FloodReport()
        self.sample_rate = sample_rate
        self._handler = handler
        self._loop = loop
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sip", daemon=True)
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._draining = False  # SIP thread: no new calls, no registration; calls in progress go on
        self._startup_error: BaseException | None = None
        self._endpoint: pj.Endpoint | None = None
        self._log_writer = PjLogWriter()
        self._direct: PjAccount | None = None
        self._registrations: dict[str, Registration] = {}
        self._legs: dict[int, SipCallLeg] = {}  # pjsua call id -> leg, answered calls
        self._consultations: dict[int, SipConsultation] = {}  # pjsua call id -> calls we placed (attended transfer)
        self._rejected: dict[int, PjCall] = {}  # kept alive until pjsua reports them gone
        self._status: dict[str, bool] = {}
        self._transports: dict[str, int] = {}  # "udp" / "tcp" -> pjsua transport id
        self._tls_transports: dict[TlsSettings, int] = {}  # one TLS transport per set of certificates
        self._invite_sources = invite_sources(settings)
        self._allowed = InviteAllowList.from_entries(self._invite_sources)
        self._probe = RegistrarProbe(
            [RegistrarTarget.of(a) for a in settings.accounts],
            self._on_registrar_reachability,
            interval=registrar_probe_seconds,
        )

    # --- any thread -------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        """Start the SIP thread; returns once the transport listens. Raises ``SipError``."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise SipError(f"the SIP stack did not start within {timeout:.0f} s")
        if self._startup_error is not None:
            self._thread.join(timeout)
            raise self._startup_error
        self._probe.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Hang up, unregister and destroy the endpoint. Blocks until done (or ``timeout``)."""
        self._probe.stop()
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("the SIP thread did not stop within %.0f s", timeout)

    def drain(self) -> None:
        """Take no more calls: unregister every account (the PBX stops sending us calls) and answer new
        INVITEs with 503. Calls in progress go on. Returns at once; the SIP thread does the work."""
        self._probe.stop()
        self.submit(self._start_draining)

    def submit(self, command: Callable[[], None]) -> None:
        """Run ``command`` on the SIP thread between polls."""
        self._commands.put(command)

    def registration_status(self) -> dict[str, bool]:
        """Account name -> registered, as last reported."""
        return dict(self._status)

    # --- SIP thread: lifecycle --------------------------------------------

    def _run(self) -> None:
        try:
            self._start_endpoint()
        except BaseException as exc:  # noqa: BLE001 — handed to start()'s caller
            self._startup_error = exc if isinstance(exc, SipError) else SipError(f"the SIP stack failed to start: {exc}")
            self._destroy_endpoint()
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stopping.is_set():
                self._endpoint.libHandleEvents(POLL_MS)
                self._run_commands()
                self._retry_registrations()
                self._sample_rtp_stats()
                self._drop_calls_never_acked()
        finally:
            self._shutdown()

    def _start_endpoint(self) -> None:
        settings = self.settings
        endpoint = self._endpoint = PjEndpoint(self)
        with _stdout_to_devnull():  # pjlib prints its banner to stdout before our log writer is installed
            endpoint.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = True
        # pjsua's own limit stays above ours, so that Victoria, not pjsua, answers busy (and logs it): calls she
        # has hung up keep their pjsua slot until their BYE completes
        config.uaConfig.maxCalls = self.build.call_slots
        config.uaConfig.userAgent = "Victoria-SIP"
        config.logConfig.writer = self._log_writer
        config.logConfig.level = 3
        config.logConfig.consoleLevel = 3
        config.medConfig.clockRate = self.sample_rate
        config.medConfig.sndClockRate = self.sample_rate
        config.medConfig.audioFramePtime = 20
        config.medConfig.ptime = 20
        config.medConfig.noVad = True
        config.medConfig.ecTailLen = 0
        config.medConfig.quality = RESAMPLE_QUALITY
        endpoint.libInit(config)
        endpoint.audDevManager().setNullDev()
        if not byte_vector.select_fast_path():
            log.warning("media frames use the slow copy path; capacity per core is much lower")
        self._set_codecs(settings.codecs)
        self._create_transports()
        endpoint.libStart()
        self._direct = self._create_direct_account()
        for account in settings.accounts:
            self._registrations[account.name] = Registration(account, self._create_registered_account(account))
            self._status[account.name] = False
        log.info(
            "SIP listening on %s %s; codecs %s; up to %d calls; %s",
            settings.transport, settings.listen, ",".join(settings.codecs), settings.max_concurrent_calls,
            self.build.describe(),
        )
        log.info("who may call: INVITEs from %s; any other source hears 403 (more: serve --allow-invites-from "
                 "192.168.1.0/24, or [sip] allow_invites_from)", ", ".join(self._invite_sources))

    def _set_codecs(self, codecs: tuple[str, ...]) -> None:
        for codec in self._endpoint.codecEnum2():
            self._endpoint.codecSetPriority(codec.codecId, 0)
        for rank, name in enumerate(codecs):
            self._endpoint.codecSetPriority(CODEC_IDS[name], 255 - rank)

    def _create_transports(self) -> None:
        """The listener's transport on ``listen``; beside it, those the accounts need. UDP and TCP may share the
        port number, TCP and TLS may not: a TLS listener's accounts over TCP (and every TLS transport other than
        the listener) take a port of the system's choosing. Their registrations carry it in the Contact."""
        settings = self.settings
        for kind in ("udp", "tcp"):
            if kind == settings.transport or any(a.transport == kind for a in settings.accounts):
                port = 0 if kind == "tcp" and settings.transport == "tls" else settings.listen.port
                self._transports[kind] = self._create_transport(kind, port)
        tls_sets = ([settings.tls] if settings.transport == "tls" else []) + [
            a.tls for a in settings.accounts if a.transport == "tls"]
        for tls in dict.fromkeys(tls_sets):
            port = settings.listen.port if settings.transport == "tls" and tls == settings.tls else 0
            self._tls_transports[tls] = self._create_transport("tls", port, tls)
            if not tls.verify:
                log.warning("TLS with verify = false: the PBX's certificate is not checked, so anyone on the path "
                            "can pose as the PBX and read the calls (set ca_file instead)")

    def _create_transport(self, transport: str, port: int, tls: TlsSettings | None = None) -> int:
        listen = self.settings.listen
        config = pj.TransportConfig()
        config.port = port
        if listen.host not in ("0.0.0.0", "::"):
            config.boundAddress = listen.host
        if self.settings.public_address:
            config.publicAddress = self.settings.public_address
        if tls is not None:
            config.tlsConfig = tls_config(tls)
        kind = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP, "tls": pj.PJSIP_TRANSPORT_TLS}[transport]
        try:
            return self._endpoint.transportCreate(kind, config)
        except pj.Error as exc:
            where = f"{listen.host}:{port}" if port else listen.host
            raise SipError(f"cannot listen for SIP on {transport} {where}: {exc.reason.strip()} (is another SIP "
                           "service using the port? over TLS: are the certificate, key and ca_file readable PEM?)"
                           ) from None

    def _account_config(self, id_uri: str, srtp: str, tls: TlsSettings | None = None) -> pj.AccountConfig:
        config = pj.AccountConfig()
        config.idUri = id_uri
        media = config.mediaConfig.transportConfig
        media.port = self.settings.rtp_port
        media.portRange = self.settings.rtp_port_range
        if self.settings.listen.host not in ("0.0.0.0", "::"):
            media.boundAddress = self.settings.listen.host
        if self.settings.public_address:
            media.publicAddress = self.settings.public_address
        configure_srtp(config.mediaConfig, srtp)
        if tls is not None:  # its requests (REGISTER, consultation calls) leave over its own TLS transport
            config.sipConfig.transportId = self._tls_transports[tls]
        return config

    def on_tls_refused(self, remote: str, status: int, messages: list[str]) -> None:
        """A TLS connection Victoria opened was closed because the far end's certificate failed the check."""
        log.error("TLS connection to %s refused: %s (doctor checks the files: victoria-sip doctor)",
                  remote, describe_verify_status(status, messages))

    def _contact_host(self) -> str:
        host = self.settings.public_address or self.settings.listen.host
        return "127.0.0.1" if host in ("0.0.0.0", "::") else host

    def _create_direct_account(self) -> PjAccount:
        # Answers INVITEs that match no registered extension: a PBX trunk pointing at our address.
        settings = self.settings
        config = self._account_config(f"sip:victoria@{self._contact_host()}:{settings.listen.port}", settings.srtp)
        account = PjAccount(self, None)
        account.create(config, True)
        return account

    def _shutdown(self) -> None:
        endpoint = self._endpoint
        for leg in list(self._legs.values()):
            self.hangup(leg)
        for consultation in list(self._consultations.values()):
            self.hangup_consultation(consultation)
        for registration in self._registrations.values():
            self._unregister(registration)
        deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        while time.monotonic() < deadline and (self._legs or self._consultations or self._rejected
                                               or self._registered_any()):
            endpoint.libHandleEvents(POLL_MS)
        for leg in [*self._legs.values(), *self._consultations.values()]:
            leg.release()
        self._legs.clear()
        self._consultations.clear()
        self._rejected.clear()
        self._destroy_endpoint()
        log.info("SIP stopped")

    def _destroy_endpoint(self) -> None:
        sys.last_traceback = sys.last_value = sys.last_type = None  # may pin a Call (crash at libDestroy)
        gc.collect()
        for account in [r.account for r in self._registrations.values()] + [self._direct]:
            if account is not None:
                account.shutdown()
        self._registrations.clear()
        self._direct = None
        gc.collect()
        if self._endpoint is not None:
            self._endpoint.libDestroy()
            self._endpoint = None

    def _run_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                command()
            except Exception:
                log.exception("SIP command failed")

    def _post(self, coroutine: Coroutine[Any, Any, None]) -> None:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        future.add_done_callback(_log_handler_failure)


@contextlib.contextmanager
def _stdout_to_devnull() -> Iterator[None]:
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _log_handler_failure(future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("call handler failed", exc_info=future.exception())
