"""How long to wait in a pause, from the words the caller has said so far.

    hangover_for("what time do you open on sunday", rules)  ->  rules.finished_hangover_ms
    hangover_for("my order number is", rules)               ->  rules.unfinished_hangover_ms
    hangover_for("i would like to book a table", rules)      ->  rules.hangover_ms

A recogniser gives words without punctuation, so "finished" is read from their
shape: a question that starts as one and ends on a content word, or a closing
word ("please", "thanks", "yes"). After a filler, a conjunction or a word that
needs another ("the", "my", "is"), the caller is still thinking: wait longer.
Everything else waits the agent's ordinary hangover. Wrong guesses cost little:
too early is caught by the speculative reply being cancelled if the caller goes
on within the hangover, too late is today's wait.
"""

from __future__ import annotations

import re

from victoria_sip.domain import TurnTaking

QUESTION_OPENERS = frozenset(
    "what when where who whom whose which why how can could do does did is are was were will would should shall "
    "may might have has am".split())
CLOSING_WORDS = frozenset("please thanks bye goodbye yes no okay ok sure right correct fine".split())
MIN_QUESTION_WORDS = 3  # "what time" is a start, "what time is it" a question


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def hangover_for(text: str, rules: TurnTaking) -> int:
    words = words_of(text)
    if not words:
        return rules.hangover_ms
    if words[-1] in CLOSING_WORDS or words[-2:] == ["thank", "you"]:
        return rules.finished_hangover_ms
    if words[-1] in rules.unfinished_words:
        return rules.unfinished_hangover_ms
    if words[0] in QUESTION_OPENERS and len(words) >= MIN_QUESTION_WORDS:
        return rules.finished_hangover_ms
    return rules.hangover_ms
