"""Imports point one way: server -> actors -> raid; actors/ never imports server/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_packages(folder: str) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in (ROOT / folder).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add((path.name, node.module.split(".")[0]))
            elif isinstance(node, ast.Import):
                found.update((path.name, alias.name.split(".")[0]) for alias in node.names)
    return found


def test_actors_never_import_the_gateway() -> None:
    assert {f for f, package in imported_packages("actors") if package == "server"} == set()


def test_rules_import_no_actor_gateway_or_storage() -> None:
    banned = {"server", "actors", "persistence", "pykka", "asyncio", "sqlite3", "websockets"}
    assert {(f, p) for f, p in imported_packages("raid") if p in banned} == set()
