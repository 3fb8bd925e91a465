"""raid-loadtest against a real server, against lying servers, and with bad usage."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import ServerProcess, start_server
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
