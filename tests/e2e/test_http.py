"""Same-port HTTP: health, metrics, the browser page; start-up refusals; demo mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import ROOT, Client, ServerProcess, write_config
from tests.timeouts import TIMEOUT


async def test_health_metrics_page_and_404(
    server: ServerProcess, alice: Client, raid_id: str
) -> None:
    await alice.ok("strike", raid_id=raid_id, action="fight", team=["alice-c0"], strike_id="m")
    assert server.http_get("/healthz")[:1] == (200,)
    status, content_type, body = server.http_get("/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    for name in [
        'strikes_total{code="ok"} 1.0',
        "strike_latency_seconds_count 1.0",
        "connections 2.0",
        "journal_batch_size_count",
        "journal_commit_seconds_count",
        "snapshot_seconds_count",
        'live_actors{kind="raid"} 1.0',
        'live_actors{kind="player"} 1.0',
        "events_sent_total",
    ]:
        assert name in body, name
    status, content_type, page = server.http_get("/")
    assert status == 200 and content_type.startswith("text/html") and "<html" in page.lower()
    assert server.http_get("/nope")[0] == 404


def serve_once(config: Path, db: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``serve`` that is expected to refuse to start (it must exit on its own)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "run_server.py"), "serve", "--config", str(config),
         "--db", str(db), "--port", "0"],
        capture_output=True, text=True, env=env, timeout=TIMEOUT * 3, check=False,
    )  # fmt: skip


def test_default_secret_is_refused_outside_demo(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAID_SECRET"}
    done = serve_once(write_config(tmp_path), tmp_path / "x.db", env)
    assert done.returncode == 2  # a configuration problem: bad input
    assert "default secret" in done.stderr and "RAID_SECRET" in done.stderr
    assert done.stderr.count("\n") == 1
    assert list(tmp_path.glob("x.db*")) == []


def test_bad_config_names_file_key_and_problem(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[scoring]\nweakness_bonus = 0.125\n", encoding="utf-8")
    done = serve_once(config, tmp_path / "x.db", dict(os.environ))
    assert done.returncode == 2
    assert (
        f"{config}: scoring.weakness_bonus: 0.125 has more than two decimal places" in done.stderr
    )


async def test_demo_world(tmp_path: Path) -> None:
    from tests.e2e.harness import start_server

    server = start_server(tmp_path, demo=True)
    try:
        banner = server.out_path.read_text(encoding="utf-8")
        assert f"http://127.0.0.1:{server.port}/" in banner
        token_line = next(line for line in banner.splitlines() if "token player01:" in line)
        client = await Client.connect(server)
        hello = await client.ok("hello", token=token_line.split(":", 1)[1].strip())
        assert hello["user_id"] == "player01"
        status, content_type, body = server.http_get("/demo/tokens")  # the page's login picker
        assert status == 200 and content_type == "application/json"
        accounts = json.loads(body)["accounts"]
        assert [a["user_id"] for a in accounts[:2]] + [accounts[-1]["role"]] == [
            "player01",
            "player02",
            "admin",
        ]
        other = await Client.connect(server)
        assert (await other.ok("hello", token=accounts[-1]["token"]))["role"] == "admin"
        await other.close()
        raid = next(r for r in hello["raids"] if r["status"] == "active")
        options = await client.ok("team.options", raid_id=raid["raid_id"])
        assert 12 <= len(options["characters"]) <= 20
        assert len({tuple(c["tags"]) for c in options["characters"]}) > 3
        await client.close()
    finally:
        server.stop()
