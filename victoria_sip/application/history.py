"""What of the conversation goes to the LLM: the newest turns that fit the agent's budget.

Once a call outgrows the budget, the cut moves in steps of half the turn budget
(half of what fits) rather than a turn per request: the turns sent keep the same start for several
requests, so a local LLM reuses what it has already read of the prompt (llama.cpp
and Ollama keep the longest common start of the previous prompt). Dropping one
turn per request would change the start every time and make the model re-read
the whole history before its first token (~1.2 s for SmolLM2 on two cores).
"""

from __future__ import annotations

from collections.abc import Sequence

from victoria_sip.domain import ConversationTurn

CHARS_PER_TOKEN = 4  # a rough, model-independent estimate; budgets are approximate by design
TOKENS_PER_MESSAGE = 4


def estimated_tokens(turn: ConversationTurn) -> int:
    return len(turn.content) // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE


def trim_history(turns: Sequence[ConversationTurn], max_turns: int, max_tokens: int) -> list[ConversationTurn]:
    """The newest turns, at most ``max_turns`` and about ``max_tokens``; the newest one always stays."""
    earliest = len(turns)  # the earliest turn that fits, counting back from the newest
    used = 0
    for index in range(len(turns) - 1, -1, -1):
        cost = estimated_tokens(turns[index])
        if earliest < len(turns) and (len(turns) - index > max_turns or used + cost > max_tokens):
            break
        earliest = index
        used += cost
    if earliest == 0:
        return list(turns)
    step = max(1, (len(turns) - earliest) // 2)  # half of what fits: at least half the budget is always sent
    start = min(-(-earliest // step) * step, len(turns) - 1)  # rounded up to a step: stable across requests
    return list(turns[start:])
