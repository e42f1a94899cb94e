import pytest

from victoria_sip.application.turn_end import hangover_for
from victoria_sip.domain import TurnTaking

RULES = TurnTaking()


@pytest.mark.parametrize("words", [
    "what time do you open on sunday", "do you have a vegetarian menu", "can i bring my dog to the terrace",
    "a table for two please", "no thank you", "yes", "okay thanks",
    "i would like to book a table", "you have a vegetarian menu",  # a statement, or a question missing its opener
])
def test_a_finished_question_or_sentence_waits_the_short_hangover(words):
    assert hangover_for(words, RULES) == RULES.finished_hangover_ms


@pytest.mark.parametrize("words", [
    "um", "my order number is", "i would like a table and", "what time is the", "i'd like to speak to",
    "so uh", "can you tell me about",
])
def test_a_filler_or_an_unfinished_phrase_waits_longer(words):
    assert hangover_for(words, RULES) == RULES.unfinished_hangover_ms


@pytest.mark.parametrize("words", ["a table for two", "hello", "what time", "four four one one",
                                   "my number is four four one one", ""])
def test_anything_else_waits_the_agents_hangover(words):
    assert hangover_for(words, RULES) == RULES.hangover_ms


def test_the_agent_names_its_own_unfinished_words():
    assert hangover_for("my account", RULES) == RULES.hangover_ms
    assert hangover_for("my account", TurnTaking(unfinished_words=("account",))) == RULES.unfinished_hangover_ms


def test_a_caller_who_has_paused_before_in_the_turn_waits_the_ordinary_hangover_for_finished_looking_words():
    assert hangover_for("is there parking near the restaurant", RULES, earlier_pauses=1) == RULES.hangover_ms
    assert hangover_for("is there parking near the restaurant", RULES) == RULES.finished_hangover_ms
    # but a closing word still ends the turn soon, and an unfinished phrase still waits longer
    assert hangover_for("a table for two please", RULES, earlier_pauses=2) == RULES.finished_hangover_ms
    assert hangover_for("near the", RULES, earlier_pauses=1) == RULES.unfinished_hangover_ms
