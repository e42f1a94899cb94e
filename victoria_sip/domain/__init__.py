"""The domain: calls, agents and conversations. Standard library only."""

from victoria_sip.domain.agent import Agent, Destination, Keypad, TurnTaking, VoiceConfig
from victoria_sip.domain.call import (
    Call,
    CallId,
    CallStatus,
    Encryption,
    EndReason,
    IllegalTransition,
    MediaStats,
    PhoneNumber,
)
from victoria_sip.domain.call_filter import CallFilter
from victoria_sip.domain.console_user import ConsoleRole, ConsoleUser
from victoria_sip.domain.site_tool import SiteTool
from victoria_sip.domain.conversation import Conversation, ConversationTurn, Role, TurnLatency

__all__ = [
    "Agent",
    "Call",
    "CallFilter",
    "CallId",
    "CallStatus",
    "ConsoleRole",
    "ConsoleUser",
    "Conversation",
    "ConversationTurn",
    "Destination",
    "Encryption",
    "EndReason",
    "IllegalTransition",
    "Keypad",
    "MediaStats",
    "PhoneNumber",
    "Role",
    "SiteTool",
    "TurnLatency",
    "TurnTaking",
    "VoiceConfig",
]
