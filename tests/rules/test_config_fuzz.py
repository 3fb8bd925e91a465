"""Fuzzing the config loader (issue 9): whatever a file holds, loading it either gives a
``Config`` or raises ``ConfigError`` naming the file, the key and the problem on one line.

Mutations start from the shipped defaults, so most generated documents are valid except for
the one value changed, which is what reaches the deep checks.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from raid.config import Config, load_config, merge_documents, parse_config
from raid.errors import ConfigError
from tests.rules.conftest import default_document

FUZZ = int(os.environ.get("RAID_FUZZ_EXAMPLES", "150"))

DEFAULTS = default_document()

toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, -1, 1, 2**53, 2**62, 10**400, 2**1100]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.005, 0.125, 1e308, -0.0, math.inf, math.nan]),
    st.text(max_size=20),
    st.sampled_from(["event", "FULL", "fire", "power", "stat_drain", "fight", ""]),
    st.datetimes(timezones=st.none() | st.just(dt.UTC)),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def _paths(doc: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every key path of a document (table keys and list indexes)."""
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*prefix, index))
    return found


PATHS = _paths(DEFAULTS)


def _mutate(doc: dict[str, Any], path: tuple[str | int, ...], value: Any, delete: bool) -> None:
    target: Any = doc
    for step in path[:-1]:
        target = target[step]
    last = path[-1]
    if delete and isinstance(target, dict):
        del target[last]
    else:
        target[last] = value


def _check(load: Any) -> None:
    try:
        config = load()
    except ConfigError as exc:
        assert exc.file and exc.key and exc.problem
        assert "\n" not in str(exc), str(exc)
        return
    assert isinstance(config, Config)


@settings(max_examples=FUZZ, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(PATHS), toml_values, st.booleans()), min_size=1, max_size=3)
)
@example([(("server", "snapshot_interval_s"), 10**400, False)])
@example([(("persistence", "snapshot_interval_s"), 10**400, False)])
@example([(("persistence", "snapshot_interval_s"), math.nan, False)])
@example([(("actors", "replay_buffer"), 10**30, False)])
@example([(("persistence", "busy_timeout_ms"), 2**62, False)])
def test_any_mutation_of_the_defaults_loads_or_names_the_key(
    mutations: list[tuple[tuple[str | int, ...], Any, bool]],
) -> None:
    doc = copy.deepcopy(DEFAULTS)
    for path, value, delete in mutations:
        try:
            _mutate(doc, path, value, delete)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced the parent
    _check(lambda: parse_config(doc, "fuzz.toml"))


@settings(max_examples=FUZZ, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(DEFAULTS)), toml_values, max_size=3))
@example({"actors": {"\n": False}})  # found by this test: a key holding a newline
@example({"bosses": {"x\u2028y": {}}})
def test_any_file_merged_over_the_defaults_loads_or_names_the_key(override: dict[str, Any]) -> None:
    _check(lambda: parse_config(merge_documents(DEFAULTS, override), "fuzz.toml"))


@settings(max_examples=FUZZ, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200))
@example("[server]\nport = 1" + "0" * 400)
@example("[player]\ncharacter_rest = 1e400")
def test_any_bytes_in_the_file_load_or_name_the_problem(content: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "config.toml"
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8", errors="surrogatepass")
        else:
            path.write_bytes(content)
        _check(lambda: load_config(path))
