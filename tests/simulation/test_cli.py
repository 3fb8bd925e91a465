"""``raid-server simulate`` as a user runs it: files in, table, JSON and plots out, and one
line with exit code 2 for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from server.cli import main
from tests.e2e.harness import ROOT
from tests.timeouts import TIMEOUT


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ./config.toml: the shipped config is used, as for a user trying the command."""
    monkeypatch.chdir(tmp_path)


QUICK = ["simulate", "--boss", "leviathan", "--players", "150", "--hours", "6"]


def simulate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """One run with the shipped config (no ./config.toml in the test's directory)."""
    code = main([*QUICK, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_is_deterministic_and_the_seed_matters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [tmp_path / f"{name}.json" for name in ("a", "b", "c")]
    for path, seed in zip(paths, ("5", "5", "6"), strict=True):
        code, out, _ = simulate(tmp_path, capsys, "--seed", seed, "--json", str(path))
        assert code == 0
        assert "Abyssal Leviathan" in out and "damage Gini" in out
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    report = orjson.loads(paths[0].read_bytes())
    assert report["inputs"]["seed"] == 5 and report["strikes"]["total"] > 0
    lost = report["outcome"]["total_hp"] - report["outcome"]["hp_left"]
    assert lost == report["damage"]["total"]


def test_plot_png_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png, page = tmp_path / "out.png", tmp_path / "out.html"
    assert simulate(tmp_path, capsys, "--plot", str(png))[0] == 0
    assert png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert simulate(tmp_path, capsys, "--plot", str(page))[0] == 0
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and "<svg" in text and "damage Gini" in text
    assert "src=" not in text and "<script" not in text  # self-contained


def test_compare_two_configs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tougher = tmp_path / "tougher.toml"
    tougher.write_text("[bosses.leviathan]\ntotal_hp = 9000000\n", encoding="utf-8")
    out_json = tmp_path / "cmp.json"
    code, out, _ = simulate(tmp_path, capsys, "--compare", str(tougher), "--json", str(out_json))
    assert code == 0 and "b - a" in out
    document = orjson.loads(out_json.read_bytes())
    a, b = document["a"], document["b"]
    assert a["outcome"]["total_hp"] == 5_000_000 and b["outcome"]["total_hp"] == 9_000_000
    # same players, same seed: the first strikes are the same in both runs
    assert a["series"]["fights"][:2] == b["series"]["fights"][:2]
    rows = {row["figure"]: row for row in document["comparison"]}
    assert rows["hp left"]["difference"] == b["outcome"]["hp_left"] - a["outcome"]["hp_left"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--boss", "nope"], "unknown boss 'nope'"),
        (["--hours", "0"], "--hours must be above 0"),
        (["--hours", "-3"], "--hours must be above 0"),
        (["--hours", "soon"], "--hours must be a number"),
        (["--players", "0"], "--players must be 1 to"),
        (["--plot", "out.jpg"], "--plot must end in .png or .html"),
        (["--json", "no/such/dir/out.json"], "--json: no directory 'no/such/dir'"),
        (["--population", "POP"], "POP: play.bogus: unknown key"),
        (["--population", "missing.toml"], "missing.toml: (file): no such file"),
        (["--compare", "missing.toml"], "missing.toml: (file): no such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    population = tmp_path / "pop.toml"
    population.write_text("[play]\nbogus = 1\n", encoding="utf-8")
    args = [str(population) if a == "POP" else a for a in args]
    message = message.replace("POP", str(population))
    code = main([*QUICK, *args])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and message in err, err
    assert "Traceback" not in err


def test_real_process(tmp_path: Path) -> None:
    """The installed entry point, as a user runs it (no terminal: no progress bar)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "run_server.py"), *QUICK, "--json", "r.json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=TIMEOUT * 6,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and "time to kill (h)" in done.stdout
    assert orjson.loads((tmp_path / "r.json").read_bytes())["inputs"]["players"] == 150
    bad = subprocess.run(
        [sys.executable, str(ROOT / "run_server.py"), *QUICK, "--boss", "nope"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=TIMEOUT * 6,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
