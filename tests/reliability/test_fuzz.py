"""Property-based fuzzing (hypothesis) of the code that meets outside input: the config loader, the keypad
collector, the sentence chunker, G.711 and the sample ring. Each property is what must hold for any input;
a counterexample is a bug. Example counts are bounded so the file runs in seconds."""

import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from victoria_sip.application.chunking import SentenceChunker
from victoria_sip.application.keypad import DigitCollector, EscapeKey, KeypadEntry
from victoria_sip.audio.g711 import alaw_decode, alaw_encode, mulaw_decode, mulaw_encode
from victoria_sip.audio.ring_buffer import SampleRing
from victoria_sip.config import load_settings
from victoria_sip.errors import ConfigError

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

toml_keys = st.sampled_from(["sip", "agents", "llm", "stt", "routes", "metrics", "recording", "database", "listen",
                             "accounts", "name", "first_message", "codecs", "max_concurrent_calls", "destinations",
                             "keypad", "escape_keys", "voice", "turn_taking", "allow_invites_from", "uri", "x"])
toml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(toml_keys, inner, max_size=4),
    max_leaves=12)


def _toml(value) -> str:
    """A TOML rendering of nested dicts/lists/scalars (None becomes an empty table: TOML has no null)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if not isinstance(value, float) or value == value and abs(value) != float("inf") else "0"
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode().replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value if v is not None) + "]"
    if isinstance(value, dict) or value is None:
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in (value or {}).items()) + "}"
    raise TypeError(value)


@FUZZ
@given(st.dictionaries(toml_keys, toml_values, max_size=6))
def test_any_config_structure_loads_or_fails_with_a_config_error(tmp_path, document):
    path = tmp_path / "fuzz.toml"
    path.write_text("\n".join(f"{key} = {_toml(value)}" for key, value in document.items()))
    try:
        load_settings(path, environ={})
    except ConfigError as exc:
        assert str(exc).startswith(str(path)), "every error names the file"


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes_as_a_config_file_load_or_fail_with_a_config_error(tmp_path, data):
    path = tmp_path / "fuzz.toml"
    path.write_bytes(data)
    try:
        load_settings(path, environ={})
    except ConfigError:
        pass


keys = st.sampled_from("0123456789*#ABCD")


@FUZZ
@given(st.lists(st.tuples(keys, st.floats(0, 10)), max_size=40))
def test_every_digit_pressed_comes_out_once_in_order(presses):
    collector = DigitCollector(3.0, "#", {"*": "repeat", "0": "transfer:operator"})
    now, typed, got = 0.0, "", ""
    for key, gap in presses:
        now += gap
        for result in (collector.tick(now), collector.press(key, now)):
            if isinstance(result, KeypadEntry):
                got += result.digits
            elif isinstance(result, EscapeKey):
                assert result.key in "*0" and result.action
        if key != "#" and not (key in "*0" and typed == got):
            typed += key  # an escape key counts only with no number in progress
    if (tail := collector.tick(now + 3.5)) is not None:
        got += tail.digits
    assert got == typed
    assert not collector.collecting


@FUZZ
@given(st.lists(st.text(alphabet=string.ascii_letters + " .,;:!?'\n", max_size=40), max_size=30))
def test_chunks_keep_every_word_in_order_and_stay_speakable(deltas):
    chunker = SentenceChunker()
    chunks = [c for delta in deltas for c in chunker.push(delta)]
    if (tail := chunker.flush()) is not None:
        chunks.append(tail)
    assert " ".join(chunks).split() == "".join(deltas).split()
    assert all(chunk.strip() == chunk and chunk for chunk in chunks)
    assert all(len(chunk) <= chunker.max_chars for chunk in chunks)


samples = st.lists(st.integers(-32768, 32767), max_size=400).map(lambda xs: np.array(xs, dtype=np.int16))


@FUZZ
@given(samples)
def test_g711_round_trip_stays_within_the_codecs_step(pcm):
    for encode, decode in ((mulaw_encode, mulaw_decode), (alaw_encode, alaw_decode)):
        codes = encode(pcm)
        assert codes.dtype == np.uint8 and len(codes) == len(pcm)
        back = decode(codes).astype(np.int32)
        error = np.abs(back - pcm.astype(np.int32))
        # G.711 is logarithmic: the error grows with the level, at most ~1/16 of it (+ the smallest step)
        assert np.all(error <= np.abs(pcm.astype(np.int32)) // 16 + 64), "sample far from the original"


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes_decode_to_as_many_samples(payload):
    assert len(mulaw_decode(payload)) == len(payload) == len(alaw_decode(payload))


@FUZZ
@given(st.integers(1, 64), st.lists(st.tuples(st.booleans(), st.integers(0, 100)), max_size=60))
def test_the_ring_is_a_fifo_that_keeps_only_the_newest(capacity, operations):
    ring, model, counter = SampleRing(capacity), [], 0
    for is_push, size in operations:
        if is_push:
            block = (np.arange(counter, counter + size) % 30000).astype(np.int16)
            counter += size
            ring.push(block)
            model = (model + block.tolist())[-capacity:]
        else:
            taken = ring.pop(size).tolist()
            assert taken == model[:size]
            model = model[size:]
        assert len(ring) == len(model) <= capacity


@pytest.mark.parametrize("capacity", [0, -1])
def test_a_ring_without_room_is_refused(capacity):
    with pytest.raises(ValueError):
        SampleRing(capacity)
