"""Telemetry when nobody is listening: every event is dropped (tests, ``--metrics-listen off``)."""

from __future__ import annotations

from victoria_sip.domain import EndReason, TurnLatency


class NoTelemetry:
    def call_answered(self, agent: str) -> None:
        pass

    def call_ended(self, agent: str, outcome: EndReason) -> None:
        pass

    def call_rejected(self, agent: str, outcome: EndReason) -> None:
        pass

    def reply_timed(self, agent: str, latency: TurnLatency) -> None:
        pass

    def speech_synthesised(self, audio_seconds: float, compute_seconds: float) -> None:
        pass

    def barge_in(self, agent: str) -> None:
        pass

    def speculation(self, agent: str, outcome: str) -> None:
        pass

    def model_error(self, stage: str) -> None:
        pass

    def turn_persisted(self) -> None:
        pass

    def registration_result(self, account: str, registered: bool, status_code: int) -> None:
        pass

    def rtp_received(self, packets: int, lost: int, discarded: int, jitter_seconds: float | None) -> None:
        pass

    def invite_refused(self, reason: str) -> None:
        pass

    def playout_underflow(self) -> None:
        pass

    def admission_refused(self, reason: str) -> None:
        pass

    def stt_queue_delay(self, seconds: float) -> None:
        pass

    def call_encryption(self, signalling: str, media: str) -> None:
        pass

    def tool_called(self, agent: str, tool: str, outcome: str, seconds: float | None) -> None:
        pass
