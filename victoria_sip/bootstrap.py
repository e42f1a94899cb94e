"""The composition root: the only place that knows which adapters implement which ports."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import platformdirs

from victoria_sip.adapters.repository import SqlCallRepository, open_database, redact
from victoria_sip.adapters.sip import SipUserAgent
from victoria_sip.adapters.tts_espeak import EspeakTTS
from victoria_sip.adapters.tts_piper import PiperTTS
from victoria_sip.adapters.tts_voices import VoiceRouter
from victoria_sip.application.call_log import CallLog
from victoria_sip.application.call_service import CallService
from victoria_sip.application.greetings import Greetings
from victoria_sip.config import Settings

log = logging.getLogger("victoria")

BRIDGE_SAMPLE_RATE = 16000  # pjmedia's conference bridge; G.711 calls are resampled to it


def default_database_url() -> str:
    return f"sqlite:///{Path(platformdirs.user_data_dir('victoria-sip')) / 'victoria.db'}"


def database_url(settings: Settings) -> str:
    return settings.database_url or default_database_url()


def open_repository(url: str) -> SqlCallRepository:
    return SqlCallRepository(open_database(url))


def build_tts() -> VoiceRouter:
    return VoiceRouter({"piper": PiperTTS(), "espeak": EspeakTTS()})


def run_server(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM. Raises ``VictoriaError`` subclasses for start-up failures."""
    asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    url = database_url(settings)
    repository = open_repository(url)
    log.info("call database: %s", redact(url))
    greetings = Greetings(build_tts())
    greetings.prepare(settings.agents.values())
    call_log = CallLog(repository)
    service = CallService(settings.agents, settings.agent_for, greetings, call_log)
    user_agent = SipUserAgent(settings.sip, service, loop, sample_rate=BRIDGE_SAMPLE_RATE)
    try:
        await loop.run_in_executor(None, user_agent.start)
        log.info("Victoria is ready (config: %s)", settings.source)
        await stop.wait()
        log.info("stopping: hanging up calls and unregistering")
    finally:
        await loop.run_in_executor(None, user_agent.stop)
        await _finish_pending_tasks()
        call_log.close()
        repository.close()
        log.info("stopped")


async def _finish_pending_tasks(timeout: float = 5.0) -> None:
    """Let handlers the SIP thread posted during shutdown (call ended...) run to the end."""
    await asyncio.sleep(0.05)
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current]
    if pending:
        await asyncio.wait(pending, timeout=timeout)
