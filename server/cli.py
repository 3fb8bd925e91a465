"""The command line: ``python run_server.py COMMAND …``, also installed as ``raid-server``.

Every command takes ``--config F`` (default ./config.toml) and ``--db F`` (default ./raid.db)
after its name. Exit code 0 on success; otherwise a one-line reason on stderr and 1 (2 for bad
arguments).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from actors.raids import CharacterGrant, create_raid, validate_grants
from actors.restore import RestoreError, restore_raid, unknown_curses
from persistence.database import Database
from persistence.errors import PersistenceError
from persistence.lock import DatabaseLock
from raid.config import Config, load_config
from raid.errors import ConfigError, ProtocolError, RaidError
from raid.lifecycle import status_at
from raid.limits import MAX_ID_LEN, parse_time
from server.app import ServeOptions, run
from server.errors import StartupError
from server.logs import configure_logging
from server.requests import CharacterSpec, as_id
from server.tokens import ROLES, issue_token


class UsageError(Exception):
    """Bad arguments or input file: exit code 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raid-server", description="World-Threat Raid server")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--config", default="config.toml", help="config file (./config.toml)")
        sub.add_argument("--db", default="raid.db", help="SQLite database (./raid.db)")
        return sub

    serve = command("serve", "run the server")
    serve.add_argument("--host", help="address to listen on (config [server] host)")
    serve.add_argument("--port", type=int, help="port (config [server] port; 0 = any free)")
    serve.add_argument("--demo", action="store_true", help="demo raid, players and tokens")
    token = command("token", "print a signed token")
    token.add_argument("--user", required=True)
    token.add_argument("--role", default="player", choices=sorted(ROLES))
    token.add_argument("--ttl", type=float, help="lifetime in seconds")
    roster = command("import-roster", "load characters from a JSON file")
    roster.add_argument("file", metavar="FILE.json")
    create = command("create-raid", "create a raid from a boss template")
    create.add_argument("--boss", required=True, help="boss template id")
    create.add_argument("--start", help="ISO-8601 time or unix seconds (default now)")
    create.add_argument("--end", help="ISO-8601 time or unix seconds (default start + duration_s)")
    create.add_argument("--raid-id", help="raid id (default generated)")
    snaps = command("snapshots", "list a raid's snapshots")
    snaps.add_argument("raid_id")
    restore = command("restore", "roll a raid back to a snapshot (server stopped)")
    restore.add_argument("raid_id")
    restore.add_argument("--snapshot", type=int, required=True, help="snapshot id")
    status = command("status", "print raid state from the database")
    status.add_argument("raid_id", nargs="?")
    check = command("check", "check that raids can be restored; retire one that cannot")
    check.add_argument("raid_id", nargs="?", help="one raid (default: every raid)")
    check.add_argument(
        "--retire", action="store_true", help="end RAID_ID for good (server stopped)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config if Path(args.config).exists() else _missing(args))
        handler = _COMMANDS[args.command]
        return handler(args, config)
    except (UsageError, ConfigError) as exc:
        print(f"raid-server: {exc}", file=sys.stderr)
        return 2
    except (RaidError, PersistenceError, RestoreError, StartupError, OSError) as exc:
        message = exc.message if isinstance(exc, RaidError) else str(exc)
        print(f"raid-server: {message}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:
        print(f"raid-server: {args.db}: {exc}", file=sys.stderr)
        return 1


def _missing(args: argparse.Namespace) -> str | None:
    """The shipped defaults stand in for a missing ./config.toml; an explicit file must exist."""
    if args.config == "config.toml":
        return None
    raise ConfigError(args.config, "(file)", "no such file")


def _secret(config: Config) -> str:
    return os.environ.get("RAID_SECRET") or config.server.secret


def _serve(args: argparse.Namespace, config: Config) -> int:
    configure_logging()
    options = ServeOptions(
        db_path=Path(args.db),
        host=args.host or config.server.host,
        port=config.server.port if args.port is None else args.port,
        demo=args.demo,
        secret=_secret(config),
    )
    asyncio.run(run(config, options))
    return 0


def _token(args: argparse.Namespace, config: Config) -> int:
    ttl = config.server.token_ttl_s if args.ttl is None else args.ttl
    if ttl <= 0:
        raise UsageError("--ttl must be positive")
    if not 1 <= len(args.user) <= MAX_ID_LEN:
        raise UsageError(f"--user must be 1 to {MAX_ID_LEN} characters")
    print(issue_token(_secret(config), args.user, args.role, ttl, time.time()))
    return 0


def _with_db(
    args: argparse.Namespace, config: Config, work: Callable[[Database], Awaitable[int]]
) -> int:
    path = Path(args.db)
    if args.command != "create-raid" and not path.exists():
        raise UsageError(f"no database at {path}")

    async def go() -> int:
        db = await Database.open(
            path,
            synchronous=config.persistence.synchronous.value,
            busy_timeout_ms=config.persistence.busy_timeout_ms,
        )
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(go())


def _import_roster(args: argparse.Namespace, config: Config) -> int:
    entries = _read_roster_file(Path(args.file))
    per_user: dict[str, list[CharacterGrant]] = {}
    for index, entry in enumerate(entries):
        user, grant = _roster_entry(entry, f"{args.file}[{index}]")
        per_user.setdefault(user, []).append(grant)
    rows = [
        row for user, grants in per_user.items() for row in validate_grants(config, user, grants)
    ]

    async def work(db: Database) -> int:
        ids = await db.upsert_characters(rows)
        print(f"imported {len(ids)} characters for {len(per_user)} players")
        return 0

    return _with_db(args, config, work)


def _read_roster_file(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise UsageError(f"{path}: must be a JSON array of characters")
    return data


def _roster_entry(entry: Any, where: str) -> tuple[str, CharacterGrant]:
    """One file entry, checked by the wire's own parser (one validator per input)."""
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: must be an object")
    try:
        user = as_id(entry.get("user_id"), "user_id")
        spec = CharacterSpec.parse({k: v for k, v in entry.items() if k != "user_id"}, "")
    except ProtocolError as exc:
        raise UsageError(f"{where}.{exc.message.lstrip('.')}") from None
    return user, CharacterGrant(spec.character_id, spec.name, spec.rarity, spec.stats, spec.tags)


def _parse_time(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    value: str | float = text
    with contextlib.suppress(ValueError):
        value = float(text)  # unix seconds, as on the wire
    try:
        return parse_time(value)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}: {text!r}") from None


def _create_raid(args: argparse.Namespace, config: Config) -> int:
    start = _parse_time(args.start, "--start")
    end = _parse_time(args.end, "--end")

    async def work(db: Database) -> int:
        state = await create_raid(
            db, config, args.boss, now=time.time(), start=start, end=end, raid_id=args.raid_id
        )
        print(state.boss.raid_id)
        return 0

    return _with_db(args, config, work)


def _snapshots(args: argparse.Namespace, config: Config) -> int:
    async def work(db: Database) -> int:
        if await db.get_boss_raid_by_id(args.raid_id) is None:
            raise UsageError(f"no raid {args.raid_id!r}")
        print(f"{'id':>6} {'seq':>8}  {'time (UTC)':<20} {'hp':>12} {'strikes':>8}")
        for info in await db.list_snapshots(args.raid_id):
            when = datetime.fromtimestamp(info.taken_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
            print(
                f"{info.snapshot_id:>6} {info.seq:>8}  {when:<20} {info.current_hp:>12} "
                f"{info.strike_count:>8}"
            )
        return 0

    return _with_db(args, config, work)


def _restore(args: argparse.Namespace, config: Config) -> int:
    lock = DatabaseLock.acquire(Path(args.db))
    try:

        async def work(db: Database) -> int:
            if await db.get_boss_raid_by_id(args.raid_id) is None:
                raise UsageError(f"no raid {args.raid_id!r}")
            result = await db.rollback_to_snapshot(args.raid_id, args.snapshot)
            snapshot = await db.load_snapshot(args.raid_id, args.snapshot)
            if snapshot is not None:
                boss = json.loads(snapshot.raid_state_json)
                await db.update_boss_raid_state(
                    args.raid_id, status=boss["status"], ended_at=boss["ended_at"]
                )
            print(
                f"raid {args.raid_id} rolled back to snapshot {args.snapshot}: "
                f"{result.rolled_back_strikes} strikes and {result.rolled_back_snapshots} "
                "later snapshots marked rolled back"
            )
            if result.rolled_back_delivered_grants:
                print(
                    f"note: {result.rolled_back_delivered_grants} rolled-back strike rewards "
                    "had already been acknowledged by the game backend"
                )
            return 0

        return _with_db(args, config, work)
    finally:
        lock.release()


def _status(args: argparse.Namespace, config: Config) -> int:
    async def work(db: Database) -> int:
        rows = await db.list_boss_raids()
        if args.raid_id is not None:
            rows = [r for r in rows if r.raid_id == args.raid_id]
            if not rows:
                raise UsageError(f"no raid {args.raid_id!r}")
        now = time.time()
        for row in rows:
            restored = await restore_raid(db, row.raid_id, now)
            if restored is None:
                continue
            boss = restored.state.boss
            print(
                f"{boss.raid_id}  {boss.name}  status={status_at(boss, now).value}  "
                f"hp={boss.current_hp}/{boss.total_hp}  strikes={boss.strike_count}  "
                f"analysis={boss.analysis_points} breakthroughs={boss.analysis_breakthroughs}  "
                f"players={len(restored.state.players)}  curses={list(boss.active_curses)}"
            )
        return 0

    return _with_db(args, config, work)


def _check(args: argparse.Namespace, config: Config) -> int:
    """Restore each raid as the server would, with this config; say why one cannot be.

    ``--retire`` ends a raid in the database (status ``ended``): the server then stops
    loading it once its claim window has passed. Exit 1 if a checked raid cannot be restored.
    """
    if args.retire and args.raid_id is None:
        raise UsageError("--retire needs a RAID_ID")
    lock = DatabaseLock.acquire(Path(args.db)) if args.retire else None
    try:

        async def work(db: Database) -> int:
            rows = await db.list_boss_raids()
            if args.raid_id is not None:
                rows = [r for r in rows if r.raid_id == args.raid_id]
                if not rows:
                    raise UsageError(f"no raid {args.raid_id!r}")
            broken = 0
            now = time.time()
            for row in rows:
                problem = await _restore_problem(db, config, row.raid_id, now)
                broken += problem is not None
                verdict = "ok" if problem is None else f"CANNOT BE RESTORED: {problem}"
                print(f"{row.raid_id}  status={row.status}  {verdict}")
                if args.retire and row.status not in _FINAL:
                    await db.update_boss_raid_state(row.raid_id, status="ended", ended_at=now)
                    print(f"{row.raid_id}  retired: status=ended")
            return 1 if broken and not args.retire else 0

        return _with_db(args, config, work)
    finally:
        if lock is not None:
            lock.release()


_FINAL = frozenset({"defeated", "expired", "ended"})


async def _restore_problem(db: Database, config: Config, raid_id: str, now: float) -> str | None:
    try:
        restored = await restore_raid(db, raid_id, now)
    except RestoreError as exc:
        return str(exc)
    if restored is None:
        return "no such raid"
    unknown = unknown_curses(config.rules, restored.state)
    if unknown:
        return f"uses curse(s) {unknown} that the config no longer defines"
    return None


_COMMANDS: dict[str, Callable[[argparse.Namespace, Config], int]] = {
    "serve": _serve,
    "token": _token,
    "import-roster": _import_roster,
    "create-raid": _create_raid,
    "snapshots": _snapshots,
    "restore": _restore,
    "status": _status,
    "check": _check,
}
