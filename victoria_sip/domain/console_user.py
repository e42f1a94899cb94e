"""Who may use the console: a name, a role, and a password kept only as a hash.

    hashed = hash_password("correct horse")           # scrypt, a fresh salt each time
    verify_password("correct horse", hashed)          # True
    ConsoleUser.new("ops", ConsoleRole.VIEWER, hashed)

scrypt from the standard library (no dependency to vet on an air-gapped site),
at n=2**15, r=8: ~32 MB and ~0.1 s a guess on this project's machine, so
a stolen database is slow to crack and a login is still quick. The stored form
names its parameters, so they can be raised later without breaking old hashes.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_PASSWORD_CHARS = 10
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class ConsoleRole(enum.Enum):
    VIEWER = "viewer"  # live calls and history; keypad turns masked
    ADMIN = "admin"  # also test calls, users, revealing keypad turns


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    name: str
    role: ConsoleRole
    password_hash: str
    created_at: datetime

    @classmethod
    def new(cls, name: str, role: ConsoleRole, password_hash: str) -> ConsoleUser:
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError(f"user name {name!r}: letters, digits and . _ @ -, up to 64, starting with a letter "
                             "or digit")
        return cls(name, role, password_hash, datetime.now(timezone.utc))


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"a password needs at least {MIN_PASSWORD_CHARS} characters"
    if password != password.strip():
        return "a password may not start or end with white space (a pasted line break?)"
    return None


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from; a malformed hash matches nothing."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = _scrypt(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES,
                          maxmem=256 * n * r + (1 << 20))  # the default 32 MB is exactly too little at n=2**15


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
