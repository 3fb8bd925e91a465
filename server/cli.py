"""The command line: ``python run_server.py COMMAND …``, also installed as ``raid-server``.

Global options (``--config``, ``--db``, ``--log-format``, ``--log-level``) go before or after
the command name. Exit codes: 0 success; 2 usage or bad input (a bad option, a missing or
invalid file, an unknown raid or snapshot: fix the command line or the file); 1 the operation
failed (database in use, address in use, a database or server error). Every failure is one
line on stderr, ``raid-server: <reason>``, never a traceback, and a failed command removes the
files it created (a new database and its lock file).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from raid.errors import FieldError
from server.cluster_args import add_gateway_arguments, add_host_arguments, add_workers_argument
from server.logs import LOG_FORMATS, LOG_LEVELS, configure_logging
from server.requests import as_id, as_time
from server.simulate_cli import EXAMPLE as SIMULATE_EXAMPLE
from server.simulate_cli import HELP as SIMULATE_HELP
from server.simulate_cli import add_simulate_arguments
from server.tokens import ROLES

PROG = "raid-server"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``raid-server: <problem> (see raid-server … --help)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: {message} (see `{self.prog} --help`)\n")


# -- argument types: checked by the parser, so a bad value never reaches a command ----------


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0 to 65535 (0 = any free), not {port}")
    return port


def _db_path(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; give a database file")
    parent = path.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"directory {parent} does not exist (for {text})")
    return path


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value}")
    return value


def _identifier(text: str) -> str:
    try:
        return as_id(text, "")
    except FieldError as exc:
        raise argparse.ArgumentTypeError(exc.problem) from None


def _iso_time(text: str) -> float:
    """The wire's own time check (``as_time``): unix seconds or ISO 8601 (no zone is UTC)."""
    value: str | float = text
    with contextlib.suppress(ValueError):
        value = float(text)  # unix seconds, as on the wire
    try:
        return as_time(value, "")
    except FieldError as exc:
        problem = "" if exc.problem.startswith("must be unix") else f"; {exc.problem}"
        raise argparse.ArgumentTypeError(
            f"not an ISO-8601 time or unix seconds: {text!r}{problem} "
            "(e.g. 2026-12-01T20:00:00Z or 1795000000)"
        ) from None


def _ws_url(text: str) -> str:
    if not text.startswith(("ws://", "wss://")):
        raise argparse.ArgumentTypeError(f"not a WebSocket URL: {text!r} (ws://HOST:PORT/ws)")
    return text


# -- the parser -------------------------------------------------------------------------------


def _global_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """The options every command takes. On commands their default is SUPPRESS, so a value
    given before the command name is not overwritten by the command's default."""

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument(
        "--config",
        default=default("config.toml"),
        metavar="FILE",
        help="config file (default ./config.toml; if that is missing, the shipped defaults)",
    )
    group.add_argument(
        "--db",
        type=_db_path,
        default=default(Path("raid.db")),
        metavar="FILE",
        help="SQLite database (default ./raid.db)",
    )
    group.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=default("auto"),
        help="auto (default): coloured text on a terminal, JSON lines otherwise",
    )
    group.add_argument(
        "--log-level", choices=LOG_LEVELS, default=default("info"), help="default info"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="World-Threat Raid server and its operator tools.",
        epilog="Exit codes: 0 success, 2 usage or bad input, 1 the operation failed. "
        "Every command's --help shows an example.",
    )
    _global_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _global_options(sub, defaults=False)
        return sub

    serve = command("serve", "run the server", "raid-server serve --db raid.db --port 8765")
    serve.add_argument("--host", help="address to listen on (config [server] host)")
    serve.add_argument(
        "--port", type=_port, help="port 0-65535 (config [server] port; 0 = any free)"
    )
    serve.add_argument("--demo", action="store_true", help="demo raid, players and tokens")
    add_workers_argument(serve, _positive_int)
    add_host_arguments(
        command(
            "host",
            "run a raid host: the raids and their journal, served to gateways over NATS",
            "raid-server host --nats nats://10.0.0.5:4222 --db raid.db",
        ),
        _positive_float,
    )
    add_gateway_arguments(
        command(
            "gateway",
            "run a gateway: WebSockets in, the raids of the hosts over NATS",
            "raid-server gateway --nats nats://10.0.0.5:4222 --port 8765",
        ),
        _port,
        _positive_float,
    )

    token = command("token", "print a signed token", "RAID_SECRET=… raid-server token --user alice")
    token.add_argument("--user", required=True, type=_identifier, help="user id, 1-64 chars")
    token.add_argument("--role", default="player", choices=sorted(ROLES))
    token.add_argument("--ttl", type=_positive_float, help="lifetime in seconds")
    token.add_argument(
        "--demo", action="store_true", help="allow the default secret (for a --demo server)"
    )

    roster = command(
        "import-roster",
        "load characters from a JSON file (idempotent)",
        "raid-server import-roster roster.json --url ws://127.0.0.1:8765/ws",
    )
    roster.add_argument("file", metavar="FILE.json")
    roster.add_argument(
        "--url", type=_ws_url, help="go through this running server (ws://HOST:PORT/ws)"
    )

    create = command(
        "create-raid",
        "create a raid from a boss template",
        "raid-server create-raid --boss leviathan --start 2026-12-01T20:00:00Z",
    )
    create.add_argument("--boss", required=True, help="boss template id")
    create.add_argument(
        "--start", type=_iso_time, help="ISO-8601 time or unix seconds (default now)"
    )
    create.add_argument(
        "--end", type=_iso_time, help="ISO-8601 or unix seconds (default start + duration_s)"
    )
    create.add_argument("--raid-id", type=_identifier, help="raid id (default generated)")

    snaps = command("snapshots", "list a raid's snapshots and restores", "raid-server snapshots r1")
    snaps.add_argument("raid_id", type=_identifier)

    restore = command(
        "restore",
        "move a raid back (or forward again) to a snapshot",
        "raid-server restore r1 --snapshot 12 --url ws://127.0.0.1:8765/ws",
    )
    restore.add_argument("raid_id", type=_identifier)
    restore.add_argument("--snapshot", type=_positive_int, required=True, help="snapshot id")
    restore.add_argument(
        "--url", type=_ws_url, help="restore live through this running server (ws://HOST:PORT/ws)"
    )

    status = command("status", "print raid state from the database", "raid-server status r1")
    status.add_argument("raid_id", nargs="?", type=_identifier)

    audit = command(
        "audit",
        "a player's strikes and rewards from the journal (for support)",
        "raid-server audit r1 --user alice",
    )
    audit.add_argument("raid_id", type=_identifier)
    audit.add_argument("--user", type=_identifier, help="the player's strikes and rewards")
    audit.add_argument("--strike", type=_identifier, help="one strike in full, by strike id")
    audit.add_argument("--json", action="store_true", help="JSON instead of text")

    check = command(
        "check",
        "check that raids can be restored; retire one that cannot",
        "raid-server check  (then: raid-server check r1 --retire)",
    )
    check.add_argument("raid_id", nargs="?", type=_identifier, help="one raid (default: all)")
    check.add_argument(
        "--retire", action="store_true", help="end RAID_ID for good (server stopped)"
    )

    add_simulate_arguments(command("simulate", SIMULATE_HELP, SIMULATE_EXAMPLE))
    return parser


# -- running a command ------------------------------------------------------------------------


class _NewFiles:
    """The database files a command creates, removed again if the command fails.

    Never someone else's: a database that appeared meanwhile is only removed if no server
    holds its lock and it holds no raid and no character.
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.paths = [Path(f"{db_path}{suffix}") for suffix in ("", "-wal", "-shm", ".lock")]
        self.existed = {path for path in self.paths if path.exists()}
        self.keep = False  # set once the files hold something worth keeping

    def remove(self) -> None:
        if self.keep or all(path in self.existed or not path.exists() for path in self.paths):
            return
        from persistence.errors import DatabaseInUse
        from persistence.lock import DatabaseLock

        try:
            lock = DatabaseLock.acquire(self.db_path)
        except (DatabaseInUse, OSError):
            return  # a server took it meanwhile: not ours to remove
        try:  # unlinked while locked: a server starting now waits for no stale lock file
            if self.db_path in self.existed:  # its -wal and -shm are SQLite's to manage
                created = [path for path in self.paths[3:] if path not in self.existed]
            elif not _holds_data(self.db_path):
                created = [path for path in self.paths if path not in self.existed]
            else:
                created = []
            for path in created:
                path.unlink(missing_ok=True)
        finally:
            lock.release()


def _holds_data(db_path: Path) -> bool:
    """Any raid or character in the file (unreadable counts as data: keep it)."""
    import sqlite3

    try:
        if not db_path.exists():
            return False
        with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_schema")}
            return any(
                db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None
                for table in ("boss_raids", "characters")
                if table in tables
            )
    except sqlite3.Error:
        return True


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    files = _NewFiles(args.db)
    args.new_files = files
    from server.commands import run_command  # after parsing: `--help` and typos stay fast

    code = run_command(args)
    if code != 0:
        files.remove()
    return code
