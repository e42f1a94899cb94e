"""What the console's Agents and System pages show of this running Victoria.

    site = ConsoleSite(settings, readiness, url)   # readiness: what /readyz checks, and the user agent once up
    site.agents()  -> [{name, answers, prompt, voice, destinations, keypad, ...}]
    site.system()  -> {readiness, registrations, models, build}
    site.settings = reloaded                        # SIGHUP: the pages show the agents calls now get

Nothing secret leaves: no SIP passwords, the database URL without its password.
"""

from __future__ import annotations

import datetime
import platform
import time

from victoria_sip import __version__
from victoria_sip.adapters.repository import redact
from victoria_sip.adapters.sip.pjsip_build import pjsip_build
from victoria_sip.adapters.status_server import ReadinessChecks
from victoria_sip.domain import Agent
from victoria_sip.settings import Settings


class ConsoleSite:
    def __init__(self, settings: Settings, readiness, database_url: str, instance: str) -> None:
        self.settings = settings
        self.service = None  # the CallService once built: browser test calls go to it
        self._readiness = readiness
        self._checks = ReadinessChecks(readiness.checks())
        self._database = redact(database_url)
        self._instance = instance
        self._started = datetime.datetime.now(datetime.timezone.utc)
        self._started_clock = time.monotonic()

    def agents(self) -> list[dict]:
        return [agent_view(agent, self._answers(agent.name), self.settings.llm.model)
                for agent in self.settings.agents.values()]

    def system(self) -> dict:
        settings = self.settings
        user_agent = self._readiness.user_agent
        registered = user_agent.registration_status() if user_agent is not None else {}
        stt = settings.stt
        recognisers = self._readiness.recognisers
        workers = recognisers.measure().workers if recognisers is not None else 0
        return {
            "readiness": self._checks.run(),
            "registrations": [{"name": a.name, "registrar": a.registrar, "user": a.user, "transport": a.transport,
                               "registered": bool(registered.get(a.name))} for a in settings.sip.accounts],
            "models": {
                "speech recognition": f"{stt.provider}{f' ({stt.model})' if stt.model else ''}"
                                      f"{f', {workers} worker(s)' if recognisers is not None else ''}",
                "voices": ", ".join(sorted({f"{a.voice.provider} {a.voice.voice}" for a in settings.agents.values()})),
                "LLM": f"{settings.llm.model} at {settings.llm.host}",
            },
            "build": {
                "Victoria": __version__,
                "PJSIP": pjsip_build().describe(),
                "Python": platform.python_version(),
                "instance": self._instance,
                "SIP listener": f"{settings.sip.transport} {settings.sip.listen}",
                "call database": self._database,
                "configuration": settings.source,
                "up since (UTC)": f"{self._started:%Y-%m-%d %H:%M:%S} ({_uptime(time.monotonic() - self._started_clock)})",
            },
        }

    def close(self) -> None:
        self._checks.close()

    def _answers(self, name: str) -> list[str]:
        settings = self.settings
        answers = [f"calls on account {a.name} ({a.user})" for a in settings.sip.accounts if a.agent == name]
        answers += [f"direct calls to {number}" for number, agent in settings.routes.items() if agent == name]
        if settings.default_agent == name:
            answers.append("any other direct call")
        return answers


def agent_view(agent: Agent, answers: list[str], default_model: str) -> dict:
    voice = agent.voice
    return {
        "name": agent.name,
        "answers": answers,
        "first_message": agent.first_message,
        "system_prompt": agent.system_prompt,
        "voice": f"{voice.provider} {voice.voice}{f' speaker {voice.speaker}' if voice.speaker else ''}"
                 f"{f', speed {voice.speed:g}' if voice.speed != 1.0 else ''}",
        "llm_model": agent.llm_model or f"{default_model} (the [llm] model)",
        "destinations": [{"name": d.name, "uri": d.uri, "attended": d.attended} for d in agent.destinations],
        "fallback_destination": agent.fallback_destination or None,
        "tools": [{"name": t.name, "url": t.url, "description": t.description} for t in agent.tools],
        "keypad": {"terminator": agent.keypad.terminator, "inter_digit_seconds": agent.keypad.inter_digit_seconds,
                   "escape_keys": [list(pair) for pair in agent.keypad.escape_keys]},
    }


def _uptime(seconds: float) -> str:
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h {minutes} min" if days else f"{hours} h {minutes} min"
