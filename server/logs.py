"""Structured logs: one JSON object per line on stderr.

Each line carries ``ts``, ``level``, ``logger``, ``msg``, any ``extra`` fields given to the
logging call (``conn``, ``user``, ``raid``, ...) and, for exceptions, the formatted
traceback as a single ``exc`` string, so a log shipper never sees a multi-line record.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRS = frozenset(logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """Formats a record as one compact JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and key not in line:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # default=str: a log call must never fail because an extra is not JSON-able.
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(level: int | str = logging.INFO) -> None:
    """Route every logger through one JSON handler on stderr.

    Calling it again replaces the handler it installed before; handlers installed by
    others (pytest's log capture, for one) are left alone.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old.formatter, JsonFormatter):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
