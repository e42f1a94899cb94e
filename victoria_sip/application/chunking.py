"""Cuts a streaming LLM reply into speakable chunks as early as it safely can.

    push("Sure. Dr. Smith") -> ["Sure."]          push(" sees you at 3.30 pm.") -> []
    push(" Anything else?") -> ["Dr. Smith sees you at 3.30 pm."]      flush() -> "Anything else?"

A chunk ends at a sentence end (. ! ? followed by a space or newline), or at a
clause boundary (, ; : or a dash followed by a space) once it is at least
``clause_min_chars`` long; the first chunk already at ``first_clause_min_chars``
("Certainly," is spoken while the rest of the sentence is synthesised: the voice
takes ~100 ms for a clause, ~300 ms for a long sentence). Never inside a number ("3.30", "1,000"), after an
abbreviation ("Dr.", "e.g.") or an initial ("J. Smith").
"""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc eg e.g ie i.e no nr approx appt dept inc ltd co mt ft ave blvd rd tel ext"
    " jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun".split()
)
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s)|\n+")
_CLAUSE_END = re.compile(r"[,;:](?=\s)|\s[–—-](?=\s)")


def _is_abbreviation(text: str, dot: int) -> bool:
    if text[dot] != ".":
        return False
    word = re.search(r"([A-Za-z][A-Za-z.]*)$", text[:dot])
    if word is None:
        return False
    token = word.group(1).lower()
    return token in ABBREVIATIONS or (len(token) == 1 and text[dot - 1].isupper())


class SentenceChunker:
    def __init__(self, clause_min_chars: int = 60, max_chars: int = 250, first_clause_min_chars: int = 8) -> None:
        self.clause_min_chars = clause_min_chars
        self.first_clause_min_chars = first_clause_min_chars
        self.max_chars = max_chars
        self._buffer = ""
        self._cut_before = False  # a chunk has been given out

    def push(self, text: str) -> list[str]:
        self._buffer += text
        chunks = []
        while (cut := self._next_cut()) is not None:
            chunk, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if chunk:
                chunks.append(chunk)
                self._cut_before = True
        return chunks

    def flush(self) -> str | None:
        chunk, self._buffer = self._buffer.strip(), ""
        return chunk or None

    def _next_cut(self) -> int | None:
        sentence = next((match.end() for match in _SENTENCE_END.finditer(self._buffer)
                         if not _is_abbreviation(self._buffer, match.start())), None)
        clause_min_chars = self.clause_min_chars if self._cut_before else self.first_clause_min_chars
        clause = next((match.end() for match in _CLAUSE_END.finditer(self._buffer)
                       if match.end() >= clause_min_chars), None)
        if sentence is not None or clause is not None:
            return min(cut for cut in (sentence, clause) if cut is not None)
        if len(self._buffer) > self.max_chars:  # no punctuation at all: cut at the last space
            space = self._buffer.rfind(" ", 0, self.max_chars)
            return space if space > 0 else self.max_chars
        return None
