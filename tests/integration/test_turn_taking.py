"""Turn-taking on a live call: a pause in the middle of a sentence is not its end.

Kamailio, ``victoria-sip serve`` with PocketSphinx and Piper, the Ollama-protocol
double, and a pjsua2 caller who says one sentence with a ~400 ms pause inside it
("My table is ... for two people tomorrow evening"): longer than a pause that
starts a prepared reply and than the short hangover of finished-looking words,
shorter than the ordinary one. Victoria answers once, to the whole sentence;
what she prepared in the pause is never heard.
"""

import re

import numpy as np
import pytest

from tests.integration.test_conversation import RATE, call, frames, silence, transcribe, victoria_for
from tests.support.ollama_double import OllamaDouble

pytestmark = pytest.mark.integration

FIRST_HALF = "My table is"  # ends on "is" (1 s), or heard garbled: under five words, not a question (500 ms)
SECOND_HALF = "for two people tomorrow evening."
REPLY = "Certainly, a table for two people tomorrow evening. Shall I book it for you?"
PAUSE_SECONDS = 0.2  # plus the voice's own ~160 ms tail and ~40 ms lead-in: a pause of ~400 ms


def test_a_caller_who_pauses_mid_sentence_gets_one_reply_to_the_whole_sentence(tmp_path, kamailio, piper_voice):
    first, second = piper_voice(FIRST_HALF), piper_voice(SECOND_HALF)
    spoken_until = 3 + (len(first) + len(second)) / RATE + PAUSE_SECONDS
    audio = np.concatenate([silence(3), first, silence(PAUSE_SECONDS), second, silence(9)])
    with OllamaDouble(reply=REPLY) as ollama:
        server = victoria_for(tmp_path, kamailio, ollama.host)
        try:
            _, heard = call(kamailio, tmp_path, audio, hangup_after=len(audio) / RATE)
            server.wait_for_log(r"ended, caller-hangup", timeout=15)
            _, metrics = server.http_get("/metrics")
        finally:
            assert server.stop() == 0

    [summary] = server.calls()
    turns = server.call_detail(summary["id"])["turns"]
    assert [t["role"] for t in turns] == ["assistant", "caller", "assistant"], turns
    caller_words = set(turns[1]["text"].split())
    assert caller_words & {"my", "table", "is"} and caller_words & {"two", "people", "tomorrow", "evening"}, \
        f"one caller turn holds both halves: {turns[1]['text']!r}"
    assert turns[2]["text"] == REPLY and not turns[2]["interrupted"]

    # every prepared reply that was not the answer was discarded unheard: nothing loud before the sentence ended
    reply_frames = np.nonzero(frames(heard)[int(3.5 * 50):] > -40)[0] + int(3.5 * 50)  # after the greeting
    assert reply_frames[0] / 50 >= spoken_until, (reply_frames[0] / 50, spoken_until)
    words = set(transcribe(heard[reply_frames[0] * 320:]).split())
    assert len(words & {"table", "two", "people", "tomorrow", "evening", "book", "you"}) >= 3, words
    outcomes = dict(re.findall(r'victoria_speculative_replies_total\{agent="front",outcome="(\w+)"\} (\S+)',
                               metrics))
    assert float(outcomes["miss"]) >= 1, f"a reply was prepared in the mid-sentence pause: {outcomes}"
