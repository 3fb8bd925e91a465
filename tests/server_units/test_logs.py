from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from server.logs import JsonFormatter, TextFormatter, configure_logging, make_formatter


def emit(logger: logging.Logger, call: str = "info", **kwargs: object) -> dict[str, object]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        getattr(logger, call)("hello %s", "world", **kwargs)
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert isinstance(line, dict)
    return line


def test_one_json_object_with_the_standard_fields() -> None:
    line = emit(logging.getLogger("raid.test.plain"))
    assert line["level"] == "INFO"
    assert line["logger"] == "raid.test.plain"
    assert line["msg"] == "hello world"
    assert isinstance(line["ts"], str) and line["ts"].endswith("+00:00")
    assert "exc" not in line


def test_extra_fields_are_top_level() -> None:
    line = emit(
        logging.getLogger("raid.test.extra"),
        extra={"conn": "c1", "user": "alice", "raid": "r1", "odd": object()},
    )
    assert (line["conn"], line["user"], line["raid"]) == ("c1", "alice", "r1")
    assert isinstance(line["odd"], str)  # not JSON-able: rendered with str()


def test_exception_is_one_string_field() -> None:
    logger = logging.getLogger("raid.test.exc")
    try:
        raise ValueError("kaput")
    except ValueError:
        line = emit(logger, call="exception")
    assert line["level"] == "ERROR"
    exc = line["exc"]
    assert isinstance(exc, str)
    assert "Traceback" in exc and "ValueError: kaput" in exc


def test_configure_logging_installs_one_json_handler_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        configure_logging("debug")
        configure_logging(logging.INFO)  # replaces its own handler instead of adding one
        ours = [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]
        assert len(ours) == 1
        assert isinstance(ours[0], logging.StreamHandler) and ours[0].stream is sys.stderr
        assert root.level == logging.INFO
        logging.getLogger("raid.test.configured").warning("careful", extra={"raid": "r1"})
        err_lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
        assert {"msg": "careful", "raid": "r1"}.items() <= err_lines[-1].items()
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)


def record(**extra: object) -> logging.LogRecord:
    made = logging.LogRecord("raid.gateway", logging.WARNING, "x.py", 1, "slow %s", ("peer",), None)
    made.__dict__.update(extra)
    return made


def test_text_lines_are_aligned_with_extras_at_the_end() -> None:
    line = TextFormatter(colour=False).format(record(conn="1a2b3c4d", user="al ice"))
    _, level, name, rest = line.split(maxsplit=3)
    assert (level, name) == ("WARNING", "gateway")
    assert line.index("gateway") == len("00:00:00.000 WARNING ")
    assert rest == 'slow peer  conn=1a2b3c4d user="al ice"'
    coloured = TextFormatter(colour=True).format(record())
    assert "\x1b[33mWARNING" in coloured and coloured.endswith("slow peer")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_text_on_a_terminal_and_json_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal = make_formatter("auto", FakeTerminal())
    assert isinstance(terminal, TextFormatter) and terminal.colour
    assert isinstance(make_formatter("auto", io.StringIO()), JsonFormatter)
    assert isinstance(make_formatter("text", io.StringIO()), TextFormatter)
    assert isinstance(make_formatter("json", FakeTerminal()), JsonFormatter)
    monkeypatch.setenv("NO_COLOR", "1")
    plain = make_formatter("auto", FakeTerminal())
    assert isinstance(plain, TextFormatter) and not plain.colour
    with pytest.raises(ValueError, match="log format must be one of auto, text, json"):
        make_formatter("xml", io.StringIO())


def test_the_websockets_library_is_quiet_below_warning() -> None:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        configure_logging("debug", "text")
        assert logging.getLogger("websockets.server").getEffectiveLevel() == logging.WARNING
        assert root.level == logging.DEBUG
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)
