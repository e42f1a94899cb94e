import pytest

from victoria_sip.application.turn_end import hangover_for
from victoria_sip.domain import TurnTaking

RULES = TurnTaking()


@pytest.mark.parametrize("words", [
    "what time do you open on sunday", "do you have a vegetarian menu", "can i bring my dog to the terrace",
    "a table for two please", "no thank you", "yes", "okay thanks",
])
def test_a_finished_question_or_sentence_waits_the_short_hangover(words):
    assert hangover_for(words, RULES) == RULES.finished_hangover_ms


@pytest.mark.parametrize("words", [
    "um", "my order number is", "i would like a table and", "what time is the", "i'd like to speak to",
    "so uh", "can you tell me about",
])
def test_a_filler_or_an_unfinished_phrase_waits_longer(words):
    assert hangover_for(words, RULES) == RULES.unfinished_hangover_ms


@pytest.mark.parametrize("words", ["i would like to book a table", "hello", "what time", "four four one one", ""])
def test_anything_else_waits_the_agents_hangover(words):
    assert hangover_for(words, RULES) == RULES.hangover_ms


def test_the_agent_names_its_own_unfinished_words():
    assert hangover_for("my account", RULES) == RULES.hangover_ms
    assert hangover_for("my account", TurnTaking(unfinished_words=("account",))) == RULES.unfinished_hangover_ms
