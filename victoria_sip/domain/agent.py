"""Who answers: an agent's persona and voice."""

from __future__ import annotations

from dataclasses import dataclass, field

from victoria_sip.domain.site_tool import SiteTool


@dataclass(frozen=True, slots=True)
class VoiceConfig:
    """How an agent sounds. ``provider`` picks the TTS adapter, ``voice`` the model in it,
    ``speaker`` one voice of a multi-speaker model. ``pitch`` only where the engine allows (espeak)."""

    provider: str = "piper"
    voice: str = "en_US-joe-medium"
    speed: float = 1.0
    pitch: float = 1.0
    speaker: str = ""

    def __post_init__(self) -> None:
        if not 0.25 <= self.speed <= 4.0:
            raise ValueError(f"voice speed must be between 0.25 and 4.0, got {self.speed}")
        if not 0.5 <= self.pitch <= 2.0:
            raise ValueError(f"voice pitch must be between 0.5 and 2.0, got {self.pitch}")


# words after which a caller has not finished: fillers, conjunctions, articles, prepositions, "my number is"
UNFINISHED_WORDS = tuple("""
    um uh er erm hmm mm ah and or but so because then also plus if that which who
    the a an my your our their his her its this these those
    to of for with at in on from by about into than as like
    is are was were be am number name it's i'm i i'd i'll we you
""".split())


@dataclass(frozen=True, slots=True)
class TurnTaking:
    """When the caller's turn starts and ends, when they may interrupt, how silence is handled.

    A turn starts once ``start_frames`` of the last ``start_window`` 20 ms frames
    are voiced. After ``pause_ms`` of silence the words so far are recognised and,
    with ``speculate``, a reply is prepared (played only if the caller stays quiet).
    The turn ends after ``finished_hangover_ms`` of silence when those words are a
    finished question or sentence, ``unfinished_hangover_ms`` after a filler or an
    unfinished phrase (one of ``unfinished_words`` last), ``hangover_ms`` otherwise.
    webrtcvad itself keeps saying "voiced" for ~120 ms after any burst, so a 150 ms
    cough reads as ~13 voiced frames: the default of 14 (280 ms) keeps coughs and
    clicks out. Barge-in uses the same rule with ``barge_in_frames``.
    """

    vad_aggressiveness: int = 2
    start_frames: int = 14
    start_window: int = 18
    hangover_ms: int = 500
    pause_ms: int = 120
    finished_hangover_ms: int = 300
    unfinished_hangover_ms: int = 1000
    unfinished_words: tuple[str, ...] = UNFINISHED_WORDS
    speculate: bool = True
    barge_in: bool = True
    barge_in_frames: int = 14
    reprompt_after_seconds: float = 8.0
    max_reprompts: int = 2
    max_call_seconds: float = 600.0

    def __post_init__(self) -> None:
        if not 0 <= self.vad_aggressiveness <= 3:
            raise ValueError("vad_aggressiveness must be 0-3")
        if not 1 <= self.start_frames <= self.start_window:
            raise ValueError("start_frames must be between 1 and start_window")
        if not 1 <= self.barge_in_frames <= self.start_window:
            raise ValueError("barge_in_frames must be between 1 and start_window")
        if self.hangover_ms < 100:
            raise ValueError("hangover_ms must be at least 100")
        if not 100 <= self.pause_ms <= self.finished_hangover_ms <= self.hangover_ms <= self.unfinished_hangover_ms:
            raise ValueError("need 100 <= pause_ms <= finished_hangover_ms <= hangover_ms <= unfinished_hangover_ms")


KEYPAD_KEYS = frozenset("0123456789*#ABCD")
KEYPAD_ACTIONS = ("repeat", "hangup", "transfer:NAME")  # what an escape key may do (NAME: a destination)


@dataclass(frozen=True, slots=True)
class Keypad:
    """Keypad (DTMF) input: digits become one caller turn ("[keypad] 1234") when the caller presses
    ``terminator`` or stops for ``inter_digit_seconds``. ``escape_keys`` act at once when pressed with no
    number in progress, whatever the model would do: "repeat" the last reply, "hangup" (goodbye)."""

    inter_digit_seconds: float = 3.0
    terminator: str = "#"
    escape_keys: tuple[tuple[str, str], ...] = (("*", "repeat"),)

    def __post_init__(self) -> None:
        if self.terminator not in KEYPAD_KEYS:
            raise ValueError(f"terminator must be one keypad key, not {self.terminator!r}")
        for key, action in self.escape_keys:
            if key not in KEYPAD_KEYS or key == self.terminator:
                raise ValueError(f"escape key {key!r} must be one keypad key other than the terminator")
            if action not in KEYPAD_ACTIONS[:2] and not action.startswith("transfer:"):
                raise ValueError(f"escape key {key!r}: unknown action {action!r} (expected {', '.join(KEYPAD_ACTIONS)})")


@dataclass(frozen=True, slots=True)
class Destination:
    """Somewhere a caller may be put through to, by name. Blind: a REFER, and Victoria leaves at once.
    Attended: Victoria calls ``uri`` first, presses ``dtmf`` (an IVR's menu keys), announces the caller with a
    one-line summary, then connects the two (REFER with Replaces); if nobody answers, the caller stays."""

    name: str
    uri: str
    attended: bool = False
    dtmf: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a destination needs a name")
        if any(key not in KEYPAD_KEYS for key in self.dtmf):
            raise ValueError(f"destination {self.name!r}: dtmf may hold only keypad keys 0-9 * # A-D, "
                             f"got {self.dtmf!r}")
        if self.dtmf and not self.attended:
            raise ValueError(f"destination {self.name!r}: dtmf needs attended = true (Victoria must be on the "
                             "call to press keys)")


@dataclass(frozen=True, slots=True)
class Agent:
    """A persona that answers calls: what it says first and how it should behave."""

    name: str
    system_prompt: str
    first_message: str
    voice: VoiceConfig = field(default_factory=VoiceConfig)
    turn_taking: TurnTaking = field(default_factory=TurnTaking)
    keypad: Keypad = field(default_factory=Keypad)
    reprompt_message: str = "Are you still there?"
    goodbye_message: str = "Thank you for calling. Goodbye."
    llm_model: str = ""  # empty: the [llm] model
    history_turns: int = 20
    history_tokens: int = 2000
    # where calls may be put through, by name; nothing else, whatever the caller or model asks
    destinations: tuple[Destination, ...] = ()
    transfer_message: str = "Please hold, I am putting you through."
    transfer_failed_message: str = "I'm sorry, I could not put you through."
    announce_message: str = "Hello, I have a caller for you."  # to an attended transfer's target, then the summary
    fallback_destination: str = ""  # a destination: where callers go when the models fail twice in a row
    # or when there is no headroom for one more conversation: they hear this, then are put through
    busy_message: str = "All our assistants are busy at the moment."
    max_reply_delay: float = 4.0  # seconds from the end of the caller's speech to the reply's first audio
    tools: tuple[SiteTool, ...] = ()  # the site's services the model may call ([[agents.tools]])

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("an agent needs a name")
        names = {destination.name for destination in self.destinations}
        if len(names) < len(self.destinations):
            raise ValueError("two destinations have the same name")
        if self.fallback_destination and self.fallback_destination not in names:
            raise ValueError(f"fallback_destination {self.fallback_destination!r} is not one of the agent's "
                             f"destinations ({', '.join(sorted(names)) or 'none'})")
        tool_names = [tool.name for tool in self.tools]
        if len(set(tool_names)) < len(tool_names):
            raise ValueError("two tools have the same name")
        for key, action in self.keypad.escape_keys:
            if action.startswith("transfer:") and action.removeprefix("transfer:") not in names:
                raise ValueError(f"escape key {key!r} transfers to {action.removeprefix('transfer:')!r}, "
                                 f"which is not one of the agent's destinations ({', '.join(sorted(names)) or 'none'})")

    def destination(self, name: str) -> Destination | None:
        return next((d for d in self.destinations if d.name == name), None)

    def tool(self, name: str) -> SiteTool | None:
        return next((t for t in self.tools if t.name == name), None)
