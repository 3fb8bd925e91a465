"""Logs on stderr, for people and for machines.

Two formats, chosen with ``--log-format``:

- ``json``: one JSON object per line with ``ts``, ``level``, ``logger``, ``msg``, any
  ``extra`` fields given to the logging call (``conn``, ``user``, ``raid``, ...) and, for
  exceptions, the formatted traceback as a single ``exc`` string, so a log shipper never sees
  a multi-line record.
- ``text``: ``time level logger message key=value ...`` with the level and logger in aligned
  columns, coloured when the stream is a terminal (and ``NO_COLOR`` is not set).

``auto`` (the default) is ``text`` on a terminal and ``json`` otherwise: people read the
terminal, machines read redirected output. The websockets library's own loggers are kept at
WARNING: our access and connection lines say the same thing once, without object reprs.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

LOG_FORMATS = ("auto", "text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRS = frozenset(logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRS}


class JsonFormatter(logging.Formatter):
    """Formats a record as one compact JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _extras(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # default=str: a log call must never fail because an extra is not JSON-able.
        return json.dumps(line, default=str, ensure_ascii=False)


_COLOURS = {
    "DEBUG": "\x1b[2m",  # dim
    "INFO": "\x1b[32m",  # green
    "WARNING": "\x1b[33m",  # yellow
    "ERROR": "\x1b[31m",  # red
    "CRITICAL": "\x1b[1;31m",  # bold red
}
_DIM = "\x1b[2m"
_RESET = "\x1b[0m"


class TextFormatter(logging.Formatter):
    """``21:04:05.123 INFO  gateway   connected  conn=1a2b3c4d user=alice`` (local time).

    The logger column drops the ``raid.`` prefix every logger of ours shares.
    """

    def __init__(self, colour: bool) -> None:
        super().__init__()
        self.colour = colour  # ANSI colours (a terminal that wants them)

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        level = f"{record.levelname:<7}"
        name = record.name.removeprefix("raid.").removeprefix("actors.")
        fields = " ".join(f"{k}={_field(v)}" for k, v in _extras(record).items())
        if self.colour:
            level = f"{_COLOURS.get(record.levelname, '')}{level}{_RESET}"
            when = f"{_DIM}{when}{_RESET}"
            fields = f"{_DIM}{fields}{_RESET}" if fields else ""
        line = f"{when} {level} {name:<12} {record.getMessage()}"
        if fields:
            line += f"  {fields}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _field(value: object) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if not text or " " in text else text


def wants_colour(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR")


def make_formatter(fmt: str, stream: TextIO) -> logging.Formatter:
    """The formatter for ``--log-format`` ``fmt`` on ``stream``."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    if fmt == "json" or (fmt == "auto" and not stream.isatty()):
        return JsonFormatter()
    return TextFormatter(colour=wants_colour(stream))


def configure_logging(level: int | str = logging.INFO, fmt: str = "json") -> None:
    """Route every logger through one handler on stderr, in format ``fmt``.

    Calling it again replaces the handler it installed before; handlers installed by
    others (pytest's log capture, for one) are left alone.
    """
    stream = sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(make_formatter(fmt, stream))
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.getLogger("websockets").setLevel(logging.WARNING)


_HANDLER_NAME = "raid-server"
