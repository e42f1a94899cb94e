import pytest

from victoria_sip.application.chunking import SentenceChunker


def chunk_stream(pieces, **kwargs):
    chunker = SentenceChunker(**kwargs)
    out = []
    for piece in pieces:
        out.extend(chunker.push(piece))
    tail = chunker.flush()
    return out + ([tail] if tail else [])


def test_sentences_come_out_as_soon_as_the_next_token_confirms_them():
    chunker = SentenceChunker()
    assert chunker.push("Sure") == []
    assert chunker.push(".") == []  # could still be "Sure.5"? no: but a following space confirms the end
    assert chunker.push(" I can") == ["Sure."]
    assert chunker.push(" help!\nWhat") == ["I can help!"]
    assert chunker.flush() == "What"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Dr. Smith sees you at 3.30 pm. Bye.", ["Dr. Smith sees you at 3.30 pm.", "Bye."]),
        ("It costs 1,250.75 dollars. Okay?", ["It costs 1,250.75 dollars.", "Okay?"]),
        ("Bring e.g. your card, i.e. the blue one. Thanks.", ["Bring e.g. your card,", "i.e. the blue one.", "Thanks."]),
        ("Ask J. Smith at St. Mary's. He knows.", ["Ask J. Smith at St. Mary's.", "He knows."]),
        ("Really?! Yes. \"Quoted.\" Done", ["Really?!", "Yes.", "\"Quoted.\"", "Done"]),
        ("Version 2.0 is out.", ["Version 2.0 is out."]),
    ],
)
def test_no_split_inside_numbers_abbreviations_or_initials(text, expected):
    # token by token, as an LLM streams, splitting words arbitrarily
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
    assert chunk_stream(pieces) == expected


def test_long_clauses_are_cut_at_commas_once_long_enough():
    text = "Our opening hours on weekdays are from nine in the morning, until six in the evening, except holidays."
    chunks = chunk_stream([text], clause_min_chars=40)
    assert chunks[0] == "Our opening hours on weekdays are from nine in the morning,"
    assert "".join(chunks).replace(" ", "") == text.replace(" ", "")


def test_short_clauses_are_not_cut_after_the_first_chunk():
    assert chunk_stream(["Sure. Yes, of course, we can."]) == ["Sure.", "Yes, of course, we can."]


def test_the_first_chunk_is_the_first_clause_so_the_voice_starts_sooner():
    assert chunk_stream(["Certainly, a table for two people tomorrow evening. Shall I book it?"]) == [
        "Certainly,", "a table for two people tomorrow evening.", "Shall I book it?"]
    assert chunk_stream(["Yes, of course, we can."]) == ["Yes, of course,", "we can."]
    assert chunk_stream(["Yes, we can."], first_clause_min_chars=60) == ["Yes, we can."]


def test_text_without_punctuation_is_cut_at_a_space_when_too_long():
    words = " ".join(["word"] * 100)
    chunks = chunk_stream([words], max_chars=50)
    assert all(len(c) <= 50 for c in chunks)
    assert " ".join(chunks).split() == words.split()


def test_flush_of_nothing_is_none():
    chunker = SentenceChunker()
    assert chunker.flush() is None
    chunker.push("   ")
    assert chunker.flush() is None
