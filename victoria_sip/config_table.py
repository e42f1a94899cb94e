"""One TOML table read with its types checked: every value asked for by name, with a default and a range,
every unknown key refused, and every error naming the file and the key's full path (``ConfigError``)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from victoria_sip.errors import ConfigError
from victoria_sip.settings import HostPort


class ConfigTable:
    """Reads one TOML table, checking types and reporting unknown keys, with the key's full path."""

    def __init__(self, data: Any, source: str, path: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(source, path, f"expected a table, got {type(data).__name__}")
        self._data = data
        self._source = source
        self._path = path
        self._seen: set[str] = set()

    @property
    def source(self) -> str:
        return self._source

    def key(self, name: str) -> str:
        return f"{self._path}.{name}" if self._path else name

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self._source, self.key(name), problem)

    def keys(self) -> list[str]:
        return list(self._data)

    def raw(self, name: str) -> Any:
        self._seen.add(name)
        return self._data.get(name)

    def string(self, name: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        value = self.raw(name)
        if value is None:
            if default is None:
                raise self.error(name, "is required (a string)")
            return default
        if not isinstance(value, str):
            raise self.error(name, f"expected a string, got {value!r}")
        if choices and value not in choices:
            raise self.error(name, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {value!r}")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.error(name, f"expected an integer from {low} to {high}, got {value!r}")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
            raise self.error(name, f"expected a number from {low} to {high}, got {value!r}")
        return float(value)

    def strings(self, name: str, default: tuple[str, ...], choices: tuple[str, ...]) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, list) or (choices and not value) or not all(isinstance(v, str) for v in value):
            raise self.error(name, f"expected a {'non-empty ' if choices else ''}list of strings, got {value!r}")
        unknown = [v for v in value if choices and v not in choices]
        if unknown:
            raise self.error(name, f"unknown {unknown[0]!r}; expected some of {', '.join(choices)}")
        return tuple(value)

    def host_port(self, name: str, default: HostPort) -> HostPort:
        return parse_host_port(self.string(name, str(default)), self._source, self.key(name))

    def tables(self, name: str) -> list[ConfigTable]:
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(name, "expected an array of tables ([[...]])")
        return [ConfigTable(item, self._source, f"{self.key(name)}[{i}]") for i, item in enumerate(value)]

    def table(self, name: str) -> ConfigTable:
        return ConfigTable(self.raw(name) or {}, self._source, self.key(name))

    def finish(self) -> None:
        unknown = sorted(set(self._data) - self._seen)
        if unknown:
            raise self.error(unknown[0], "unknown key (check the spelling against config/victoria.example.toml)")


def parse_listen_or_off(text: str, source: str, key: str) -> HostPort | None:
    return None if text.strip().lower() == "off" else parse_host_port(text, source, key)


def parse_host_port(text: str, source: str, key: str) -> HostPort:
    match = re.fullmatch(r"\[?([^\]]+?)\]?:(\d{1,5})", text.strip())
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ConfigError(source, key, f"expected HOST:PORT such as 0.0.0.0:5060, got {text!r}")
    host = match.group(1)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(source, key, f"expected a numeric IP address to listen on, got {host!r}") from None
    return HostPort(host, int(match.group(2)))
