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


def test_the_turn_budget_keeps_the_newest_within_it():
    turns = conversation(30)
    kept = trim_history(turns, 10, 10_000)
    assert kept == turns[-10:]  # 30 turns: the cut falls on a step of five
    assert trim_history(turns[:28], 10, 10_000) == turns[20:28]  # not 18: the start stays where it was


def test_the_token_budget_keeps_the_newest_that_fit():
    turns = conversation(30)
    per_turn = estimated_tokens(turns[-1])
    kept = trim_history(turns, 100, per_turn * 5 + 1)
    assert 3 <= len(kept) <= 5 and kept[-1] == turns[-1]  # at least half of what fits


def test_the_newest_turn_stays_even_if_it_alone_is_over_budget():
    turns = conversation(3, text="y" * 10_000)
    assert trim_history(turns, 20, 10) == turns[-1:]


def test_once_trimmed_the_start_of_what_is_sent_stays_put_for_several_turns():
    # a local LLM reuses its cache of the prompt's start only if that start does not move with every request
    turns = conversation(40)
    starts = [trim_history(turns[:n], 10, 10_000)[0].index for n in range(11, 41)]
    assert all(len(trim_history(turns[:n], 10, 10_000)) <= 10 for n in range(11, 41))
    assert len(set(starts)) <= 30 // 5 + 1, starts  # moves in steps of five turns, not one
    assert all(turns[:n][-1] == trim_history(turns[:n], 10, 10_000)[-1] for n in range(11, 41))
