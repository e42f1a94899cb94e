from victoria_sip.application.history import estimated_tokens, trim_history
from victoria_sip.domain import Conversation


def conversation(n: int, text: str = "x" * 40):
    c = Conversation()
    for i in range(n):
        c.add_turn("caller" if i % 2 else "assistant", f"{i} {text}")
    return c.turns


def test_short_histories_pass_whole():
    turns = conversation(4)
    assert trim_history(turns, 20, 2000) == turns


def test_the_turn_budget_keeps_the_newest():
    turns = conversation(30)
    kept = trim_history(turns, 10, 10_000)
    assert kept == turns[-10:]


def test_the_token_budget_keeps_the_newest_that_fit():
    turns = conversation(30)
    per_turn = estimated_tokens(turns[-1])
    kept = trim_history(turns, 100, per_turn * 5 + 1)
    assert kept == turns[-5:]


def test_the_newest_turn_stays_even_if_it_alone_is_over_budget():
    turns = conversation(3, text="y" * 10_000)
    assert trim_history(turns, 20, 10) == turns[-1:]
