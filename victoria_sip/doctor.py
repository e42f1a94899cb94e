"""``victoria-sip doctor``: check every outside part Victoria depends on, one finding each, with a fix.

It uses the production adapters (the same loading, the same errors) but starts
no SIP stack: ports are test-bound, the registrar gets a REGISTER of our own
(then an unregister), each voice speaks one word, the database takes a write lock.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from victoria_sip.settings import HostPort, Settings, SipSettings
from victoria_sip.errors import VictoriaError


@dataclass(frozen=True)
class Finding:
    part: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False  # ok for now, but will not stay so (a certificate about to expire)


def examine(settings: Settings, offline_rules=None) -> Iterator[Finding]:
    """Each check in turn (slow ones, such as loading a model, take seconds)."""
    from victoria_sip import airgap

    yield Finding("config", True, f"{settings.source}: {len(settings.agents)} agent(s), "
                                  f"{len(settings.sip.accounts)} account(s), stt {settings.stt.provider}")
    yield _pjsip(settings.sip.max_concurrent_calls)
    yield _port_free("sip port", settings.sip.transport, settings.sip.listen,
                     "another program (or a running Victoria) holds it: stop it, or set [sip] listen / --sip-listen")
    yield from _tls(settings.sip)
    if settings.metrics_listen is not None:
        yield _port_free("metrics port", "tcp", settings.metrics_listen,
                         "set [metrics] listen / --metrics-listen to a free port, or 'off'")
    if settings.web_listen is not None:
        yield _port_free("console port", "tcp", settings.web_listen,
                         "set [web] listen / --web-listen to a free port, or 'off'")
    for account in settings.sip.accounts:
        yield _registration(account)
    yield _checked("stt", lambda: _load_stt(settings),
                   "see README 'Models': `victoria-sip models pull` or point [stt] model at a model directory")
    tts = _build_tts()
    for agent in settings.agents.values():
        yield _checked(f"voice {agent.name}", lambda agent=agent: _speak(tts, agent.voice),
                       "check [agents.voice] provider and voice; see README 'Models'")
    yield _checked("llm", lambda: _ollama(settings),
                   "start Ollama on the LLM host (`ollama serve`) and pull the model; or set [llm] host / "
                   "VICTORIA_LLM_HOST / OLLAMA_HOST")
    for agent in settings.agents.values():
        for tool in agent.tools:
            yield _checked(f"tool {agent.name}/{tool.name}", lambda tool=tool: _tool_answers(tool),
                           f"start the service at {tool.url}, or fix [[agents.tools]] url for {tool.name!r}")
    yield _checked("database", lambda: _database(settings),
                   "check the path or server and the service user's rights; [database] url / VICTORIA_DATABASE_URL")
    if offline_rules is not None:
        offenders = airgap.offenders(settings, offline_rules)
        yield Finding("offline", not offenders,
                      "; ".join(offenders) or "every model is on local disk and every endpoint is private",
                      "" if not offenders else "point it at a host inside your network, or allow it under [offline]")


def _port_free(part: str, transport: str, listen: HostPort, fix: str) -> Finding:
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        try:
            sock.bind((listen.host, listen.port))
        except OSError as exc:
            return Finding(part, False, f"{transport} {listen}: {exc.strerror}", fix)
    return Finding(part, True, f"{transport} {listen} is free")


def _tls(sip: SipSettings) -> Iterator[Finding]:
    """Each certificate Victoria presents (its key, chain, name and dates), and each TLS account's CA file."""
    from victoria_sip.adapters.certificates import certificates_in_use, check_certificate, trusted_certificates

    in_use = certificates_in_use(sip)
    for cert in in_use:
        check = check_certificate(cert.certificate, cert.private_key, cert.ca_file, cert.name)
        where = "[sip]" if cert.label == "listener" else f"[[sip.accounts]] {cert.label.split(':', 1)[1]!r} (or [sip])"
        detail = "; ".join((check.summary(), *check.problems, *check.warnings))
        yield Finding(f"tls {cert.label}", check.ok, detail,
                      f"correct the files {where} certificate, private_key and ca_file name; a renewed certificate "
                      "needs no restart: send Victoria SIGHUP", warning=bool(check.warnings))
    checked = {cert.label for cert in in_use}
    for account in sip.accounts:
        if account.transport != "tls" or f"account:{account.name}" in checked:
            continue
        ca_file = account.tls.trusted_cas
        try:
            detail = f"no client certificate; ca_file {ca_file}: {len(trusted_certificates(ca_file))} CA certificate(s)"
        except VictoriaError as exc:
            yield Finding(f"tls account:{account.name}", False, f"ca_file: {exc}",
                          "set ca_file to the PEM file of the CA that signed the PBX's certificate")
            continue
        yield Finding(f"tls account:{account.name}", True, detail)


def _registration(account) -> Finding:
    from victoria_sip.adapters.sip.register_check import REGISTRATION_HINTS, check_registration

    result = check_registration(account)
    part = f"account {account.name}"
    if 200 <= result.code < 300:
        return Finding(part, True, f"{account.registrar} accepted {account.aor} (then unregistered)")
    if result.code == 0:
        transport = account.transport.upper()
        fix = (f"is the PBX running and reachable over {transport} from here? check [[sip.accounts]] registrar"
               if "over TLS:" not in result.reason else
               "see docs/troubleshooting.md (TLS and SRTP): ca_file, the registrar's name, its certificate's dates, "
               "TLS 1.2+, a client certificate (certificate, private_key) if the PBX asks for one")
        return Finding(part, False, f"{account.registrar}: {result.reason}", fix)
    hint = REGISTRATION_HINTS.get(result.code, "see the PBX's log for why")
    env = f"VICTORIA_ACCOUNT_{account.name.upper()}_PASSWORD"
    return Finding(part, False, f"{account.registrar} answered {result.code} {result.reason} for {account.aor}",
                   f"{hint} (the password comes from {env} or the file)" if result.code in (401, 407) else hint)


def _checked(part: str, check: Callable[[], str], fix: str) -> Finding:
    started = time.monotonic()
    try:
        detail = check()
    except VictoriaError as exc:
        return Finding(part, False, str(exc), fix)
    return Finding(part, True, f"{detail} ({time.monotonic() - started:.1f} s)")


def _load_stt(settings: Settings) -> str:
    from victoria_sip.adapters.stt_pocketsphinx import PocketSphinxSTT
    from victoria_sip.adapters.stt_vosk import VoskSTT

    provider = settings.stt.provider
    if provider == "none":
        return "off: Victoria will greet and listen only"
    stt = VoskSTT(settings.stt.model) if provider == "vosk" else PocketSphinxSTT()
    stt.load()
    return f"{provider} loaded" + (f" ({settings.stt.model})" if settings.stt.model else "")


def _build_tts():
    from victoria_sip.bootstrap import build_tts

    return build_tts()


def _speak(tts, voice) -> str:
    audio = tts.synthesize("Hello.", voice)
    if audio.seconds <= 0:
        raise VictoriaError(f"{voice.provider} voice {voice.voice!r} produced no audio")
    return f"{voice.provider} {voice.voice or '(default)'} speaks"


def _ollama(settings: Settings) -> str:
    from victoria_sip.adapters.llm_ollama import OllamaLLM

    llm = OllamaLLM(settings.llm.host, settings.llm.model)
    return llm.check_ready(a.llm_model for a in settings.agents.values() if a.llm_model) + " is ready"


def _tool_answers(tool) -> str:
    """Is the site's service there? A HEAD request (safe: it changes nothing); any HTTP answer will do, for
    doctor cannot know which arguments a real request would take."""
    import httpx

    try:
        answer = httpx.head(tool.url, timeout=tool.timeout_seconds, headers=dict(tool.headers))
    except httpx.HTTPError as exc:
        raise VictoriaError(f"{tool.url} does not answer: {type(exc).__name__}: {exc}") from None
    return f"{tool.url} answers (HTTP {answer.status_code} to HEAD)"


def _database(settings: Settings) -> str:
    from victoria_sip.adapters.repository import redact
    from victoria_sip.bootstrap import database_url, open_repository

    url = database_url(settings)
    repository = open_repository(url)
    try:
        return f"{redact(url)} {repository.check_writable()}"
    finally:
        repository.close()


def _pjsip(max_concurrent_calls: int) -> Finding:
    from victoria_sip.adapters.sip.pjsip_build import SETUP_HINT, pjsip_build

    build = pjsip_build()
    refusal = build.refusal(max_concurrent_calls) if build.installed else build.describe()
    return Finding("pjsip", refusal is None, refusal or build.describe(), SETUP_HINT)
