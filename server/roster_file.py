"""Roster files for ``import-roster``: read, check with the wire's own validators, give ids.

A file is a JSON array of ``{user_id, character_id?, name, rarity, stats, tags?}``. Each entry
goes through ``CharacterSpec.parse`` (the parser of ``admin.roster.grant``) and
``actors.raids.check_grant`` (the service's check): a file is accepted exactly when the same
characters would be accepted on the wire. Errors name the file, the entry and the field:
``roster.json[4] (user alice): stats: unknown stat(s) luck (known: power, guard, speed)``.

Entries without ``character_id`` get ``stable_character_id(user, name, n)``: importing the
same file again updates those characters instead of adding copies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.raids import CharacterGrant, character_row, check_grant, stable_character_id
from persistence.records import CharacterRow
from raid.config import Config
from raid.errors import FieldError
from server.requests import CharacterSpec, as_id

FIELDS = ("user_id", "character_id", "name", "rarity", "stats", "tags")


class RosterFileError(Exception):
    """The file cannot be imported; the message is one line naming the file and entry."""


@dataclass(frozen=True, slots=True)
class RosterEntry:
    index: int  # position in the file, for messages
    user_id: str
    character_id: str  # given, or stable_character_id
    grant: CharacterGrant


def read_roster(path: Path, config: Config) -> list[RosterEntry]:
    """Every entry of the file, checked, with ids; ``RosterFileError`` on the first problem."""
    entries = assign_ids(
        [_entry(path, index, raw, config) for index, raw in enumerate(_load(path))]
    )
    seen: dict[str, RosterEntry] = {}
    for entry in entries:
        first = seen.setdefault(entry.character_id, entry)
        if first is not entry:
            raise RosterFileError(
                f"{_where(path, entry.index, entry.user_id)}: character_id: "
                f"{entry.character_id!r} is also used by {path}[{first.index}]"
            )
    return entries


def rows_of(entries: list[RosterEntry], config: Config) -> list[CharacterRow]:
    return [character_row(config, e.user_id, e.character_id, e.grant) for e in entries]


def _load(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RosterFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RosterFileError(f"{path}: is a directory, not a JSON file") from None
    except PermissionError:
        raise RosterFileError(f"{path}: permission denied") from None
    except UnicodeDecodeError as exc:
        raise RosterFileError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise RosterFileError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(data, list):
        raise RosterFileError(f"{path}: must be a JSON array of characters, not {_kind(data)}")
    return data


def _entry(path: Path, index: int, raw: Any, config: Config) -> RosterEntry:
    if not isinstance(raw, Mapping):
        raise RosterFileError(f"{path}[{index}]: must be an object, not {_kind(raw)}")
    user = raw.get("user_id")
    try:
        user_id = as_id(user, "user_id")
    except FieldError as exc:
        raise RosterFileError(f"{path}[{index}]: user_id: {exc.problem}") from None
    where = _where(path, index, user_id)
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise RosterFileError(
            f"{where}: unknown field(s) {', '.join(map(str, unknown))} (known: {', '.join(FIELDS)})"
        )
    fields = {k: v for k, v in raw.items() if k != "user_id"}
    try:
        spec = CharacterSpec.parse(fields, "")
        grant = CharacterGrant(spec.character_id, spec.name, spec.rarity, spec.stats, spec.tags)
        check_grant(config, grant, "")
    except FieldError as exc:
        raise RosterFileError(f"{where}: {exc.path}: {exc.problem}") from None
    return RosterEntry(index, user_id, grant.character_id or "", grant)


def assign_ids(entries: list[RosterEntry]) -> list[RosterEntry]:
    """Entries without a character_id get a stable one (see the module docstring)."""
    occurrences: dict[tuple[str, str], int] = {}
    out = []
    for entry in entries:
        if entry.character_id:
            out.append(entry)
            continue
        key = (entry.user_id, entry.grant.name)
        occurrences[key] = occurrences.get(key, 0) + 1
        stable = stable_character_id(entry.user_id, entry.grant.name, occurrences[key])
        out.append(RosterEntry(entry.index, entry.user_id, stable, entry.grant))
    return out


def _where(path: Path, index: int, user_id: str) -> str:
    return f"{path}[{index}] (user {user_id})"


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"
