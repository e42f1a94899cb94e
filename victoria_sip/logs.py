"""Log output for ops: one line per event, human-readable or JSON (for Promtail/Loki).

Lines logged while a call is being handled carry its id: ``call_id`` is a
context variable that the application sets for each call's tasks, and the
formatters add it to every record. Configured by the CLI, never on import.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import datetime, timezone

current_call_id: ContextVar[str | None] = ContextVar("current_call_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s%(call_suffix)s"


class _CallIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        call_id = getattr(record, "call_id", None) or current_call_id.get()
        record.call_id = call_id
        record.call_suffix = f" [call {call_id}]" if call_id and call_id not in record.getMessage() else ""
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if getattr(record, "call_id", None):
            line["call_id"] = record.call_id
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_CallIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))


def current() -> tuple[str, str] | None:
    """The (level, format) ``configure`` was called with, for a worker process to log the same way; None if not."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if any(isinstance(f, _CallIdFilter) for f in h.filters)), None)
    if handler is None:
        return None
    return logging.getLevelName(root.level).lower(), "json" if isinstance(handler.formatter, JsonFormatter) else "text"
