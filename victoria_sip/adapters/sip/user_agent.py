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
from dataclasses import dataclass
from typing import Any

import numpy as np
import pjsua2 as pj

from victoria_sip.adapters.recordings import Recorder, Recording
from victoria_sip.adapters.sip import byte_vector
from victoria_sip.adapters.sip.allow_list import InviteAllowList
from victoria_sip.adapters.sip.media_port import CallMediaPort, destroy_port
from victoria_sip.adapters.sip.register_check import REGISTRATION_HINTS
from victoria_sip.adapters.sip.registrar_probe import RegistrarProbe
from victoria_sip.adapters.sip.shims import PjAccount, PjCall, PjLogWriter
from victoria_sip.application.telemetry import NoTelemetry
from victoria_sip.audio.playout import PlayoutQueue
from victoria_sip.audio.resample import resample
from victoria_sip.audio.ring_buffer import SampleRing
from victoria_sip.config import PJSUA_CALL_SLOTS, SipAccountSettings, SipSettings, invite_sources, registrar_target
from victoria_sip.domain import CallId, EndReason, PhoneNumber
from victoria_sip.domain.ports import CallHandler, SpeechAudio, Telemetry
from victoria_sip.errors import SipError

log = logging.getLogger("victoria.sip")

CODEC_IDS = {"PCMU": "PCMU/8000/1", "PCMA": "PCMA/8000/1", "G722": "G722/16000/1"}
POLL_MS = 10
RING_SECONDS = 10
RETRY_FIRST_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0
RTP_STATS_SECONDS = 2.0  # how often each call's inbound RTP statistics go to telemetry
SHUTDOWN_GRACE_SECONDS = 3.0


@dataclass
class _Registration:
    settings: SipAccountSettings
    account: PjAccount
    registered: bool = False
    unregistering: bool = False  # an unregister (Expires 0) is out: a second one would be refused as busy
    last_code: int = 0
    failures: int = 0
    retry_at: float | None = None


class SipCallLeg:
    """One answered call's media, as the application sees it (the ``CallLeg`` port)."""

    def __init__(self, agent: SipUserAgent, pj_call: PjCall, caller: str, callee: str, account: str | None,
                 agent_name: str) -> None:
        self.call_id = CallId.new()
        self.agent_name = agent_name  # routed once, when the INVITE came in
        self.caller = caller
        self.callee = callee
        self.account = account
        self.sample_rate = agent.sample_rate
        self.codec = ""
        self.inbound = SampleRing(self.sample_rate * RING_SECONDS)
        self.playout = PlayoutQueue(self.sample_rate // 50)
        self.port: CallMediaPort | None = None
        self.confirmed = False
        self.answered = False
        self.media_index: int | None = None
        self.transferred = False  # the caller was put through (final NOTIFY 2xx)
        self.recording: Recording | None = None
        self.rtp_counted = (0, 0, 0)  # inbound packets, lost, discarded: already reported to telemetry
        self.hangup_requested = False
        self._final_stats = (0, 0)
        self._agent = agent
        self._pj_call: PjCall | None = pj_call

    def read_audio(self) -> bytes:
        return self.inbound.pop().tobytes()

    def play(self, audio: SpeechAudio, mark: int | None = None) -> None:
        samples = np.frombuffer(audio.pcm, dtype="<i2")
        self.playout.enqueue(resample(samples, audio.sample_rate, self.sample_rate), mark)

    def playout_started(self, mark: int) -> float | None:
        return self.playout.started_at(mark)

    def stop_playout(self) -> None:
        self.playout.clear()

    def playout_pending(self) -> bool:
        return len(self.playout) > 0

    def media_stats(self) -> tuple[int, int]:
        port = self.port
        return (port.frames_received, port.frames_sent) if port else self._final_stats

    def transfer(self, target: str) -> None:
        self._agent.submit(lambda: self._agent.transfer(self, target))

    def consult(self, target: str) -> SipConsultation:
        consultation = SipConsultation(self._agent, self, target)
        self._agent.submit(lambda: self._agent.place_consultation(consultation))
        return consultation

    def transfer_to_consultation(self, consultation: SipConsultation) -> None:
        self._agent.submit(lambda: self._agent.transfer_replacing(self, consultation))

    def recording_path(self) -> str | None:
        return str(self.recording.path) if self.recording else None

    def hangup(self) -> None:
        self._agent.submit(lambda: self._agent.hangup(self))

    # SIP thread only
    def pj_call(self) -> PjCall | None:
        return self._pj_call

    def release(self) -> None:
        if self.port is not None:
            self._final_stats = self.media_stats()
            port, self.port = self.port, None
            destroy_port(port)
        self._pj_call = None


class SipConsultation:
    """The call Victoria places to an attended transfer's target (the ``ConsultationLeg`` port): she speaks
    into it and presses keys; what the target says is not listened to."""

    def __init__(self, agent: SipUserAgent, leg: SipCallLeg, target: str) -> None:
        self.leg = leg  # the caller's call it is made for
        self.target = target
        self.playout = PlayoutQueue(agent.sample_rate // 50)
        self.inbound = SampleRing(agent.sample_rate)  # filled by the media port, never read: oldest dropped
        self.port: CallMediaPort | None = None
        self.confirmed = False
        self.reported = False  # consultation_answered has been posted
        self._agent = agent
        self._pj_call: PjCall | None = None

    def play(self, audio: SpeechAudio) -> None:
        samples = np.frombuffer(audio.pcm, dtype="<i2")
        self.playout.enqueue(resample(samples, audio.sample_rate, self._agent.sample_rate))

    def playout_pending(self) -> bool:
        return len(self.playout) > 0

    def send_digits(self, digits: str) -> None:
        self._agent.submit(lambda: self._agent.send_digits(self, digits))

    def hangup(self) -> None:
        self._agent.submit(lambda: self._agent.hangup_consultation(self))

    # SIP thread only
    def pj_call(self) -> PjCall | None:
        return self._pj_call

    def attach(self, pj_call: PjCall) -> None:
        self._pj_call = pj_call

    def release(self) -> None:
        if self.port is not None:
            port, self.port = self.port, None
            destroy_port(port)
        self.playout.clear()  # nobody will play it: the application must not wait for it
        self._pj_call = None


class SipUserAgent:
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
        self._recorder = recorder
        self._telemetry = telemetry or NoTelemetry()
        self._rtp_stats_due = time.monotonic() + RTP_STATS_SECONDS
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
        self._registrations: dict[str, _Registration] = {}
        self._legs: dict[int, SipCallLeg] = {}  # pjsua call id -> leg, answered calls
        self._consultations: dict[int, SipConsultation] = {}  # pjsua call id -> calls we placed (attended transfer)
        self._rejected: dict[int, PjCall] = {}  # kept alive until pjsua reports them gone
        self._status: dict[str, bool] = {}
        self._invite_sources = invite_sources(settings)
        self._allowed = InviteAllowList.from_entries(self._invite_sources)
        self._probe = RegistrarProbe(
            [registrar_target(a.registrar) for a in settings.accounts],
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
        finally:
            self._shutdown()

    def _start_endpoint(self) -> None:
        settings = self.settings
        endpoint = self._endpoint = pj.Endpoint()
        with _stdout_to_devnull():  # pjlib prints its banner to stdout before our log writer is installed
            endpoint.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = True
        config.uaConfig.maxCalls = PJSUA_CALL_SLOTS  # the wheel's compile-time cap; we answer busy below it
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
        endpoint.libInit(config)
        endpoint.audDevManager().setNullDev()
        if not byte_vector.select_fast_path():
            log.warning("media frames use the slow copy path; capacity per core is much lower")
        self._set_codecs(settings.codecs)
        for transport in sorted({settings.transport, *(a.transport for a in settings.accounts)}):
            self._create_transport(transport)
        endpoint.libStart()
        self._direct = self._create_direct_account()
        for account in settings.accounts:
            self._registrations[account.name] = _Registration(account, self._create_registered_account(account))
            self._status[account.name] = False
        log.info(
            "SIP listening on %s %s; codecs %s; up to %d calls",
            settings.transport, settings.listen, ",".join(settings.codecs), settings.max_concurrent_calls,
        )
        log.info("who may call: INVITEs from %s; any other source hears 403 (more: serve --allow-invites-from "
                 "192.168.1.0/24, or [sip] allow_invites_from)", ", ".join(self._invite_sources))

    def _set_codecs(self, codecs: tuple[str, ...]) -> None:
        for codec in self._endpoint.codecEnum2():
            self._endpoint.codecSetPriority(codec.codecId, 0)
        for rank, name in enumerate(codecs):
            self._endpoint.codecSetPriority(CODEC_IDS[name], 255 - rank)

    def _create_transport(self, transport: str) -> None:
        listen = self.settings.listen
        config = pj.TransportConfig()
        config.port = listen.port
        if listen.host not in ("0.0.0.0", "::"):
            config.boundAddress = listen.host
        if self.settings.public_address:
            config.publicAddress = self.settings.public_address
        kind = pj.PJSIP_TRANSPORT_TCP if transport == "tcp" else pj.PJSIP_TRANSPORT_UDP
        try:
            self._endpoint.transportCreate(kind, config)
        except pj.Error as exc:
            raise SipError(f"cannot listen for SIP on {transport} {listen}: {exc.reason.strip()} (is another SIP service using the port?)") from None

    def _account_config(self, id_uri: str) -> pj.AccountConfig:
        config = pj.AccountConfig()
        config.idUri = id_uri
        media = config.mediaConfig.transportConfig
        media.port = self.settings.rtp_port
        media.portRange = self.settings.rtp_port_range
        if self.settings.listen.host not in ("0.0.0.0", "::"):
            media.boundAddress = self.settings.listen.host
        if self.settings.public_address:
            media.publicAddress = self.settings.public_address
        return config

    def _contact_host(self) -> str:
        host = self.settings.public_address or self.settings.listen.host
        return "127.0.0.1" if host in ("0.0.0.0", "::") else host

    def _create_direct_account(self) -> PjAccount:
        # Answers INVITEs that match no registered extension: a PBX trunk pointing at our address.
        config = self._account_config(f"sip:victoria@{self._contact_host()}:{self.settings.listen.port}")
        account = PjAccount(self, None)
        account.create(config, True)
        return account

    def _create_registered_account(self, settings: SipAccountSettings) -> PjAccount:
        config = self._account_config(settings.aor)
        registrar = settings.registrar + (";transport=tcp" if settings.transport == "tcp" else "")
        config.regConfig.registrarUri = registrar
        config.regConfig.timeoutSec = settings.expires_seconds
        config.regConfig.retryIntervalSec = 0  # we retry ourselves, with backoff (_retry_registrations)
        config.regConfig.dropCallsOnFail = False
        config.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", "*", settings.auth_user or settings.user, 0, settings.password)
        )
        account = PjAccount(self, settings.name)
        log.info("registering account %r as %s with %s", settings.name, settings.aor, settings.registrar)
        account.create(config)
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

    def _start_draining(self) -> None:
        self._draining = True
        for registration in self._registrations.values():
            registration.retry_at = None
            if registration.registered:
                log.info("draining: unregistering %r", registration.settings.name)
            self._unregister(registration)

    def _unregister(self, registration: _Registration) -> None:
        if not registration.registered or registration.unregistering:
            return
        try:
            registration.account.setRegistration(False)
            registration.unregistering = True
        except pj.Error as exc:
            log.warning("could not unregister %r: %s", registration.settings.name, exc.reason)

    def _registered_any(self) -> bool:
        return any(r.registered or r.unregistering for r in self._registrations.values())

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

    # --- SIP thread: registration -----------------------------------------

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
            hint = REGISTRATION_HINTS.get(code, "")
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

    def _register(self, registration: _Registration) -> None:
        try:
            registration.account.setRegistration(True)
        except pj.Error as exc:
            self.on_registration_state(registration.account, 503, exc.reason, 0)

    def _on_registrar_reachability(self, target: tuple[str, int], reachable: bool) -> None:
        # probe thread: hand over to the SIP thread
        if reachable:
            self.submit(lambda: self._reregister_at(target))
        else:
            self.submit(lambda: self._mark_unreachable(target))

    def _reregister_at(self, target: tuple[str, int]) -> None:
        if self._draining:
            return
        for registration in self._registrations.values():
            if registrar_target(registration.settings.registrar) == target:
                log.info("registrar for %r is back: registering again now", registration.settings.name)
                registration.failures, registration.retry_at = 0, None
                self._register(registration)

    def _mark_unreachable(self, target: tuple[str, int]) -> None:
        for name, registration in self._registrations.items():
            if registrar_target(registration.settings.registrar) == target:
                registration.registered = False
                self._status[name] = False
                self._telemetry.registration_result(name, False, 0)

    # --- SIP thread: calls ------------------------------------------------

    def on_incoming_call(self, account: PjAccount, pj_call_id: int, source: str) -> None:
        pj_call = PjCall(self, account, pj_call_id)
        if not self._allowed.allows(source):  # before routing: a scanner learns nothing, costs nothing
            self._allowed.log_refusal(source, account.name or "direct")
            self._telemetry.invite_refused("source")
            self._rejected[pj_call_id] = pj_call
            self._answer(pj_call, 403)
            return
        info = pj_call.getInfo()
        caller = info.remoteUri
        callee = account.name and self._registrations[account.name].settings.user or PhoneNumber.from_sip_uri(info.localUri).value
        where = f"account {account.name!r}" if account.name else "direct"
        agent = self._handler.route(callee, account.name)
        if self._stopping.is_set() or self._draining:
            log.info("call from %s to %s refused with 503: shutting down", caller, callee)
            self._reject(pj_call, 503, caller, callee, EndReason.SHUTDOWN)
        elif agent is None:
            log.warning("call from %s to %s (%s, from %s): no agent answers it; 404", caller, callee, where, source)
            self._reject(pj_call, 404, caller, callee, EndReason.NO_ROUTE)
        elif len(self._legs) >= self.settings.max_concurrent_calls:
            log.warning(
                "call from %s to %s rejected with %d: already %d calls (max_concurrent_calls)",
                caller, callee, self.settings.busy_response, len(self._legs),
            )
            self._reject(pj_call, self.settings.busy_response, caller, callee, EndReason.BUSY)
        else:
            leg = SipCallLeg(self, pj_call, caller, callee, account.name, agent)
            self._legs[info.id] = leg
            log.info("call %s: incoming from %s to %s (%s, from %s), agent %r", leg.call_id, caller, callee, where, source, agent)
            self._answer(pj_call, 180)
            self._answer(pj_call, 200)

    def _answer(self, pj_call: PjCall, code: int) -> None:
        param = pj.CallOpParam()
        param.statusCode = code
        pj_call.answer(param)

    def _reject(self, pj_call: PjCall, code: int, caller: str, callee: str, reason: EndReason) -> None:
        self._rejected[pj_call.getId()] = pj_call
        self._answer(pj_call, code)
        self._post(self._handler.call_rejected(CallId.new(), caller, callee, reason))

    def on_call_media_state(self, pj_call: PjCall) -> None:
        info = pj_call.getInfo()
        if info.id in self._consultations:
            self._consultation_media(self._consultations[info.id], pj_call, info)
            return
        leg = self._legs.get(info.id)
        if leg is None:
            return
        for media_info in info.media:
            if media_info.type != pj.PJMEDIA_TYPE_AUDIO or media_info.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            try:
                call_media = pj_call.getAudioMedia(media_info.index)
            except pj.Error as exc:  # an offer pjsua calls audio but cannot bridge: try the next stream
                log.warning("call %s: media stream %d unusable: %s", leg.call_id, media_info.index, exc.reason.strip())
                continue
            if leg.port is None:
                if self._recorder is not None:
                    leg.recording = self._recorder.begin(leg.call_id.value, self.sample_rate)
                tap = leg.recording.tap if leg.recording else None
                leg.port = CallMediaPort(f"call{info.id}", self.sample_rate, leg.inbound, leg.playout, tap)
            call_media.startTransmit(leg.port)
            leg.port.startTransmit(call_media)
            if not leg.answered:
                leg.answered = True
                leg.media_index = media_info.index
                leg.codec = pj_call.getStreamInfo(media_info.index).codecName
                log.info("call %s: media up (%s)", leg.call_id, leg.codec)
                self._post(self._handler.call_answered(leg, leg.agent_name))
            return

    def transfer(self, leg: SipCallLeg, target: str) -> None:
        pj_call = leg.pj_call()
        if pj_call is None:
            return
        log.info("call %s: transferring to %s (REFER)", leg.call_id, target)
        try:
            pj_call.xfer(target, pj.CallOpParam(True))
        except pj.Error as exc:
            log.warning("call %s: transfer failed: %s", leg.call_id, exc.reason)
            self._post(self._handler.transfer_finished(leg.call_id, 500, exc.reason))

    # --- SIP thread: attended transfer ------------------------------------

    def place_consultation(self, consultation: SipConsultation) -> None:
        """Call an attended transfer's target from the account the caller came in on."""
        leg = consultation.leg
        registration = self._registrations.get(leg.account or "")
        account = registration.account if registration is not None else self._direct
        pj_call = PjCall(self, account, pj.PJSUA_INVALID_ID)
        log.info("call %s: calling %s to announce the caller (attended transfer)", leg.call_id, consultation.target)
        try:
            pj_call.makeCall(consultation.target, pj.CallOpParam(True))
        except pj.Error as exc:
            log.warning("call %s: could not call %s: %s", leg.call_id, consultation.target, exc.reason.strip())
            consultation.reported = True
            self._post(self._handler.consultation_answered(leg.call_id, 500, exc.reason.strip()))
            return
        consultation.attach(pj_call)
        self._consultations[pj_call.getId()] = consultation

    def _consultation_media(self, consultation: SipConsultation, pj_call: PjCall, info: pj.CallInfo) -> None:
        for media_info in info.media:
            if media_info.type != pj.PJMEDIA_TYPE_AUDIO or media_info.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            try:
                call_media = pj_call.getAudioMedia(media_info.index)
            except pj.Error:
                continue
            if consultation.port is None:
                consultation.port = CallMediaPort(f"consult{info.id}", self.sample_rate, consultation.inbound,
                                                  consultation.playout)
            call_media.startTransmit(consultation.port)
            consultation.port.startTransmit(call_media)
            self._report_consultation_answered(consultation)
            return

    def _report_consultation_answered(self, consultation: SipConsultation) -> None:
        # answered = the dialog is confirmed and its media is up (pjsua reports the two in either order)
        if consultation.confirmed and consultation.port is not None and not consultation.reported:
            consultation.reported = True
            log.info("call %s: %s answered", consultation.leg.call_id, consultation.target)
            self._post(self._handler.consultation_answered(consultation.leg.call_id, 200, "OK"))

    def _consultation_state(self, consultation: SipConsultation, info: pj.CallInfo) -> None:
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            consultation.confirmed = True
            self._report_consultation_answered(consultation)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            del self._consultations[info.id]
            consultation.release()
            log.info("call %s: call to %s ended (%d %s)", consultation.leg.call_id, consultation.target,
                     info.lastStatusCode, info.lastReason)
            if not consultation.reported:
                consultation.reported = True
                code = info.lastStatusCode if info.lastStatusCode >= 300 else 500
                self._post(self._handler.consultation_answered(consultation.leg.call_id, code, info.lastReason))

    def send_digits(self, consultation: SipConsultation, digits: str) -> None:
        pj_call = consultation.pj_call()
        if pj_call is None:
            return
        log.debug("call %s: pressing %d key(s) on the call to %s", consultation.leg.call_id, len(digits),
                  consultation.target)
        try:
            pj_call.dialDtmf(digits)  # RFC 4733, when the target offered telephone-event
        except pj.Error:
            param = pj.CallSendDtmfParam()
            param.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
            param.digits = digits
            try:
                pj_call.sendDtmf(param)
            except pj.Error as exc:
                log.warning("call %s: could not send keys to %s: %s", consultation.leg.call_id, consultation.target,
                            exc.reason.strip())

    def transfer_replacing(self, leg: SipCallLeg, consultation: SipConsultation) -> None:
        """REFER the caller to the target with Replaces: the caller's phone calls the target, which swaps our
        call to it for the caller's; the final NOTIFY arrives as for a blind transfer."""
        pj_call, target_call = leg.pj_call(), consultation.pj_call()
        if pj_call is None or target_call is None:
            self._post(self._handler.transfer_finished(leg.call_id, 481, "the call to the target has ended"))
            return
        log.info("call %s: connecting the caller to %s (REFER with Replaces)", leg.call_id, consultation.target)
        try:
            pj_call.xferReplaces(target_call, pj.CallOpParam(True))
        except pj.Error as exc:
            log.warning("call %s: transfer failed: %s", leg.call_id, exc.reason.strip())
            self._post(self._handler.transfer_finished(leg.call_id, 500, exc.reason.strip()))

    def hangup_consultation(self, consultation: SipConsultation) -> None:
        pj_call = consultation.pj_call()
        if pj_call is None:
            return
        try:
            pj_call.hangup(pj.CallOpParam(True))
        except pj.Error as exc:
            log.debug("call %s: hanging up the call to %s: %s", consultation.leg.call_id, consultation.target,
                      exc.reason.strip())

    def on_transfer_status(self, pj_call: PjCall, code: int, reason: str, final: bool) -> None:
        leg = self._legs.get(pj_call.getId())
        if leg is None or not final:
            return
        leg.transferred = 200 <= code < 300
        log.info("call %s: transfer %s (%d %s)", leg.call_id, "done" if leg.transferred else "failed", code, reason)
        self._post(self._handler.transfer_finished(leg.call_id, code, reason))

    def on_stream_destroyed(self, pj_call: PjCall) -> None:
        leg = self._legs.get(pj_call.getId())
        if leg is not None:
            self._report_rtp_stats(leg)  # the call's last seconds of RTP statistics

    def on_dtmf_digit(self, pj_call: PjCall, digit: str, method: int) -> None:
        leg = self._legs.get(pj_call.getId())
        if leg is None or not leg.answered:
            return
        how = "SIP INFO" if method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "RFC 4733"
        log.debug("call %s: keypad %r (%s)", leg.call_id, digit, how)  # digits may be a PIN: not at INFO
        self._post(self._handler.keypad_pressed(leg.call_id, digit))

    def on_call_state(self, pj_call: PjCall) -> None:
        info = pj_call.getInfo()
        if info.id in self._consultations:
            self._consultation_state(self._consultations[info.id], info)
            return
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and info.id in self._legs:
            self._legs[info.id].confirmed = True
        if info.state != pj.PJSIP_INV_STATE_DISCONNECTED:
            return
        if self._rejected.pop(info.id, None) is not None:
            return
        leg = self._legs.pop(info.id, None)
        if leg is None:
            return
        reason = self._end_reason(leg, info)
        frames = leg.media_stats()
        leg.release()  # destroys the media port; dropping the Call here is safe in poll mode
        if leg.recording is not None:
            self._recorder.finish(leg.call_id.value)
        log.info(
            "call %s: ended (%s, %d %s), %d frames in, %d out",
            leg.call_id, reason.value, info.lastStatusCode, info.lastReason, frames[0], frames[1],
        )
        if leg.answered:
            self._post(self._handler.call_ended(leg.call_id, reason))

    def _sample_rtp_stats(self) -> None:
        if time.monotonic() < self._rtp_stats_due:
            return
        self._rtp_stats_due = time.monotonic() + RTP_STATS_SECONDS
        for leg in self._legs.values():
            self._report_rtp_stats(leg)

    def _report_rtp_stats(self, leg: SipCallLeg) -> None:
        """Hand telemetry what arrived since the last report (pjmedia's RTCP and jitter-buffer counters)."""
        pj_call = leg.pj_call()
        if pj_call is None or leg.media_index is None or not pj_call.hasMedia():
            return  # no stream (any more): pjsua2 would log an error for asking
        try:
            stat = pj_call.getStreamStat(leg.media_index)
        except pj.Error:
            return  # the stream is already gone (the call is ending)
        rx = stat.rtcp.rxStat
        now = (rx.pkt, rx.loss, stat.jbuf.discard)
        packets, lost, discarded = (max(n - before, 0) for n, before in zip(now, leg.rtp_counted))
        leg.rtp_counted = now
        jitter = rx.jitterUsec.last / 1e6 if rx.jitterUsec.n else None
        self._telemetry.rtp_received(packets, lost, discarded, jitter)

    def _end_reason(self, leg: SipCallLeg, info: pj.CallInfo) -> EndReason:
        if leg.transferred:
            return EndReason.TRANSFERRED
        if leg.hangup_requested:
            return EndReason.SHUTDOWN if self._stopping.is_set() or self._draining else EndReason.AGENT_HANGUP
        if not leg.confirmed:
            return EndReason.CALLER_CANCELLED if info.lastStatusCode == 487 else EndReason.MEDIA_FAILURE
        return EndReason.CALLER_HANGUP

    def hangup(self, leg: SipCallLeg) -> None:
        pj_call = leg.pj_call()
        if pj_call is None or leg.hangup_requested:
            return
        leg.hangup_requested = True
        try:
            pj_call.hangup(pj.CallOpParam(True))
        except pj.Error as exc:
            log.warning("call %s: hangup failed: %s", leg.call_id, exc.reason)

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
