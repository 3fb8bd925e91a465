"""The operator CLI, as an operator runs it: real processes on a real database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from server.tokens import verify_token
from tests.e2e.harness import ROOT, SECRET, Client, character, start_server, write_config
from tests.timeouts import TIMEOUT


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    if not config.exists():
        write_config(tmp_path)
    command, *rest = args
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "run_server.py"),
            command,
            "--config",
            str(config),
            "--db",
            str(tmp_path / "raid.db"),
            *rest,
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 3,
        check=False,
        # asyncio's debug mode (make test) logs slow callbacks no user would see
        env={**without_asyncio_debug(), "RAID_SECRET": SECRET},
        cwd=tmp_path,
    )


def without_asyncio_debug() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}


def test_token(tmp_path: Path) -> None:
    done = cli(tmp_path, "token", "--user", "zed", "--role", "admin", "--ttl", "60")
    assert done.returncode == 0, done.stderr
    claims = verify_token(SECRET, done.stdout.strip(), time.time())
    assert (claims.user_id, claims.role) == ("zed", "admin")
    bad = cli(tmp_path, "token", "--user", "zed", "--ttl", "-1")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_import_roster_create_raid_status_snapshots(tmp_path: Path) -> None:
    roster = tmp_path / "roster.json"
    roster.write_text(
        json.dumps(
            [
                {
                    "user_id": "ann",
                    "character_id": "ann-1",
                    "name": "A",
                    "rarity": 3,
                    "stats": {"power": 50},
                    "tags": ["fire", "striker"],
                },
                {"user_id": "ben", "name": "B", "rarity": 2, "stats": {"power": 70}, "tags": []},
            ]
        )
    )
    created = cli(tmp_path, "create-raid", "--boss", "dummy", "--raid-id", "cli1")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "cli1"
    imported = cli(tmp_path, "import-roster", str(roster))
    assert imported.returncode == 0, imported.stderr
    assert "imported 2 characters for 2 players" in imported.stdout
    status = cli(tmp_path, "status", "cli1")
    assert status.returncode == 0 and "hp=1000/1000" in status.stdout
    assert "status=active" in status.stdout
    snaps = cli(tmp_path, "snapshots", "cli1")
    assert snaps.returncode == 0 and len(snaps.stdout.strip().splitlines()) == 2


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    write_config(tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "bad_stat.json").write_text(
        json.dumps([{"user_id": "x", "name": "X", "rarity": 1, "stats": {"luck": 3}}])
    )
    cases = [
        (("import-roster", str(tmp_path / "missing.json")), "no such file"),
        (("import-roster", str(tmp_path / "bad.json")), "not valid JSON"),
        (("import-roster", str(tmp_path / "bad_stat.json")), "unknown stat"),
        (("create-raid", "--boss", "nobody"), "unknown boss template"),
        (("create-raid", "--boss", "dummy", "--start", "yesterday"), "not an ISO-8601 time"),
        (("snapshots", "ghost"), "no raid 'ghost'"),
        (("status", "ghost"), "no raid 'ghost'"),
        (("restore", "ghost", "--snapshot", "1"), "no raid 'ghost'"),
    ]
    cli(tmp_path, "create-raid", "--boss", "dummy", "--raid-id", "real")
    for args, expected in cases:
        done = cli(tmp_path, *args)
        assert done.returncode != 0, args
        assert expected in done.stderr, (args, done.stderr)
        assert done.stderr.count("\n") == 1, done.stderr
    other = subprocess.run(
        [
            sys.executable,
            str(ROOT / "run_server.py"),
            "status",
            "--config",
            str(tmp_path / "nope.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 3,
        check=False,
    )
    assert other.returncode == 2 and "nope.toml: (file): no such file" in other.stderr


async def test_restore_to_an_earlier_snapshot(tmp_path: Path) -> None:
    write_config(tmp_path)
    server = start_server(tmp_path, config_path=tmp_path / "config.toml")
    try:
        admin = await Client.connect(server)
        await admin.hello("ops", "admin")
        await admin.ok(
            "admin.roster.grant", user_id="r", characters=[character("r", n) for n in range(6)]
        )
        raid = (await admin.ok("admin.raid.create", boss="dummy", raid_id="rb"))["raid_id"]
        player = await Client.connect(server)
        await player.hello("r")
        for n in range(2):
            await player.ok(
                "strike", raid_id=raid, action="fight", team=[f"r-c{n}"], strike_id=str(n)
            )
        snapshot = await admin.ok("admin.snapshot", raid_id=raid)
        for n in range(2, 5):
            await player.ok(
                "strike", raid_id=raid, action="fight", team=[f"r-c{n}"], strike_id=str(n)
            )
        busy = cli(tmp_path, "restore", raid, "--snapshot", str(snapshot["snapshot_id"]))
        assert busy.returncode == 1 and "in use" in busy.stderr
        await player.close()
        await admin.close()
    finally:
        assert server.stop() == 0
    done = cli(tmp_path, "restore", raid, "--snapshot", str(snapshot["snapshot_id"]))
    assert done.returncode == 0, done.stderr
    assert "3 strikes" in done.stdout
    with sqlite3.connect(tmp_path / "raid.db") as db:
        kept = db.execute(
            "SELECT count(*) FROM raid_strike_logs WHERE raid_id = ? AND rolled_back = 1", (raid,)
        ).fetchone()[0]
    assert kept == 3
    status = cli(tmp_path, "status", raid)
    assert "strikes=2" in status.stdout
    again = start_server(tmp_path, config_path=tmp_path / "config.toml")
    try:
        player = await Client.connect(again)
        await player.hello("r")
        hub = await player.ok("raid.hub", raid_id=raid)
        assert hub["raid"]["strike_count"] == 2
        # c2 was used by a rolled-back strike: it is free again, and seq 3 is reused
        report = await player.ok(
            "strike", raid_id=raid, action="fight", team=["r-c2"], strike_id="2"
        )
        assert report["strike_count"] == 3
        await player.close()
    finally:
        again.stop()
