"""Issue 9 from the operator's side: `check` / `--retire`, one roster validator, times."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.e2e.harness import Client, start_server
from tests.e2e.test_cli import cli
from tests.e2e.test_operator_cli import run, user_env


def _corrupt(path: Path, raid_id: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(
            "UPDATE raid_snapshots SET raid_state = 'not json' WHERE raid_id = ?", (raid_id,)
        )
        conn.commit()
    finally:
        conn.close()


async def test_an_unrestorable_raid_is_served_around_checked_and_retired(tmp_path: Path) -> None:
    assert cli(tmp_path, "create-raid", "--boss", "dummy", "--raid-id", "bad").returncode == 0
    assert cli(tmp_path, "create-raid", "--boss", "dummy", "--raid-id", "good").returncode == 0
    _corrupt(tmp_path / "raid.db", "bad")

    checked = cli(tmp_path, "check")
    assert checked.returncode == 1, checked.stderr
    lines = checked.stdout.strip().splitlines()
    assert lines[0].startswith("bad  status=active  CANNOT BE RESTORED: raid bad: stored state")
    assert lines[1] == "good  status=active  ok"

    server = start_server(tmp_path)  # before: every start failed on the one bad raid
    try:
        client = await Client.connect(server)
        try:
            await client.hello("ann")
            refused = await client.request("raid.hub", raid_id="bad")
            assert refused["code"] == "unavailable" and "out of service" in refused["message"]
            await client.ok("raid.hub", raid_id="good")
        finally:
            await client.close()
    finally:
        assert server.stop() == 0
    errors = [line for line in server.log_lines() if "out of service" in str(line.get("msg"))]
    assert errors and "raid-server check bad" in str(errors[0]["msg"])

    retired = cli(tmp_path, "check", "bad", "--retire")
    assert retired.returncode == 0, retired.stderr
    assert "bad  retired: status=ended" in retired.stdout
    assert "status=ended" in cli(tmp_path, "check", "bad").stdout
    assert cli(tmp_path, "check", "--retire").returncode == 2


def test_import_roster_uses_the_wire_validator(tmp_path: Path) -> None:
    """Item 13 / item 11: the CLI accepted names of any length and stats of any size."""
    assert cli(tmp_path, "create-raid", "--boss", "dummy").returncode == 0
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "N" * 65}, "[0] (user u): name: must be a string of 1-64 characters"),
        ({"stats": {"power": 10**12}}, "above the maximum 1000000000"),
        ({"stats": {"power": True}}, "[0] (user u): stats.power: must be an integer"),
        ({"rarity": 9}, "rarity: must be 1 to 5"),
        ({"user_id": ""}, "[0]: user_id: must be a string of 1-64 characters"),
    ]
    for change, expected in cases:
        entry: dict[str, Any] = {"user_id": "u", "name": "N", "rarity": 1, "stats": {"power": 1}}
        entry |= change
        path = tmp_path / "roster.json"
        path.write_text(json.dumps([entry]))
        done = cli(tmp_path, "import-roster", str(path))
        assert done.returncode != 0, (change, done.stdout)
        assert expected in done.stderr, (change, done.stderr)
        assert done.stderr.count("\n") == 1


def test_create_raid_times(tmp_path: Path) -> None:
    ok = cli(tmp_path, "create-raid", "--boss", "dummy", "--start", "1900000000", "--raid-id", "t")
    assert ok.returncode == 0, ok.stderr
    for bad in ("1e400", "-5", "99999-01-01", "nan"):
        done = cli(tmp_path, "create-raid", "--boss", "dummy", "--start", bad)
        assert done.returncode == 2, (bad, done.stderr)
        assert done.stderr.count("\n") == 1 and "--start:" in done.stderr


def test_demo_allows_the_default_secret_only_on_loopback(tmp_path: Path) -> None:
    """Item 12: `serve --demo` accepted the published default secret on any --host, so
    anyone who could reach the server could sign an operator token."""
    env = {k: v for k, v in user_env().items() if k != "RAID_SECRET"}  # the shipped secret
    for host in ("0.0.0.0", "::", "raid.example.com"):
        done = run(tmp_path, "serve", "--demo", "--host", host, "--port", "0", env=env)
        assert done.returncode == 2, (host, done.stderr)
        assert done.stderr.startswith("raid-server: refusing the default secret 'change-me' on")
        assert "only on a loopback host" in done.stderr and done.stderr.count("\n") == 1
        assert list(tmp_path.iterdir()) == [], "a refused start leaves no files"


def test_token_ttl_must_be_a_finite_positive_number(tmp_path: Path) -> None:
    """Item 12: `token --ttl inf|nan` printed a token no server accepts."""
    for ttl in ("inf", "nan", "-inf", "0", "1e400"):
        done = run(tmp_path, "token", "--user", "u", f"--ttl={ttl}")
        assert done.returncode == 2, (ttl, done.stdout)
        assert "must be a positive number of seconds" in done.stderr, (ttl, done.stderr)
        assert done.stdout == "" and done.stderr.count("\n") == 1
