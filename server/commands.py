"""The commands of ``raid-server`` (server/cli.py parses the command line, then calls
``run_command``). Exit codes and the one-line error rule are described in server/cli.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from actors.live_restore import restore_fields, status_of_state
from actors.raids import create_raid
from actors.restore import RestoreError, restore_raid, unknown_curses
from persistence.database import Database
from persistence.errors import (
    DatabaseInUse,
    PersistenceError,
    RestoreRefused,
    RosterConflict,
    UnknownSnapshot,
)
from persistence.lock import DatabaseLock
from raid.config import Config, load_config
from raid.errors import ConfigError, RaidError
from raid.lifecycle import status_at
from server.admin_client import AdminClient, AdminClientError
from server.app import ServeOptions, event_loop_factory, run
from server.audit import claim_dict, render_player, render_strike, strike_dict
from server.cluster_cli import gateway_command, host_command, serve_cluster
from server.errors import StartupError
from server.requests import MAX_LIST_ITEMS
from server.roster_file import RosterFileError, read_roster, rows_of
from server.simulate_cli import run_simulate
from server.tokens import check_secret, issue_token

PROG = "raid-server"


class UsageError(Exception):
    """Bad arguments or input: exit code 2."""


class OperationFailed(Exception):
    """The command could not do its work: exit code 1."""


# -- running a command ------------------------------------------------------------------------


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; its exit code (failures printed as one line)."""
    try:
        config = load_config(_config_path(args.config))
        return _COMMANDS[args.command](args, config)
    except (UsageError, ConfigError, RosterFileError, UnknownSnapshot) as exc:
        return _fail(str(exc), 2)
    except RaidError as exc:  # refused by the game's own checks: unknown boss, raid exists
        return _fail(exc.message, 2)
    except AdminClientError as exc:
        return _fail(str(exc), 2 if exc.client_fault else 1)
    except (OperationFailed, PersistenceError, RestoreError, StartupError) as exc:
        return _fail(str(exc), 1)
    except sqlite3.DatabaseError as exc:
        return _fail(f"{args.db}: {exc}", 1)
    except OSError as exc:
        return _fail(f"{exc.filename or args.db}: {exc.strerror or exc}", 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:  # the last resort: users never see a traceback
        if os.environ.get("RAID_TRACEBACK"):
            raise
        return _fail(
            f"internal error: {type(exc).__name__}: {exc} (a bug: please report it; "
            "RAID_TRACEBACK=1 shows the traceback)",
            1,
        )


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def _config_path(given: str) -> str | None:
    """The shipped defaults stand in for a missing ./config.toml; an explicit file must exist."""
    if Path(given).exists():
        return given
    if given == "config.toml":
        return None
    raise ConfigError(given, "(file)", "no such file")


def _secret(config: Config) -> str:
    return os.environ.get("RAID_SECRET") or config.server.secret


def _checked_secret(config: Config, demo: bool, host: str | None = None) -> str:
    secret = _secret(config)
    try:
        check_secret(secret, demo, host)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return secret


def _serve(args: argparse.Namespace, config: Config) -> int:
    host = args.host or config.server.host
    if args.workers > 1:
        port = config.server.port if args.port is None else args.port
        _checked_secret(config, args.demo, host)
        return serve_cluster(args, config, host, port)
    options = ServeOptions(
        db_path=args.db,
        host=host,
        port=config.server.port if args.port is None else args.port,
        demo=args.demo,
        secret=_checked_secret(config, args.demo, host),
    )

    def listening() -> None:
        args.new_files.keep = True  # from now on the database may hold acknowledged work

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(run(config, options, listening))
    return 0


def _host(args: argparse.Namespace, config: Config) -> int:
    return host_command(args, config)


def _gateway(args: argparse.Namespace, config: Config) -> int:
    return gateway_command(args, config, _checked_secret(config, False))


def _token(args: argparse.Namespace, config: Config) -> int:
    secret = _checked_secret(config, args.demo)
    ttl = config.server.token_ttl_s if args.ttl is None else args.ttl
    print(issue_token(secret, args.user, args.role, ttl, time.time()))
    return 0


def _with_db(
    args: argparse.Namespace,
    config: Config,
    work: Callable[[Database], Awaitable[int]],
    create: bool = False,
) -> int:
    path: Path = args.db
    if not create and not path.exists():
        raise UsageError(f"no database at {path} (give --db, or create one with create-raid)")

    async def go() -> int:
        db = await Database.open(
            path,
            synchronous=config.persistence.synchronous.value,
            busy_timeout_ms=config.persistence.busy_timeout_ms,
            page_cache_mib=config.persistence.page_cache_mib,
        )
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(go())


def _locked(args: argparse.Namespace, url_hint: str) -> DatabaseLock:
    """The database lock, or a refusal that says how to do it with the server running."""
    try:
        return DatabaseLock.acquire(args.db)
    except DatabaseInUse as exc:
        holder = f"pid {exc.pid}" if exc.pid is not None else "a running server"
        raise OperationFailed(
            f"database {args.db} is in use by {holder}; {url_hint}, or stop the server first"
        ) from None


def _import_roster(args: argparse.Namespace, config: Config) -> int:
    entries = read_roster(Path(args.file), config)
    users = {e.user_id for e in entries}
    if args.url is not None:
        by_user: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            grant = entry.grant
            by_user.setdefault(entry.user_id, []).append(
                {
                    "character_id": entry.character_id,
                    "name": grant.name,
                    "rarity": grant.rarity,
                    "stats": dict(grant.stats),
                    "tags": list(grant.tags),
                }
            )
        with AdminClient.open(args.url, _secret(config)) as client:
            for user, characters in by_user.items():
                for start in range(0, len(characters), MAX_LIST_ITEMS):
                    chunk = characters[start : start + MAX_LIST_ITEMS]
                    client.request("admin.roster.grant", user_id=user, characters=chunk)
        print(f"imported {len(entries)} characters for {len(users)} players through {args.url}")
        return 0
    rows = rows_of(entries, config)
    lock = _locked(args, f"use `import-roster {args.file} --url ws://HOST:PORT/ws`")
    try:

        async def work(db: Database) -> int:
            try:
                await db.upsert_characters(rows)
            except RosterConflict as exc:
                raise UsageError(f"{args.file}: {exc}") from None
            print(f"imported {len(rows)} characters for {len(users)} players into {args.db}")
            return 0

        return _with_db(args, config, work, create=True)
    finally:
        lock.release()


def _create_raid(args: argparse.Namespace, config: Config) -> int:
    async def work(db: Database) -> int:
        state = await create_raid(
            db,
            config,
            args.boss,
            now=time.time(),
            start=args.start,
            end=args.end,
            raid_id=args.raid_id,
        )
        print(state.boss.raid_id)
        return 0

    return _with_db(args, config, work, create=True)


async def _require_raid(db: Database, raid_id: str) -> None:
    if await db.get_boss_raid_by_id(raid_id) is None:
        known = ", ".join(r.raid_id for r in (await db.list_boss_raids())[:20]) or "none"
        raise UsageError(f"no raid {raid_id!r} (raids: {known})")


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _snapshots(args: argparse.Namespace, config: Config) -> int:
    async def work(db: Database) -> int:
        await _require_raid(db, args.raid_id)
        print(f"{'id':>6} {'seq':>8}  {'time (UTC)':<20} {'hp':>12} {'strikes':>8}")
        for info in await db.list_snapshots(args.raid_id):
            print(
                f"{info.snapshot_id:>6} {info.seq:>8}  {_when(info.taken_at):<20} "
                f"{info.current_hp:>12} {info.strike_count:>8}"
            )
        restores = await db.list_restores(args.raid_id)
        if restores:
            print("restores (ids of rolled-back snapshots can be restored again):")
        for r in restores:
            print(
                f"  #{r.restore_id} {_when(r.at)}  to snapshot {r.snapshot_id} (seq {r.seq}): "
                f"{r.rolled_back_strikes} strikes rolled back, {r.restored_strikes} rolled forward"
            )
        return 0

    return _with_db(args, config, work)


def _restore(args: argparse.Namespace, config: Config) -> int:
    if args.url is not None:
        with AdminClient.open(args.url, _secret(config)) as client:
            reply = client.request(
                "admin.raid.restore", raid_id=args.raid_id, snapshot_id=args.snapshot
            )
        print(restore_summary(args.raid_id, reply, live=True))
        return 0
    lock = _locked(args, f"use `restore {args.raid_id} --snapshot {args.snapshot} --url …`")
    try:

        async def work(db: Database) -> int:
            await _require_raid(db, args.raid_id)
            result = await db.restore_to_snapshot(
                args.raid_id, args.snapshot, at=time.time(), status_of=status_of_state
            )
            print(restore_summary(args.raid_id, restore_fields(result), live=False))
            return 0

        return _with_db(args, config, work)
    except RestoreRefused as exc:
        raise OperationFailed(str(exc)) from None
    finally:
        lock.release()


def restore_summary(raid_id: str, fields: dict[str, Any], live: bool) -> str:
    verb = "rolled forward" if fields["rolled_forward"] else "restored"
    lines = [
        f"raid {raid_id} {verb} to snapshot {fields['snapshot_id']} (seq {fields['seq']}, "
        f"status {fields['status']}): {fields['rolled_back_strikes']} strikes and "
        f"{fields['rolled_back_snapshots']} snapshots rolled back, "
        f"{fields['restored_strikes']} strikes and {fields['restored_snapshots']} snapshots "
        "rolled forward" + ("; the raid is serving again" if live else "")
    ]
    if fields["rolled_back_delivered_grants"]:
        lines.append(
            f"note: {fields['rolled_back_delivered_grants']} rolled-back strike rewards had "
            "already been acknowledged by the game backend"
        )
    return "\n".join(lines)


def _status(args: argparse.Namespace, config: Config) -> int:
    async def work(db: Database) -> int:
        if args.raid_id is not None:
            await _require_raid(db, args.raid_id)
        rows = [r for r in await db.list_boss_raids() if args.raid_id in (None, r.raid_id)]
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


def _audit(args: argparse.Namespace, config: Config) -> int:
    if args.user is None and args.strike is None:
        raise UsageError("audit needs --user U (a player's history) or --strike ID (one strike)")

    async def work(db: Database) -> int:
        await _require_raid(db, args.raid_id)
        strikes = await db.audit_strikes(args.raid_id, user_id=args.user, strike_id=args.strike)
        if args.strike is not None:
            if not strikes:
                who = f" of {args.user}" if args.user else ""
                raise UsageError(f"raid {args.raid_id} has no strike {args.strike!r}{who}")
            if args.json:
                print(json.dumps([strike_dict(s, full=True) for s in strikes], indent=2))
            else:
                print(render_strike(args.raid_id, strikes))
            return 0
        claims = await db.audit_claims(args.raid_id, args.user)
        if args.json:
            document = {
                "raid_id": args.raid_id,
                "user_id": args.user,
                "strikes": [strike_dict(s) for s in strikes],
                "rewards": [claim_dict(c) for c in claims],
            }
            print(json.dumps(document, indent=2))
        else:
            print(render_player(args.raid_id, args.user, strikes, claims))
        return 0

    return _with_db(args, config, work)


def _check(args: argparse.Namespace, config: Config) -> int:
    """Restore each raid as the server would, with this config; say why one cannot be.

    ``--retire`` ends a raid in the database (status ``ended``): the server then stops
    loading it once its claim window has passed. Exit 1 if a checked raid cannot be restored.
    """
    if args.retire and args.raid_id is None:
        raise UsageError("--retire needs a RAID_ID")
    lock = _locked(args, "retiring needs the server stopped") if args.retire else None
    try:

        async def work(db: Database) -> int:
            if args.raid_id is not None:
                await _require_raid(db, args.raid_id)
            rows = [r for r in await db.list_boss_raids() if args.raid_id in (None, r.raid_id)]
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
    "audit": _audit,
    "simulate": run_simulate,
    "check": _check,
    "host": _host,
    "gateway": _gateway,
}
