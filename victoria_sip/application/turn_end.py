"""How long to wait in a pause, from the words the caller has said so far.

    hangover_for("what time do you open on sunday", rules)  ->  rules.finished_hangover_ms
    hangover_for("my order number is", rules)               ->  rules.unfinished_hangover_ms
    hangover_for("i would like to book a table", rules)      ->  rules.finished_hangover_ms
    hangover_for("four four one one", rules)                 ->  rules.hangover_ms

A recogniser gives words without punctuation, so "finished" is read from their
shape: a closing word ("please", "thanks", "yes"), a question that starts as one,
or any phrase of five words or more, ending on a content word. The last rule
matters most on the telephone: over G.711 the recogniser often loses or garbles a
question's first word ("do you have a vegetarian menu" heard as "you have a
vegetarian menu"), so the opener alone would miss most questions (measured with
the latency bench: 1 of 5). After a filler, a conjunction or a word that needs
another ("the", "my", "is"), the caller is still thinking: wait longer. Digits
and short phrases wait the agent's ordinary hangover (callers read numbers in
groups), and so does a caller who has already paused in this turn: they are
putting it together as they go ("is there parking ... near the restaurant ...
or should I take the bus"), and a phrase of theirs that looks finished often
is not (the latency bench's paused questions: 8 of 10 cut off without this
rule, 6 of 10 with it, as with a fixed hangover). Wrong guesses cost little: too early is caught by the speculative reply
being cancelled if the caller goes on within the hangover, too late is today's
wait.
"""

from __future__ import annotations

import re

from victoria_sip.domain import TurnTaking

QUESTION_OPENERS = frozenset(
    "what when where who whom whose which why how can could do does did is are was were will would should shall "
    "may might have has am".split())
CLOSING_WORDS = frozenset("please thanks bye goodbye yes no okay ok sure right correct fine".split())
NUMBER_WORDS = frozenset("zero oh one two three four five six seven eight nine ten hundred thousand".split())
MIN_QUESTION_WORDS = 3  # "what time" is a start, "what time is it" a question
MIN_STATEMENT_WORDS = 5  # "a table for two" may go on; "i would like to book a table" is a sentence


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def hangover_for(text: str, rules: TurnTaking, earlier_pauses: int = 0) -> int:
    """How long to wait after ``text``; ``earlier_pauses``: pauses the caller has already made in this turn."""
    words = words_of(text)
    if not words:
        return rules.hangover_ms
    if words[-1] in CLOSING_WORDS or words[-2:] == ["thank", "you"]:
        return rules.finished_hangover_ms
    if words[-1] in rules.unfinished_words:
        return rules.unfinished_hangover_ms
    if words[-1] in NUMBER_WORDS or earlier_pauses:
        return rules.hangover_ms
    if words[0] in QUESTION_OPENERS and len(words) >= MIN_QUESTION_WORDS or len(words) >= MIN_STATEMENT_WORDS:
        return rules.finished_hangover_ms
    return rules.hangover_ms
