"""The operator experience (issue 12), as an operator meets it: real processes, real files."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from server.tokens import verify_token
from tests.e2e.harness import (
    ROOT,
    SECRET,
    Client,
    admin_and_player,
    character,
    start_server,
    write_config,
)
from tests.e2e.test_cli import cli
from tests.timeouts import TIMEOUT


def user_env(**extra: str) -> dict[str, str]:
    """The environment of an operator's shell: asyncio's debug mode (set by `make test` for the
    test process itself) adds slow-callback warnings that no user sees."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONASYNCIODEBUG", "NO_COLOR")}
    return {**env, "RAID_SECRET": SECRET, **extra}


def run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI with exactly these arguments (no --config/--db added)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "run_server.py"), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 3,
        check=False,
        env=env if env is not None else user_env(),
        cwd=tmp_path,
    )


def cli_process(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """``cli`` without waiting: several at once keep the test short."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "run_server.py"), *args, "--config", "config.toml"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=user_env(),
        cwd=tmp_path,
    )


# -- a CLI that guides -----------------------------------------------------------------------


def test_global_options_go_before_or_after_the_command(tmp_path: Path) -> None:
    write_config(tmp_path)
    created = run(
        tmp_path,
        "--config",
        "config.toml",
        "--db",
        "x.db",
        "create-raid",
        "--boss",
        "dummy",
        "--raid-id",
        "g1",
    )
    assert created.returncode == 0, created.stderr
    before = run(tmp_path, "--db", "x.db", "--config", "config.toml", "status")
    after = run(tmp_path, "status", "--db", "x.db", "--config", "config.toml")
    assert before.returncode == after.returncode == 0, (before.stderr, after.stderr)
    assert "g1" in before.stdout and before.stdout == after.stdout


BAD_ARGUMENTS = [
    (("serve", "--port", "99999"), 2, "port must be 0 to 65535"),
    (("serve", "--port", "-1"), 2, "port must be 0 to 65535"),
    (("--db", "missing-dir/x.db", "serve"), 2, "directory missing-dir does not exist"),
    (("serve", "--db", "."), 2, "is a directory"),
    (("--db", "x.db", "nonsense"), 2, "invalid choice: 'nonsense'"),
    (("token", "--user", "u" * 65), 2, "1-64 characters"),
    (("token", "--user", "u", "--ttl", "0"), 2, "positive number"),
    (("create-raid", "--boss", "dummy", "--start", "yesterday"), 2, "not an ISO-8601 time"),
    (("create-raid", "--boss", "nobody"), 2, "unknown boss template 'nobody' (known: dummy,"),
    (("create-raid", "--boss", "dummy", "--raid-id", "r" * 65), 2, "1-64 characters"),
    (("restore", "r1", "--snapshot", "0"), 2, "positive integer"),
    (("restore", "r1", "--snapshot", "1", "--url", "http://x"), 2, "not a WebSocket URL"),
    (("status", "r1"), 2, "no database at raid.db"),
    (("audit", "r1", "--user", "a"), 2, "no database at raid.db"),
    (("import-roster", "nothing.json"), 2, "nothing.json: no such file"),
    (("serve", "--log-format", "xml"), 2, "invalid choice: 'xml'"),
    (("--config", "nope.toml", "status"), 2, "nope.toml: (file): no such file"),
]


def test_every_bad_argument_is_one_line_with_its_exit_code_and_leaves_no_files(
    tmp_path: Path,
) -> None:
    """Each case in its own directory, all processes at once (each is a fresh interpreter)."""
    running = []
    for index, (args, code, message) in enumerate(BAD_ARGUMENTS):
        directory = tmp_path / str(index)
        directory.mkdir()
        write_config(directory)
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "run_server.py"), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=user_env(),
            cwd=directory,
        )
        running.append((args, code, message, directory, process))
    results = [(*case, *case[-1].communicate(timeout=TIMEOUT * 6)) for case in running]
    for args, code, message, directory, process, out, err in results:
        assert process.returncode == code, (args, err)
        assert message in err, (args, err)
        assert err.count("\n") == 1 and err.startswith("raid-server: "), (args, err)
        assert "Traceback" not in err and out == "", (args, out)
        assert sorted(p.name for p in directory.iterdir()) == ["config.toml"], args


def test_a_failed_command_removes_the_database_it_created(tmp_path: Path) -> None:
    write_config(tmp_path)
    failed = cli(tmp_path, "create-raid", "--boss", "nobody")
    assert failed.returncode == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]
    ok = cli(tmp_path, "create-raid", "--boss", "dummy", "--raid-id", "k")
    assert ok.returncode == 0
    again = cli(tmp_path, "create-raid", "--boss", "dummy", "--raid-id", "k")
    assert again.returncode == 2 and "already exists" in again.stderr
    assert (tmp_path / "raid.db").exists()  # an existing database is never removed


def test_serve_on_a_busy_port_says_so_and_leaves_no_files(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        other = tmp_path / "other"
        other.mkdir()
        write_config(other)
        done = run(
            other,
            "serve",
            "--config",
            "config.toml",
            "--db",
            "o.db",
            "--host",
            "127.0.0.1",
            "--port",
            str(server.port),
        )
        assert done.returncode == 1
        assert f"address 127.0.0.1:{server.port} is already in use" in done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert sorted(p.name for p in other.iterdir()) == ["config.toml"]
    finally:
        server.stop()


def test_every_command_shows_an_example_in_its_help(tmp_path: Path) -> None:
    commands = [
        "serve",
        "token",
        "import-roster",
        "create-raid",
        "snapshots",
        "restore",
        "status",
        "audit",
    ]
    top = run(tmp_path, "--help")
    assert top.returncode == 0 and "Exit codes: 0 success, 2 usage or bad input" in top.stdout
    for command in commands:
        assert command in top.stdout
        done = run(tmp_path, command, "--help")
        assert done.returncode == 0 and "example:\n  raid-server" in done.stdout.replace(
            "RAID_SECRET=… ", ""
        )
        assert "--log-format" in done.stdout


# -- token ----------------------------------------------------------------------------------


def test_token_refuses_the_default_or_a_short_secret_outside_demo(tmp_path: Path) -> None:
    write_config(tmp_path)
    env = {k: v for k, v in user_env().items() if k != "RAID_SECRET"}
    default = run(tmp_path, "token", "--user", "u", env=env)
    assert default.returncode == 2 and "refusing the default secret" in default.stderr
    assert "RAID_SECRET" in default.stderr and default.stderr.count("\n") == 1
    short = run(tmp_path, "token", "--user", "u", env={**env, "RAID_SECRET": "abcde"})
    assert short.returncode == 2 and "secret of 5 characters" in short.stderr
    demo = run(tmp_path, "token", "--user", "u", "--demo", env=env)
    assert demo.returncode == 0
    assert verify_token("change-me", demo.stdout.strip(), time.time()).user_id == "u"


# -- import-roster ----------------------------------------------------------------------------


def roster_entry(user: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "user_id": user,
        "name": name,
        "rarity": 3,
        "stats": {"power": 100},
        "tags": ["fire"],
        **extra,
    }


def test_re_importing_a_file_changes_nothing(tmp_path: Path) -> None:
    write_config(tmp_path)
    path = tmp_path / "roster.json"
    entries = [
        roster_entry("ann", "Knight"),
        roster_entry("ann", "Knight"),
        roster_entry("bob", "Mage", character_id="bob-1"),
    ]
    path.write_text(json.dumps(entries))
    for _ in range(2):
        done = cli(tmp_path, "import-roster", str(path))
        assert done.returncode == 0, done.stderr
        assert "imported 3 characters for 2 players" in done.stdout
    with contextlib.closing(sqlite3.connect(tmp_path / "raid.db")) as db:
        rows = db.execute(
            "SELECT user_id, character_id, name FROM characters ORDER BY user_id"
        ).fetchall()
    assert len(rows) == 3
    ann = [r for r in rows if r[0] == "ann"]
    assert len({r[1] for r in ann}) == 2  # two Knights, two ids, the same at every import


def test_roster_errors_name_the_file_the_entry_and_the_field(tmp_path: Path) -> None:
    write_config(tmp_path)
    good = [roster_entry("ann", f"A{n}") for n in range(4)]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"stats": {"luck": 1}}, "stats: unknown stat(s) luck (known: power, "),
        ({"tags": ["plasma"]}, "tags: unknown tag(s) plasma (known: "),
        ({"name": "x" * 80}, "name: must be a string of 1-64 characters"),
        ({"rarity": 9}, "rarity: must be 1 to 5, not 9"),
        ({"rarity": "high"}, "rarity: must be an integer"),
        ({"stats": {"power": -1}}, "stats: negative value(s) for power"),
        ({"colour": "red"}, "unknown field(s) colour (known: user_id, character_id,"),
    ]
    running = []
    for index, (change, expected) in enumerate(cases):
        path = tmp_path / f"team{index}.json"
        bad = {**roster_entry("bob", "B"), **change}
        path.write_text(json.dumps([*good, bad]))
        running.append((path, change, expected, cli_process(tmp_path, "import-roster", str(path))))
    results = [(*case, case[-1].communicate(timeout=TIMEOUT * 6)[1]) for case in running]
    for path, change, expected, process, err in results:
        assert process.returncode == 2, (change, err)
        assert err.startswith(f"raid-server: {path}[4] (user bob): {expected}"), err
        assert err.count("\n") == 1
    assert not (tmp_path / "raid.db").exists()  # nothing was written
    path = tmp_path / "team.json"
    path.write_text(json.dumps([*good, {**roster_entry("bob", "B"), "character_id": "ann-x"}]))
    assert cli(tmp_path, "import-roster", str(path)).returncode == 0
    path.write_text(json.dumps([*good, {"name": "no owner"}]))
    done = cli(tmp_path, "import-roster", str(path))
    assert done.returncode == 2 and f"{path}[4]: user_id: " in done.stderr
    path.write_text(
        json.dumps(
            [
                roster_entry("a", "X", character_id="same"),
                roster_entry("b", "Y", character_id="same"),
            ]
        )
    )
    done = cli(tmp_path, "import-roster", str(path))
    assert (
        done.returncode == 2
        and f"{path}[1] (user b): character_id: 'same' is also used by {path}[0]" in done.stderr
    )


def test_the_wire_applies_the_same_name_limit(tmp_path: Path) -> None:
    async def grant() -> dict[str, Any]:
        server = start_server(tmp_path)
        try:
            admin = await Client.connect(server)
            await admin.hello("ops", "admin")
            reply = await admin.request(
                "admin.roster.grant",
                user_id="u",
                characters=[{**character("u", 0), "name": "x" * 80}],
            )
            await admin.close()
            return reply
        finally:
            server.stop()

    reply = asyncio.run(grant())
    assert reply["code"] == "bad_request"
    assert reply["message"] == "characters[0].name: must be a string of 1-64 characters"


async def test_import_while_the_server_runs_is_refused_or_goes_through_it(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        admin = await Client.connect(server)
        await admin.hello("ops", "admin")
        await admin.ok("admin.raid.create", boss="dummy", raid_id="live")
        player = await Client.connect(server)
        await player.hello("newbie")
        path = tmp_path / "roster.json"
        path.write_text(json.dumps([roster_entry("newbie", "Fresh", character_id="newbie-1")]))

        refused = await asyncio.to_thread(cli, tmp_path, "import-roster", str(path))
        assert refused.returncode == 1
        pid = server.process.pid
        assert f"in use by pid {pid}" in refused.stderr and "--url" in refused.stderr
        assert refused.stderr.count("\n") == 1
        not_yet = await player.request(
            "strike", raid_id="live", action="fight", team=["newbie-1"], strike_id="1"
        )
        assert not_yet["code"] == "character_not_owned"

        live = await asyncio.to_thread(
            cli, tmp_path, "import-roster", str(path), "--url", server.ws_url
        )
        assert live.returncode == 0, live.stderr
        assert "imported 1 characters for 1 players through ws://" in live.stdout
        report = await player.ok(
            "strike", raid_id="live", action="fight", team=["newbie-1"], strike_id="1"
        )
        assert report["strike_count"] == 1  # seen at once, no restart
        again = await asyncio.to_thread(
            cli, tmp_path, "import-roster", str(path), "--url", server.ws_url
        )
        assert again.returncode == 0
        await player.close()
        await admin.close()
    finally:
        assert server.stop() == 0
    with contextlib.closing(sqlite3.connect(server.db_path)) as db:
        assert db.execute("SELECT count(*) FROM characters").fetchone()[0] == 1


# -- restore and roll forward, offline --------------------------------------------------------


async def test_restore_then_roll_forward_gives_back_the_state_before(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        admin, player = await admin_and_player(server, "r", "rf")
        await player.ok("strike", raid_id="rf", action="fight", team=["r-c0"], strike_id="0")
        early = await admin.ok("admin.snapshot", raid_id="rf")
        for n in range(1, 4):
            await player.ok(
                "strike", raid_id="rf", action="analyze", team=[f"r-c{n}"], strike_id=str(n)
            )
        await player.close()
        await admin.close()
    finally:
        assert server.stop() == 0  # the final snapshot is the latest one
    before = cli(tmp_path, "status", "rf").stdout
    latest = cli(tmp_path, "snapshots", "rf").stdout.strip().splitlines()[-1].split()[0]
    back = cli(tmp_path, "restore", "rf", "--snapshot", str(early["snapshot_id"]))
    assert back.returncode == 0, back.stderr
    assert "3 strikes and 1 snapshots rolled back" in back.stdout
    assert "strikes=1" in cli(tmp_path, "status", "rf").stdout
    listing = cli(tmp_path, "snapshots", "rf").stdout
    assert f"to snapshot {early['snapshot_id']} (seq 1): 3 strikes rolled back" in listing

    forward = cli(tmp_path, "restore", "rf", "--snapshot", latest)
    assert forward.returncode == 0, forward.stderr
    assert (
        "rolled forward to snapshot" in forward.stdout
        and "3 strikes and 1 snapshots rolled forward" in forward.stdout
    )
    assert cli(tmp_path, "status", "rf").stdout == before
    again = start_server(tmp_path)
    try:
        player = await Client.connect(again)
        await player.hello("r")
        hub = await player.ok("raid.hub", raid_id="rf")
        assert hub["raid"]["strike_count"] == 4 and hub["me"]["strikes"] == 4
        await player.close()
    finally:
        again.stop()


# -- audit ------------------------------------------------------------------------------------


async def test_audit_shows_strikes_rewards_and_rolled_back_strikes(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        admin, player = await admin_and_player(server, "al", "au")
        await player.ok("strike", raid_id="au", action="analyze", team=["al-c0"], strike_id="kept")
        await player.ok("rewards.claim", raid_id="au", key="breakthrough:1")
        snap = await admin.ok("admin.snapshot", raid_id="au")
        await player.ok(
            "strike", raid_id="au", action="fight", team=["al-c1", "al-c2"], strike_id="lost"
        )
        await admin.ok("admin.raid.restore", raid_id="au", snapshot_id=snap["snapshot_id"])
        await player.ok("strike", raid_id="au", action="fight", team=["al-c3"], strike_id="after")
        await player.close()
        await admin.close()

        text = await asyncio.to_thread(cli, tmp_path, "audit", "au", "--user", "al")
        assert text.returncode == 0, text.stderr
        out = text.stdout
        assert "raid au, player al: 3 strikes (1 rolled back), 4 rewards" in out
        lines = out.splitlines()
        lost = next(line for line in lines if " lost " in line)
        assert "ROLLED BACK" in lost and "al-c1,al-c2" in lost and "fight" in lost
        kept = next(line for line in lines if " kept " in line)
        assert "ROLLED BACK" not in kept and "analyze" in kept
        assert "reward strike:kept" in out and "breakthrough:1" in out and "claimed" in out

        as_json = await asyncio.to_thread(cli, tmp_path, "audit", "au", "--user", "al", "--json")
        document = json.loads(as_json.stdout)
        strikes = {s["strike_id"]: s for s in document["strikes"]}
        assert [s["strike_id"] for s in document["strikes"]] == ["kept", "lost", "after"]
        assert strikes["lost"]["rolled_back"] and not strikes["after"]["rolled_back"]
        assert strikes["lost"]["seq"] == strikes["after"]["seq"] == 2  # the seq was reused
        assert strikes["kept"]["reward"]["key"] == "strike:kept"
        assert strikes["lost"]["team"] == ["al-c1", "al-c2"] and "draws" in strikes["lost"]
        rewards = {(r["key"], r["rolled_back"]) for r in document["rewards"]}
        assert ("strike:lost", True) in rewards and ("breakthrough:1", False) in rewards

        one = await asyncio.to_thread(cli, tmp_path, "audit", "au", "--strike", "lost")
        assert one.returncode == 0
        assert "strike lost of al: ROLLED BACK by an operator restore" in one.stdout
        assert "  result: " in one.stdout and "  draws: " in one.stdout
        missing = await asyncio.to_thread(cli, tmp_path, "audit", "au", "--strike", "nope")
        assert missing.returncode == 2 and "has no strike 'nope'" in missing.stderr
    finally:
        server.stop()


# -- logs -------------------------------------------------------------------------------------


def serve_command(tmp_path: Path, *extra: str) -> list[str]:
    write_config(tmp_path)
    return [
        sys.executable,
        str(ROOT / "run_server.py"),
        "serve",
        "--config",
        "config.toml",
        "--db",
        "raid.db",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        *extra,
    ]


def test_log_format_json_and_text_with_one_access_line_per_request(tmp_path: Path) -> None:
    server = start_server(tmp_path)  # auto, stderr is a file: JSON (the harness parses it)
    try:
        for path in ("/healthz", "/healthz", "/nope"):
            server.http_get(path)
        server.http_get("/metrics")
    finally:
        assert server.stop() == 0
    lines = server.log_lines()
    assert all("ts" in line and "level" in line for line in lines), lines
    access = [line for line in lines if line["logger"] == "raid.access"]
    paths = [line["msg"] for line in access]
    # start_server polls /healthz until ready; then the four requests above, one line each
    assert paths[-4:] == [
        "GET /healthz 200",
        "GET /healthz 200",
        "GET /nope 404",
        "GET /metrics 200",
    ]
    assert all(
        len(line["conn"]) == 8 and line["remote"].startswith("127.0.0.1:") for line in access
    )
    assert not [line for line in lines if line["logger"].startswith("websockets")]
    ready = next(line for line in lines if line["msg"].startswith("ready in "))
    assert "raids restored" in ready["msg"] and "Ctrl+C to stop" in ready["msg"]
    assert any(
        line["msg"].startswith("stopped in ") and "final snapshots" in line["msg"] for line in lines
    )

    text = tmp_path / "text"
    text.mkdir()
    process = subprocess.Popen(
        serve_command(text, "--log-format", "text"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=user_env(),
        cwd=text,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
    finally:
        process.terminate()
        rest = process.communicate(timeout=TIMEOUT)[1]
    assert " INFO    app          listening  host=127.0.0.1 port=" in first
    assert "\x1b[" not in first + rest  # no colours: not a terminal
    assert "stopped in " in rest
    with pytest.raises(json.JSONDecodeError):
        json.loads(first)


def test_log_format_auto_is_coloured_text_on_a_terminal(tmp_path: Path) -> None:
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        serve_command(tmp_path, "--log-level", "info"),
        stdout=subprocess.DEVNULL,
        stderr=secondary,
        env=user_env(),
        cwd=tmp_path,
    )
    os.close(secondary)
    seen = b""
    deadline = time.monotonic() + TIMEOUT * 3
    try:
        while b"Ctrl+C to stop" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.1)
            if ready:
                try:
                    seen += os.read(primary, 4096)
                except OSError:
                    break
    finally:
        process.terminate()
        process.wait(timeout=TIMEOUT)
        os.close(primary)
    text = seen.decode(errors="replace")
    assert "Ctrl+C to stop" in text
    assert "\x1b[32mINFO" in text  # a green level
    assert '"level"' not in text  # not JSON
