from victoria_sip.application.keypad import DigitCollector, EscapeKey, KeypadEntry


def collector() -> DigitCollector:
    return DigitCollector(3.0, "#", {"*": "repeat", "0": "hangup"})


def test_digits_end_with_the_terminator_at_once():
    keypad = collector()
    assert [keypad.press(k, t) for k, t in (("1", 0.0), ("2", 0.5), ("3", 1.0))] == [None, None, None]
    assert keypad.press("#", 1.2) == KeypadEntry("123")
    assert not keypad.collecting


def test_digits_end_after_the_inter_digit_timeout_counted_from_the_last_digit():
    keypad = collector()
    keypad.press("4", 0.0)
    keypad.press("2", 2.0)
    assert keypad.tick(4.9) is None
    assert keypad.tick(5.0) == KeypadEntry("42")
    assert keypad.tick(9.0) is None


def test_an_escape_key_acts_only_when_no_number_is_being_typed():
    keypad = collector()
    assert keypad.press("0", 0.0) == EscapeKey("0", "hangup")
    keypad.press("1", 1.0)
    assert keypad.press("0", 1.5) is None, "in the middle of a number, 0 is a digit"
    assert keypad.press("#", 2.0) == KeypadEntry("10")
    assert keypad.press("*", 3.0) == EscapeKey("*", "repeat")
