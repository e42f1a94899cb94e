"""What Victoria tells the person she puts a caller through to (attended transfer): one line about the call.

The model writes the line while the target's phone rings. It gets the transcript
as one message under a briefing prompt (not the agent's persona), so it reports
on the call instead of continuing it. When the model is slow or fails, the
caller's last words stand in: the target still learns something, and the
caller is not kept waiting on a model that is already misbehaving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone

from victoria_sip.domain import Agent, ConversationTurn, Role
from victoria_sip.domain.ports import LanguageModel
from victoria_sip.errors import ModelError

log = logging.getLogger("victoria.conversation")

BRIEFING_PROMPT = ("You brief a colleague who is about to take over a phone call. Reply with one short sentence "
                   "saying what the caller wants. No greeting, no preamble.")
MAX_SUMMARY_CHARS = 200
SENTENCE_ENDS = ".!?"


async def summarise(llm: LanguageModel, agent: Agent, turns: Sequence[ConversationTurn], timeout: float) -> str:
    """One sentence on what the caller wants; the caller's last words if the model fails or takes ``timeout``."""
    transcript = "\n".join(f"{turn.role.value}: {turn.content}" for turn in turns
                           if turn.role is not Role.SYSTEM and turn.content)
    if not any(turn.role is Role.CALLER for turn in turns):
        return ""  # the caller said nothing yet (pressed 0 at once): nothing to summarise
    request = ConversationTurn(0, Role.CALLER, f"The call so far:\n{transcript}\n\nWhat does the caller want?",
                               datetime.now(timezone.utc))
    words: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            async for delta in llm.stream_reply(replace(agent, system_prompt=BRIEFING_PROMPT), [request]):
                if isinstance(delta, str):
                    words.append(delta)
                    text = "".join(words).strip()
                    if len(text) >= MAX_SUMMARY_CHARS or (text and text[-1] in SENTENCE_ENDS):
                        break
    except (TimeoutError, ModelError) as exc:
        log.warning("no summary from the model for the transfer (%s); using the caller's last words",
                    exc or f"none within {timeout:g} s")
        words = []
    summary = "".join(words).strip()[:MAX_SUMMARY_CHARS]
    if summary:
        return summary
    last = next(turn.content for turn in reversed(turns) if turn.role is Role.CALLER and turn.content)
    return f'The caller said: "{last}"'


def announcement(agent: Agent, summary: str) -> str:
    return f"{agent.announce_message} {summary}".strip()
