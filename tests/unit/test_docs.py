"""docs/configuration.md lists every key of config/victoria.example.toml, in the right section, with the
example's value as its default (or "required"): the reference cannot drift from the file the code checks."""

import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]


def example_keys() -> dict[str, object]:
    found: dict[str, object] = {}

    def walk(table: dict, prefix: str) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                walk(value[0], f"{prefix}{key}.")
            else:
                found[prefix + key] = value

    walk(tomllib.loads((ROOT / "config" / "victoria.example.toml").read_text()), "")
    return found


def documented() -> dict[tuple[str, str], str]:
    """(section, key) -> default cell, from the tables under each heading."""
    rows, section = {}, "top"
    for line in (ROOT / "docs" / "configuration.md").read_text().splitlines():
        if line.startswith("#"):
            match = re.search(r"`(\[\[?[^`]+\]\]?)`", line)
            section = match.group(1) if match else "top"
        elif match := re.match(r"\| `([^`]+)` \| (.+?) \|", line):
            rows[(section, match.group(1))] = match.group(2)
    return rows


def where(path: str) -> tuple[str, str] | None:
    parts = path.split(".")
    if parts[0] == "routes":
        return None  # example routes, not keys
    if len(parts) == 1:
        return "top", parts[0]
    if parts[:2] == ["sip", "accounts"]:
        return "[[sip.accounts]]", parts[2]
    if parts[0] == "agents" and len(parts) == 2:
        return "[[agents]]", parts[1]
    if parts[:3] == ["agents", "keypad", "escape_keys"]:
        return "[agents.keypad]", "escape_keys.KEY"
    if parts[0] == "agents":
        return f"[agents.{parts[1]}]", parts[2]
    if parts[0] in ("database", "metrics", "web", "recording", "history", "offline"):
        return "[database]", path
    return f"[{parts[0]}]", parts[1]


def toml_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, list)):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def test_every_example_key_is_documented_with_its_default():
    rows = documented()
    missing, wrong = [], []
    for path, value in example_keys().items():
        spot = where(path)
        if spot is None:
            continue
        if spot not in rows:
            missing.append(path)
            continue
        cell = rows[spot]
        if cell == "required" or cell.startswith("(") or spot[1] == "escape_keys.KEY":
            continue
        if cell != f"`{toml_literal(value)}`":
            wrong.append(f"{path}: docs say {cell}, the example has {toml_literal(value)}")
    assert not missing, f"keys of the example missing from docs/configuration.md: {missing}"
    assert not wrong, wrong
