"""Prometheus metrics (``prometheus-client``): the ``Telemetry`` port, on a registry of our own.

Names follow Prometheus conventions: ``victoria_`` prefix, seconds, ``_total`` counters.
Reply latencies are measured from the end of the caller's speech, like ``TurnLatency``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from victoria_sip.domain import EndReason, TurnLatency
from victoria_sip.domain.ports import RecogniserLoad

# end of speech -> each step of a reply: from a fast STT final (~0.1 s) to a slow local LLM (~10 s)
REPLY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
RTF_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0)
QUEUE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
ADMISSION_REASONS = ("stt_queue", "stt_busy", "tts_queue", "cpu")
JITTER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16)
REPLY_STAGES = {
    "stt_final": "stt_final_ms",
    "llm_first_token": "llm_first_token_ms",
    "tts_first_audio": "tts_first_audio_ms",
    "first_audio_out": "first_frame_out_ms",
}


class PrometheusTelemetry:
    def __init__(self, agents: list[str] = (), accounts: list[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.active_calls = Gauge("victoria_active_calls", "Calls in progress", ["agent"], registry=r)
        self.calls_answered = Counter("victoria_calls_answered_total", "Calls answered", ["agent"], registry=r)
        self.calls = Counter("victoria_calls_total",
                             "Calls by how they ended: caller-hangup, agent-hangup, rejected-busy, no-route, "
                             "caller-cancelled, media-failure, shutdown, ended-abnormally",
                             ["agent", "outcome"], registry=r)
        self.reply_seconds = Histogram("victoria_reply_seconds",
                                       "End of caller speech to each step of the reply (stage: stt_final, "
                                       "llm_first_token, tts_first_audio, first_audio_out = voice to voice)",
                                       ["stage"], buckets=REPLY_BUCKETS, registry=r)
        self.tts_rtf = Histogram("victoria_tts_real_time_factor", "Synthesis time / audio duration, per chunk",
                                 buckets=RTF_BUCKETS, registry=r)
        self.barge_ins = Counter("victoria_barge_ins_total", "Replies the caller interrupted", ["agent"], registry=r)
        self.speculations = Counter("victoria_speculative_replies_total",
                                    "Replies prepared in a pause: hit (played as the turn ended) or miss (discarded "
                                    "unheard: the caller went on)", ["agent", "outcome"], registry=r)
        self.console_login_refusals = Counter(
            "victoria_console_login_refusals_total",
            "Console logins refused: wrong-password, unknown-user, locked", ["reason"], registry=r)
        self.model_errors = Counter("victoria_model_errors_total", "Model failures by stage (stt, llm, tts)",
                                    ["stage"], registry=r)
        self.turns_persisted = Counter("victoria_turns_persisted_total", "Conversation turns committed to the database",
                                       registry=r)
        self.registered = Gauge("victoria_registered", "1 while the account is registered", ["account"], registry=r)
        self.registrations = Counter("victoria_registrations_total", "Successful (re-)registrations", ["account"],
                                     registry=r)
        self.registration_failures = Counter("victoria_registration_failures_total",
                                             "Failed REGISTERs by SIP response code", ["account", "code"], registry=r)
        self.rtp_packets = Counter("victoria_rtp_packets_received_total", "RTP packets received", registry=r)
        self.rtp_lost = Counter("victoria_rtp_packets_lost_total", "RTP packets lost on the way in", registry=r)
        self.rtp_late = Counter("victoria_rtp_packets_late_total",
                                "RTP packets the jitter buffer discarded (late or overflow)", registry=r)
        self.rtp_jitter = Histogram("victoria_rtp_jitter_seconds", "Inbound interarrival jitter, sampled per call",
                                    buckets=JITTER_BUCKETS, registry=r)
        self.invites_refused = Counter("victoria_invites_refused_total",
                                       "INVITEs refused with 403 (source not in allow_invites_from)", ["reason"],
                                       registry=r)
        self.invites_refused.labels("source")
        self.playout_underflows = Counter("victoria_playout_underflows_total",
                                          "20 ms frames of Victoria's voice that were due mid-utterance and not ready "
                                          "(a gap she made: the next chunk came late)", registry=r)
        self.tool_calls = Counter("victoria_tool_calls_total",
                                  "Site tools the model called, by outcome: ok, invalid (arguments refused by the "
                                  "tool's schema, not sent), timeout, refused, http-4xx, http-5xx, too-large, "
                                  "not-utf8, error", ["agent", "tool", "outcome"], registry=r)
        self.tool_seconds = Histogram("victoria_tool_seconds", "Site tool calls: request sent -> answer read",
                                      ["tool"], buckets=REPLY_BUCKETS, registry=r)
        self.admission_refusals = Counter("victoria_admission_refusals_total",
                                          "New calls refused (or handed to the fallback destination) for want of "
                                          "headroom, by the measure that refused: stt_queue, stt_busy, tts_queue, "
                                          "cpu", ["reason"], registry=r)
        self.stt_queue = Histogram("victoria_stt_queue_seconds",
                                   "Caller audio handed to a recogniser worker -> decoded (per batch, oldest frame)",
                                   buckets=QUEUE_BUCKETS, registry=r)
        self.call_encryption_counts = Counter("victoria_call_encryption_total",
                                              "Answered calls by how they crossed the network: the INVITE's last "
                                              "hop (tls, tcp, udp) and the media (srtp, rtp)",
                                              ["signalling", "media"], registry=r)
        self.stt_workers = Gauge("victoria_stt_workers", "Recogniser worker processes alive", registry=r)
        self.stt_busy = Gauge("victoria_stt_busy_ratio",
                              "Fraction of the recogniser workers' time spent decoding, over the admission window",
                              registry=r)
        self.tls_certificate_expiry = Gauge("victoria_tls_certificate_expiry_seconds",
                                            "Seconds until a TLS certificate Victoria presents expires (negative: "
                                            "expired), as last read at start or SIGHUP; certificate: listener, "
                                            "account:<name>", ["certificate"], registry=r)
        for reason in ADMISSION_REASONS:
            self.admission_refusals.labels(reason)
        for agent in agents:  # series exist at 0 from the start: rate() and absent() behave
            self.active_calls.labels(agent)
            self.calls_answered.labels(agent)
            self.barge_ins.labels(agent)
            for outcome in ("hit", "miss"):
                self.speculations.labels(agent, outcome)
        for account in accounts:
            self.registered.labels(account).set(0)
            self.registrations.labels(account)
        for stage in ("stt", "llm", "tts"):
            self.model_errors.labels(stage)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # --- the Telemetry port -------------------------------------------------

    def call_answered(self, agent: str) -> None:
        self.calls_answered.labels(agent).inc()
        self.active_calls.labels(agent).inc()

    def call_ended(self, agent: str, outcome: EndReason) -> None:
        self.calls.labels(agent, outcome.value).inc()
        self.active_calls.labels(agent).dec()

    def call_rejected(self, agent: str, outcome: EndReason) -> None:
        self.calls.labels(agent, outcome.value).inc()

    def reply_timed(self, agent: str, latency: TurnLatency) -> None:
        for stage, field in REPLY_STAGES.items():
            value = getattr(latency, field)
            if value is not None:
                self.reply_seconds.labels(stage).observe(value / 1000)

    def speech_synthesised(self, audio_seconds: float, compute_seconds: float) -> None:
        if audio_seconds > 0:
            self.tts_rtf.observe(compute_seconds / audio_seconds)

    def barge_in(self, agent: str) -> None:
        self.barge_ins.labels(agent).inc()

    def speculation(self, agent: str, outcome: str) -> None:
        self.speculations.labels(agent, outcome).inc()

    def console_login_refused(self, reason: str) -> None:
        self.console_login_refusals.labels(reason).inc()

    def model_error(self, stage: str) -> None:
        self.model_errors.labels(stage).inc()

    def turn_persisted(self) -> None:
        self.turns_persisted.inc()

    def registration_result(self, account: str, registered: bool, status_code: int) -> None:
        self.registered.labels(account).set(1 if registered else 0)
        if registered:
            self.registrations.labels(account).inc()
        elif status_code:  # 0: the registrar stopped answering OPTIONS; no REGISTER failed
            self.registration_failures.labels(account, str(status_code)).inc()

    def rtp_received(self, packets: int, lost: int, discarded: int, jitter_seconds: float | None) -> None:
        self.rtp_packets.inc(packets)
        self.rtp_lost.inc(lost)
        self.rtp_late.inc(discarded)
        if jitter_seconds is not None:
            self.rtp_jitter.observe(jitter_seconds)

    def invite_refused(self, reason: str) -> None:
        self.invites_refused.labels(reason).inc()

    def playout_underflow(self) -> None:
        self.playout_underflows.inc()

    def admission_refused(self, reason: str) -> None:
        self.admission_refusals.labels(reason).inc()

    def stt_queue_delay(self, seconds: float) -> None:
        self.stt_queue.observe(seconds)

    def call_encryption(self, signalling: str, media: str) -> None:
        self.call_encryption_counts.labels(signalling, media).inc()

    def tool_called(self, agent: str, tool: str, outcome: str, seconds: float | None) -> None:
        self.tool_calls.labels(agent, tool, outcome).inc()
        if seconds is not None:
            self.tool_seconds.labels(tool).observe(seconds)

    def certificate_read(self, certificate: str, not_after: float | None) -> None:
        """``certificate``'s expiry (Unix time) as last read; the gauge counts down to it at each scrape.
        None (the file cannot be read): the series goes, so an ``absent()`` alert fires rather than a stale value."""
        if not_after is None:
            with contextlib.suppress(KeyError):  # never read successfully: no series to remove
                self.tls_certificate_expiry.remove(certificate)
            return
        self.tls_certificate_expiry.labels(certificate).set_function(lambda: not_after - time.time())

    def watch_recognisers(self, measure: Callable[[], RecogniserLoad]) -> None:
        """The recogniser gauges, read from the pool whenever Prometheus scrapes."""
        self.stt_workers.set_function(lambda: measure().workers)
        self.stt_busy.set_function(lambda: measure().busy)
