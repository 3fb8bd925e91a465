"""The command line: ``python run_server.py COMMAND …``, also installed as ``raid-server``.

Every command takes ``--config F`` (default ./config.toml) and ``--db F`` (default ./raid.db)
after its name. Exit code 0 on success; otherwise a one-line reason on stderr and 1 (2 for bad
arguments).
"""

from __future__ import annotations

import argparse
import asyncio
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
from actors.restore import RestoreError, restore_raid
from persistence.database import Database
from persistence.errors import PersistenceError
from persistence.lock import DatabaseLock
from raid.config import Config, load_config
from raid.errors import ConfigError, RaidError
from raid.lifecycle import status_at
from server.app import ServeOptions, event_loop_factory, run
from server.errors import StartupError
from server.logs import configure_logging
from server.requests import MAX_ID_LEN
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
    create.add_argument("--start", help="ISO-8601 start (default now)")
    create.add_argument("--end", help="ISO-8601 end (default start + duration_s)")
    create.add_argument("--raid-id", help="raid id (default generated)")
    snaps = command("snapshots", "list a raid's snapshots")
    snaps.add_argument("raid_id")
    restore = command("restore", "roll a raid back to a snapshot (server stopped)")
    restore.add_argument("raid_id")
    restore.add_argument("--snapshot", type=int, required=True, help="snapshot id")
    status = command("status", "print raid state from the database")
    status.add_argument("raid_id", nargs="?")
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
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(run(config, options))
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
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: must be an object")
    try:
        user, name, rarity = entry["user_id"], entry["name"], entry["rarity"]
        stats, tags = entry["stats"], entry.get("tags", [])
    except KeyError as exc:
        raise UsageError(f"{where}: missing {exc.args[0]}") from None
    character_id = entry.get("character_id")
    if not isinstance(user, str) or not 1 <= len(user) <= 64:
        raise UsageError(f"{where}.user_id: must be a string of 1-64 characters")
    if character_id is not None and (
        not isinstance(character_id, str) or not 1 <= len(character_id) <= 64
    ):
        raise UsageError(f"{where}.character_id: must be a string of 1-64 characters")
    if not isinstance(name, str) or not name:
        raise UsageError(f"{where}.name: must be a non-empty string")
    if isinstance(rarity, bool) or not isinstance(rarity, int):
        raise UsageError(f"{where}.rarity: must be an integer")
    if not isinstance(stats, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in stats.values()
    ):
        raise UsageError(f"{where}.stats: must be an object of integers")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise UsageError(f"{where}.tags: must be a list of strings")
    return user, CharacterGrant(character_id, name, rarity, stats, tuple(tags))


def _parse_time(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option}: not an ISO-8601 time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


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


_COMMANDS: dict[str, Callable[[argparse.Namespace, Config], int]] = {
    "serve": _serve,
    "token": _token,
    "import-roster": _import_roster,
    "create-raid": _create_raid,
    "snapshots": _snapshots,
    "restore": _restore,
    "status": _status,
}
