"""raid-loadtest against a real server, against lying servers, and with bad usage."""

from __future__ import annotations

import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from server.tokens import issue_token
from tests.e2e.harness import ServerProcess, start_server, token
from tests.loadtest.fake_server import FakeRaidServer
from tests.loadtest.support import LOADTEST, loadtest_config, run_loadtest, tool_env
from tests.timeouts import TIMEOUT

CONTRACT_KEYS = {
    "clients",
    "duration_s",
    "strikes",
    "strikes_per_s",
    "latency_ms",
    "errors",
    "audit",
    "mode",
    "rate",
    "echo",
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    handle = start_server(tmp_path, config_path=loadtest_config(tmp_path))
    try:
        yield handle
    finally:
        handle.stop()


async def test_smoke_ten_clients_two_seconds(server: ServerProcess, tmp_path: Path) -> None:
    plot = tmp_path / "plot.png"
    outcome = await run_loadtest(
        server.ws_url,
        tmp_path,
        *("--clients", "10", "--duration", "2", "--workers", "2", "--boss", "titan"),
        *("--subscribe", "--mix", "fight=3,analyze=1", "--plot", str(plot)),
    )
    assert outcome.returncode == 0, outcome.stderr
    result = outcome.result
    assert result is not None
    assert set(result) >= CONTRACT_KEYS
    assert result["clients"] == 10
    assert result["mode"] == "closed"
    assert result["rate"] is None
    assert result["echo"] is None
    assert result["errors"] == {}
    assert result["strikes"] > 0
    assert set(result["latency_ms"]) == {"p50", "p95", "p99", "max"}
    assert result["audit"]["passed"] is True
    checks = result["audit"]["checks"]
    for name in ("hp_conserved", "strike_count", "events_contiguous", "strike_rewards"):
        assert checks[name]["passed"] is True
        assert not checks[name].get("skipped"), checks[name]
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert "hp_conserved" in outcome.stdout


async def test_open_loop_with_echo_ceiling(server: ServerProcess, tmp_path: Path) -> None:
    outcome = await run_loadtest(
        server.ws_url,
        tmp_path,
        *("--clients", "4", "--duration", "1", "--workers", "1", "--boss", "titan"),
        *("--rate", "200", "--echo-ceiling"),
    )
    assert outcome.returncode == 0, outcome.stderr
    result = outcome.result
    assert result is not None
    assert result["mode"] == "open"
    assert result["rate"] == 200
    assert result["errors"] == {}
    echo = result["echo"]
    assert echo is not None
    assert echo["strikes"] > 0
    assert echo["errors"] == {}
    assert echo["ratio"] == pytest.approx(result["strikes_per_s"] / echo["strikes_per_s"])
    assert "echo server" in outcome.stdout


@pytest.fixture
async def liar(request: pytest.FixtureRequest) -> AsyncIterator[FakeRaidServer]:
    fake = FakeRaidServer(**request.param)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.mark.parametrize(
    ("liar", "failed_check"),
    [
        ({"apply_damage": False}, "hp_conserved"),
        ({"reorder_seq": True}, "events_contiguous"),
    ],
    indirect=["liar"],
    ids=["acks-without-damage", "reorders-seq"],
)
async def test_a_lying_server_fails_the_audit(
    liar: FakeRaidServer, failed_check: str, tmp_path: Path
) -> None:
    outcome = await run_loadtest(
        liar.url,
        tmp_path,
        *("--clients", "3", "--duration", "1", "--workers", "1", "--subscribe"),
        *("--drain-timeout", "2", "--boss", "fake"),
    )
    assert outcome.returncode == 1, outcome.stderr
    assert outcome.stderr.strip() == f"raid-loadtest: audit failed: {failed_check}"
    assert outcome.result is not None
    assert outcome.result["audit"]["checks"][failed_check]["passed"] is False


@pytest.mark.parametrize("liar", [{"swallow_every": 3}], indirect=True, ids=["swallows"])
async def test_unanswered_strikes_are_resent_and_counted(
    liar: FakeRaidServer, tmp_path: Path
) -> None:
    outcome = await run_loadtest(
        liar.url,
        tmp_path,
        *("--clients", "3", "--duration", "1", "--workers", "1", "--boss", "fake"),
        *("--drain-timeout", "0.5"),
    )
    assert outcome.returncode == 0, outcome.stderr
    result = outcome.result
    assert result is not None
    # The closed-loop clients each waited on a swallowed strike until the drain deadline;
    # sent again, each was answered with its report and counted, with its full latency.
    assert result["resent_after_drain"] == 3
    assert result["in_doubt"] == 0
    assert result["strikes"] == liar.strike_count
    assert result["latency_ms"]["max"] >= 500
    assert result["audit"]["checks"]["hp_conserved"]["passed"] is True


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LOADTEST, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 3,
        check=False,
        env=tool_env(),
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--url", "ws://127.0.0.1:1/ws", "--admin-token", "x", "--secret", "s"), "cannot connect"),
        (("--url", "ws://127.0.0.1:1/ws", "--admin-token", "x"), "--secret"),
        (("--url", "ws://x/ws", "--clients", "0"), "--clients"),
        (("--url", "ws://x/ws", "--mix", "dance=1"), "unknown action"),
        (("--url", "not a url", "--admin-token", "x", "--secret", "s"), "not a WebSocket URL"),
    ],
)
def test_usage_and_connection_errors_exit_2_with_one_line(
    args: tuple[str, ...], message: str
) -> None:
    done = _run(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]
    assert "Traceback" not in done.stderr


def test_bad_admin_token_exits_2(server: ServerProcess) -> None:
    done = _run("--url", server.ws_url, "--admin-token", "nope.nope", "--secret", "s")
    assert done.returncode == 2
    assert "unauthenticated" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_refused_player_token_exits_2(server: ServerProcess, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.txt"
    forged = issue_token("not-the-secret", "mallory", "player", 3600, time.time())
    tokens.write_text(f"# players\n{token('zoe')}\n\n{forged}\n")
    done = _run(
        *("--url", server.ws_url, "--admin-token", token("ops", "admin")),
        *("--tokens", str(tokens), "--clients", "2", "--boss", "titan", "--workers", "1"),
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == ("raid-loadtest: hello refused for mallory: bad token signature")


MINI_BOSS = """
[bosses.mini]
name = "Mini"
total_hp = 40
duration_s = 86400
dominant_stats = ["power"]
weaknesses = []
resistances = []
weakness_pool = ["fire"]
curse_pool = ["veil"]
analysis_thresholds = [1000]
analysis_reward_pool = [{ gems = 1 }]
victory_cache = { gems = 1 }
"""


async def test_a_boss_killed_during_the_run(tmp_path: Path) -> None:
    server = start_server(tmp_path, config_path=loadtest_config(tmp_path, extra=MINI_BOSS))
    try:
        outcome = await run_loadtest(
            server.ws_url,
            tmp_path,
            *("--clients", "5", "--duration", "2", "--workers", "1", "--boss", "mini"),
            "--subscribe",
        )
    finally:
        server.stop()
    assert outcome.returncode == 0, outcome.stderr
    result = outcome.result
    assert result is not None
    # Each client stops at its first raid_not_active instead of hammering a dead raid.
    assert 1 <= result["errors"]["raid_not_active"] <= 5
    assert set(result["errors"]) == {"raid_not_active"}
    checks = result["audit"]["checks"]
    assert "= 0; the server says 0" in checks["hp_conserved"]["detail"]
    assert "1 victory" in checks["events_complete"]["detail"]


@pytest.mark.parametrize("liar", [{"swallow_every": 4}], indirect=True, ids=["swallows"])
async def test_open_loop_resends_what_was_swallowed(liar: FakeRaidServer, tmp_path: Path) -> None:
    """The open-loop scheduler keeps sending whatever happens to earlier strikes; what the
    server never answered is settled by resending after the drain."""
    outcome = await run_loadtest(
        liar.url,
        tmp_path,
        *("--clients", "3", "--duration", "1", "--workers", "1", "--boss", "fake"),
        *("--rate", "30", "--drain-timeout", "0.5"),
    )
    assert outcome.returncode == 0, outcome.stderr
    result = outcome.result
    assert result is not None
    assert result["mode"] == "open"
    assert result["resent_after_drain"] >= 1
    assert result["in_doubt"] == 0
    assert result["strikes"] == liar.strike_count  # every applied strike acknowledged once
    assert result["audit"]["checks"]["hp_conserved"]["passed"] is True
