"""What of the conversation goes to the LLM: the newest turns that fit the agent's budget."""

from __future__ import annotations

from collections.abc import Sequence

from victoria_sip.domain import ConversationTurn

CHARS_PER_TOKEN = 4  # a rough, model-independent estimate; budgets are approximate by design
TOKENS_PER_MESSAGE = 4


def estimated_tokens(turn: ConversationTurn) -> int:
    return len(turn.content) // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE


def trim_history(turns: Sequence[ConversationTurn], max_turns: int, max_tokens: int) -> list[ConversationTurn]:
    """The newest turns, at most ``max_turns`` and about ``max_tokens``; the newest one always stays."""
    kept: list[ConversationTurn] = []
    used = 0
    for turn in reversed(turns):
        cost = estimated_tokens(turn)
        if kept and (len(kept) >= max_turns or used + cost > max_tokens):
            break
        kept.append(turn)
        used += cost
    return kept[::-1]
