"""The composition root: the only place that knows which adapters implement which ports."""

from __future__ import annotations

import asyncio
import datetime
import gc
import logging
import os
import resource
import signal
import socket
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import platformdirs


from victoria_sip.adapters.certificates import (CertificateInUse, certificate_expiry, certificates_in_use,
                                                check_certificate)
from victoria_sip.adapters.llm_ollama import OllamaLLM
from victoria_sip.adapters.metrics import PrometheusTelemetry
from victoria_sip.adapters.prompts import load_prompt
from victoria_sip.adapters.recordings import Recorder
from victoria_sip.adapters.repository import SqlCallRepository, open_database, redact
from victoria_sip.adapters.sip import SipUserAgent
from victoria_sip.adapters.sip.pjsip_build import pjsip_build
from victoria_sip.adapters.cpu_meter import CpuMeter
from victoria_sip.adapters.http_tools import HttpToolCaller
from victoria_sip.adapters.pg_call_events import PostgresEventRelay
from victoria_sip.adapters.status_server import ReadinessChecks, StatusServer
from victoria_sip.adapters.stt_pocketsphinx import PocketSphinxSTT
from victoria_sip.adapters.stt_pool import RecogniserPool, default_workers
from victoria_sip.adapters.stt_vosk import VoskSTT
from victoria_sip.adapters.tts_clip import ClipTTS
from victoria_sip.adapters.tts_espeak import EspeakTTS
from victoria_sip.adapters.tts_piper import PiperTTS
from victoria_sip.adapters.tts_voices import VoiceRouter
from victoria_sip.adapters.web.console_server import ConsoleServer, ConsoleTlsError
from victoria_sip.application.admission import Admission
from victoria_sip.application.call_events import CallEvents
from victoria_sip.application.call_log import CallLog
from victoria_sip.application.call_service import CallService
from victoria_sip.application.call_session import ConversationModels
from victoria_sip.application.console_login import ConsoleSessions, LoginGuard
from victoria_sip.application.erasure import CallEraser, keep_history_for
from victoria_sip.application.phrases import Phrases
from victoria_sip.application.voice_workers import VoiceWorkers
from victoria_sip.audio.resample import resample
from victoria_sip.config import load_settings
from victoria_sip.console_site import ConsoleSite
from victoria_sip.settings import DEFAULT_SOURCE, Settings, SipSettings, SttSettings
from victoria_sip.domain import EndReason, VoiceConfig
from victoria_sip.domain.ports import SpeechAudio
from victoria_sip.errors import ModelError, SipError, VictoriaError

log = logging.getLogger("victoria")

BRIDGE_SAMPLE_RATE = 16000  # pjmedia's conference bridge; G.711 calls are resampled to it


def default_database_url() -> str:
    return f"sqlite:///{Path(platformdirs.user_data_dir('victoria-sip')) / 'victoria.db'}"


def database_url(settings: Settings) -> str:
    return settings.database_url or default_database_url()


def open_repository(url: str, instance: str | None = None) -> SqlCallRepository:
    return SqlCallRepository(open_database(url), instance)


def instance_name(settings: Settings) -> str:
    """Who took a call, in a database several instances share; stable across restarts of one instance."""
    return f"{socket.gethostname()}:{settings.sip.listen.port}"


FALLBACK_APOLOGY = "I'm sorry, I'm having trouble right now. Could you say that again?"
TTS_WORKERS = 2


def build_tts() -> VoiceRouter:
    return VoiceRouter({"piper": PiperTTS(), "espeak": EspeakTTS(), "coqui": _coqui(), "clip": ClipTTS()})


def _coqui():
    from victoria_sip.adapters.tts_coqui import CoquiTTS  # torch is an optional extra: import on use

    return CoquiTTS()


def media_dir() -> Path:
    """media/ of a source checkout, or $VICTORIA_MEDIA_DIR (the Docker image sets it)."""
    return Path(os.environ.get("VICTORIA_MEDIA_DIR") or Path(__file__).parents[1] / "media")


def apology_prompt(tts: VoiceRouter) -> tuple[str, SpeechAudio]:
    """The recorded apology; if it is not installed, the embedded voice says it (synthesised now, not mid-call)."""
    try:
        return load_prompt(media_dir() / "prompts" / "apology")
    except ModelError as exc:
        log.warning("%s; synthesising the apology with the embedded voice instead", exc)
        return FALLBACK_APOLOGY, tts.synthesize(FALLBACK_APOLOGY, VoiceConfig())


def build_stt(settings: SttSettings, window_seconds: float, telemetry: PrometheusTelemetry,
              probe: SpeechAudio) -> RecogniserPool | None:
    """The recogniser pool, loaded now: a missing or broken model stops start-up with ``ModelError``."""
    if settings.provider == "none":
        log.warning("no speech recognition ([stt] provider = \"none\"): Victoria greets and listens only")
        return None
    # each worker process loads the model once; nothing decodes in the SIP/media process
    engine = partial(VoskSTT, settings.model) if settings.provider == "vosk" else PocketSphinxSTT
    pool = RecogniserPool(engine, settings.workers or default_workers(), settings.provider, window_seconds,
                          on_delay=telemetry.stt_queue_delay, probe=_at_16k(probe))
    pool.load()
    telemetry.watch_recognisers(pool.measure)
    return pool


def _at_16k(audio: SpeechAudio) -> SpeechAudio:
    if audio.sample_rate == 16000:
        return audio
    samples = resample(np.frombuffer(audio.pcm, "<i2"), audio.sample_rate, 16000)
    return SpeechAudio(samples.astype("<i2").tobytes(), 16000)


def build_recorder(settings: Settings) -> Recorder | None:
    if not settings.recording.enabled:
        return None
    directory = Path(settings.recording.directory or Path(platformdirs.user_data_dir("victoria-sip")) / "recordings")
    recorder = Recorder(directory, settings.recording.retention_days)
    try:
        recorder.start()
    except OSError as exc:
        raise VictoriaError(f"cannot record calls to {directory}: {exc.strerror}; check [recording] dir") from None
    return recorder


def run_server(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM. Raises ``VictoriaError`` subclasses for start-up failures."""
    check_pjsip_slots(settings.sip.max_concurrent_calls)
    raise_open_files_limit(settings.sip.max_concurrent_calls)
    asyncio.run(_serve(settings))


def check_pjsip_slots(max_concurrent_calls: int) -> None:
    """Refuse, before any socket or model, a limit the installed PJSIP has no call slots for."""
    build = pjsip_build()
    refusal = build.refusal(max_concurrent_calls)
    if refusal:
        raise SipError(refusal)
    log.info("%s", build.describe())


FILES_PER_CALL = 4  # RTP and RTCP sockets, and headroom for a transfer's second call
FILES_BESIDES_CALLS = 256  # SIP transports, the database, models, the ops listener, Python itself


def raise_open_files_limit(max_concurrent_calls: int) -> None:
    """Lift the soft RLIMIT_NOFILE (often 1024) towards what the calls need, up to the hard limit: running out
    of descriptors mid-flood fails calls (pjsip cannot open RTP sockets) rather than refusing them."""
    needed = FILES_BESIDES_CALLS + FILES_PER_CALL * max_concurrent_calls
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed or soft == resource.RLIM_INFINITY:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        log.warning("open files limited to %d (hard limit); %d calls need about %d: raise LimitNOFILE "
                    "(systemd) or ulimit -n", target, max_concurrent_calls, needed)


async def _serve(settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    signals = ShutdownSignals(loop)

    url = database_url(settings)
    repository = open_repository(url, instance_name(settings))
    log.info("call database: %s", redact(url))
    telemetry = PrometheusTelemetry(list(settings.agents), [a.name for a in settings.sip.accounts])
    interrupted = repository.close_interrupted_calls()  # start-up: nothing else runs yet
    if interrupted:
        log.warning("%d call(s) were in progress when this instance last stopped without hanging up (killed or "
                    "crashed): marked ended-abnormally: %s", len(interrupted), ", ".join(i for i, _ in interrupted))
    for _, agent in interrupted:
        telemetry.call_ended(agent, EndReason.ABNORMAL)
    history = start_history_retention(settings, repository)
    check_certificates(settings.sip, telemetry, "in use")
    llm = OllamaLLM(settings.llm.host, settings.llm.model, settings.llm.first_token_timeout, settings.llm.token_timeout,
                    options=dict(settings.llm.options))
    readiness = Readiness(settings, repository, llm)
    status = start_status_server(settings, telemetry, readiness)
    events = CallEvents()
    relay = start_event_relay(url, events)
    site = ConsoleSite(settings, readiness, url, instance_name(settings))
    console = start_console(settings, repository, telemetry, events, site)
    tts = build_tts()
    phrases = Phrases(tts)
    phrases.prepare(settings.agents.values())
    apology_text, apology = apology_prompt(tts)
    stt = build_stt(settings.stt, settings.admission.window_seconds, telemetry, probe=apology)
    tts_workers = VoiceWorkers(TTS_WORKERS, settings.admission.window_seconds)
    site_tools = HttpToolCaller()  # always: a reload may give an agent tools
    models = ConversationModels(stt, llm, tts, apology, apology_text, tts_workers, site_tools)
    call_log = CallLog(repository, telemetry, events)
    cpu = CpuMeter(settings.admission.window_seconds)
    admission = Admission(settings.admission, stt, tts_workers.waits, cpu)
    service = CallService(settings.agents, settings.agent_for, phrases, call_log, models, telemetry, admission)
    site.service = service
    recorder = build_recorder(settings)
    user_agent = SipUserAgent(settings.sip, service, loop, sample_rate=BRIDGE_SAMPLE_RATE, telemetry=telemetry,
                              recorder=recorder)
    readiness.recognisers = stt
    readiness.models_loaded = True
    try:
        await loop.run_in_executor(None, user_agent.start)
        readiness.user_agent = user_agent
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(_on_sighup(settings, service, phrases,
                                                                                         telemetry, site)))
        # everything loaded so far (models, pjsua2, the libraries) lives as long as the process: out of the
        # collector's full passes, which otherwise hold the GIL 25-40 ms and pjmedia's clock with it (NOTES)
        gc.collect()
        gc.freeze()
        # measured from here: Victoria's own start-up (models, phrases, pjsua2) is not a load that calls bring,
        # and counted, it refused the first calls after a restart with "no headroom (cpu)"
        cpu.start()
        log.info("Victoria is ready (config: %s)", settings.source)
        await signals.first.wait()
        await _drain(user_agent, service, settings.sip.drain_seconds, signals.second)
    finally:
        await loop.run_in_executor(None, user_agent.stop)
        # the long-lived tasks first: _finish_pending_tasks waits for every task, and these never end by themselves
        events.close()  # open Live pages end their streams: the console stops at once
        if console is not None:
            await console.stop()
        if history is not None:
            history.cancel()
        await _finish_pending_tasks()
        tts_workers.shutdown(wait=False, cancel_futures=True)
        cpu.stop()
        if stt is not None:
            stt.close()
        call_log.close()
        repository.close()
        if recorder is not None:
            recorder.stop()
        if status is not None:
            status.stop()
        if relay is not None:
            relay.stop()
        site.close()
        await site_tools.aclose()
        log.info("stopped")


class Readiness:
    """What ``/readyz`` checks: every account registered, models loaded, database writable, Ollama ready."""

    def __init__(self, settings: Settings, repository: SqlCallRepository, llm: OllamaLLM) -> None:
        self._settings = settings
        self._repository = repository
        self._llm = llm
        self.models_loaded = False
        self.recognisers: RecogniserPool | None = None
        self.user_agent: SipUserAgent | None = None

    def checks(self) -> dict:
        certificates = {f"tls {c.label}": partial(_days_left, c) for c in certificates_in_use(self._settings.sip)}
        return {"sip": self._sip, "models": self._models, "database": self._repository.check_writable,
                "llm": self._ollama, **certificates}

    def _sip(self) -> str:
        if self.user_agent is None:
            raise VictoriaError("the SIP stack is starting")
        status = self.user_agent.registration_status()
        missing = [a.name for a in self._settings.sip.accounts if not status.get(a.name)]
        if missing:
            raise VictoriaError(f"not registered: {', '.join(missing)}")
        return f"registered: {', '.join(status)}" if status else f"direct calls on {self._settings.sip.listen}"

    def _models(self) -> str:
        if not self.models_loaded:
            raise VictoriaError("loading speech models")
        if self.recognisers is None:
            return f"stt {self._settings.stt.provider}, voices ready"
        workers = self.recognisers.measure().workers
        if workers == 0:
            raise ModelError(f"no {self._settings.stt.provider} recogniser worker is running (restarting)")
        return f"stt {self._settings.stt.provider} ({workers} worker(s)), voices ready"

    def _ollama(self) -> str:
        return self._llm.check_ready(a.llm_model for a in self._settings.agents.values() if a.llm_model)


def _days_left(certificate: CertificateInUse) -> str:
    """/readyz: read from the file each time, as PJSIP does for each new TLS connection. Expired: not ready, for
    no PBX will accept it."""
    not_after = certificate_expiry(certificate.certificate)
    seconds = (not_after - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    if seconds <= 0:
        raise VictoriaError(f"{certificate.certificate} expired on {not_after:%Y-%m-%d %H:%M} UTC: install a "
                            "renewed certificate, then send Victoria SIGHUP")
    return f"{int(seconds // 86400)} days left (expires {not_after:%Y-%m-%d %H:%M} UTC)"


def check_certificates(sip: SipSettings, telemetry: PrometheusTelemetry, how: str) -> None:
    """Each TLS certificate Victoria presents: checked, one log line each, its expiry on the gauge. Nothing is
    reloaded: PJSIP reads the files again for each new TLS connection, and calls in progress keep theirs."""
    for certificate in certificates_in_use(sip):
        check = check_certificate(certificate.certificate, certificate.private_key, certificate.ca_file,
                                  certificate.name)
        telemetry.certificate_read(certificate.label, check.not_after.timestamp() if check.not_after else None)
        if check.problems:
            log.error("TLS certificate for %s: %s", certificate.label, "; ".join(check.problems))
        elif check.warnings:
            log.warning("TLS certificate for %s %s: %s; %s", certificate.label, how, check.summary(),
                        "; ".join(check.warnings))
        else:
            log.info("TLS certificate for %s %s: %s", certificate.label, how, check.summary())


def start_status_server(settings: Settings, telemetry: PrometheusTelemetry, readiness: Readiness) -> StatusServer | None:
    if settings.metrics_listen is None:
        log.info("metrics and health endpoints are off ([metrics] listen = \"off\")")
        return None
    listen = settings.metrics_listen
    try:
        server = StatusServer(listen.host, listen.port, telemetry.exposition, ReadinessChecks(readiness.checks()))
    except OSError as exc:
        raise VictoriaError(f"cannot listen for metrics on {listen}: {exc.strerror}; "
                            "set --metrics-listen HOST:PORT (or 'off'), or [metrics] listen") from None
    server.start()
    return server


def start_history_retention(settings: Settings, repository: SqlCallRepository) -> asyncio.Task | None:
    days = settings.history.retention_days
    if not days:
        log.info("calls are kept forever ([history] retention_days = 0)")
        return None
    log.info("calls are kept %g days ([history] retention_days), then erased with their recordings", days)
    now = partial(datetime.datetime.now, datetime.timezone.utc)
    return asyncio.ensure_future(keep_history_for(days, CallEraser(repository), now))


def start_event_relay(url: str, events: CallEvents) -> PostgresEventRelay | None:
    """Instances sharing PostgreSQL see each other's calls live; with SQLite there is one instance."""
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    relay = PostgresEventRelay(url, events)
    relay.start()
    return relay


def start_console(settings: Settings, repository: SqlCallRepository, telemetry: PrometheusTelemetry,
                  events: CallEvents, site: ConsoleSite) -> ConsoleServer | None:
    """The web console's API on this event loop, its users in the call database."""
    if settings.web_listen is None:
        log.info("web console is off ([web] listen = \"off\")")
        return None
    from victoria_sip.adapters.console_users import SqlConsoleUsers
    from victoria_sip.adapters.web.console_api import console_app

    users = SqlConsoleUsers(repository.database)
    https = settings.web_tls is not None
    app = console_app(users, repository, ConsoleSessions(), LoginGuard(), CallEraser(repository), events, site,
                      telemetry.console_login_refused, secure_cookies=https)  # a session cookie never over http
    listen = settings.web_listen
    try:
        server = ConsoleServer(app, listen, settings.web_tls)
    except ConsoleTlsError as exc:
        raise VictoriaError(f"cannot serve the web console over HTTPS: {exc}; check [web] certificate and "
                            "private_key (PEM files)") from None
    except OSError as exc:
        raise VictoriaError(f"cannot listen for the web console on {listen}: {exc.strerror}; "
                            "set --web-listen HOST:PORT (or 'off'), or [web] listen") from None
    server.start()
    scheme = "https" if https else "http"
    if not users.list():
        log.warning("web console on %s://%s: no users yet: `victoria-sip users add NAME --role admin`", scheme, listen)
    else:
        log.info("web console on %s://%s (log in; API docs at /api/docs)", scheme, listen)
    return server


async def _on_sighup(settings: Settings, service: CallService, phrases: Phrases,
                     telemetry: PrometheusTelemetry, site: ConsoleSite) -> None:
    """SIGHUP: renewed certificates are checked and reported, then the agents are reloaded."""
    await asyncio.get_running_loop().run_in_executor(None, check_certificates, settings.sip, telemetry, "reloaded")
    reloaded = await _reload_agents(settings, service, phrases)
    if reloaded is not None:
        site.settings = reloaded  # the Agents page shows what calls now get


async def _reload_agents(settings: Settings, service: CallService, phrases: Phrases) -> Settings | None:
    """SIGHUP: read the configuration file again and answer the next calls with its agents and routes.
    SIP accounts and every other section need a restart. A broken file changes nothing."""
    if settings.source == DEFAULT_SOURCE:
        log.warning("SIGHUP: no configuration file to reload (running on the embedded defaults)")
        return
    try:
        fresh = load_settings(settings.source)
        await asyncio.get_running_loop().run_in_executor(None, phrases.prepare, fresh.agents.values())
    except VictoriaError as exc:
        log.error("SIGHUP: configuration not reloaded, the running agents stay: %s", exc)
        return
    if fresh.sip != settings.sip:
        log.warning("SIGHUP: [sip] changes (accounts, listen, codecs...) take effect only after a restart")
    reloaded = replace(settings, agents=fresh.agents, default_agent=fresh.default_agent, routes=fresh.routes)
    service.reload(reloaded.agents, reloaded.agent_for)
    log.info("SIGHUP: agents reloaded from %s: %s", settings.source, ", ".join(reloaded.agents))
    return reloaded


class ShutdownSignals:
    """SIGTERM or SIGINT once: drain. Twice: stop now."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.first = asyncio.Event()
        self.second = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._received)

    def _received(self) -> None:
        if self.first.is_set():
            log.info("second stop signal: hanging up now")
            self.second.set()
        self.first.set()


GOODBYE_GRACE_SECONDS = 15.0  # at the drain deadline: long enough to say goodbye


async def _drain(user_agent: SipUserAgent, service: CallService, deadline: float, now: asyncio.Event) -> None:
    """Unregister and refuse new calls; let calls in progress finish, up to ``deadline`` seconds; then each
    says goodbye. ``now`` (a second signal) cuts any wait short: the SIP stack then hangs up what is left."""
    user_agent.drain()
    if service.active_calls:
        log.info("draining: no new calls; waiting up to %.0f s for %d call(s) in progress (signal again to "
                 "hang up now)", deadline, service.active_calls)
        if not await _until(service.wait_until_idle(deadline), now) and not now.is_set():
            log.info("drain deadline: saying goodbye to %d call(s)", service.active_calls)
            service.end_all_calls()
            await _until(service.wait_until_idle(GOODBYE_GRACE_SECONDS), now)
    log.info("stopping: hanging up calls and unregistering")


async def _until(waiting, interrupt: asyncio.Event) -> bool:
    """``waiting``'s result, or False as soon as ``interrupt`` is set."""
    task = asyncio.ensure_future(waiting)
    interrupted = asyncio.ensure_future(interrupt.wait())
    await asyncio.wait({task, interrupted}, return_when=asyncio.FIRST_COMPLETED)
    interrupted.cancel()
    if not task.done():
        task.cancel()
        return False
    return task.result()


async def _finish_pending_tasks(timeout: float = 5.0) -> None:
    """Let handlers the SIP thread posted during shutdown (call ended...) run to the end."""
    await asyncio.sleep(0.05)
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current]
    if pending:
        await asyncio.wait(pending, timeout=timeout)
