"""Config loading and validation (raid/config.py): defaults, merging, every error message."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from raid.codec import new_boss_state
from raid.config import (
    Action,
    Curse,
    CurseKind,
    Synchronous,
    load_config,
    parse_config,
)
from raid.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

TOP_KEYS = (
    "server, persistence, actors, stats, tags, scoring, player, raid, strike_rewards, "
    "milestones, curses, bosses"
)


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> tuple[Path, ConfigError]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return path, info.value


# ---------------------------------------------------------------------------------------------
# Loading


def test_defaults_alone() -> None:
    config = load_config(None)
    assert config.source == "default_config.toml"
    rules = config.rules
    assert rules.stats == ("power", "agility", "intellect", "spirit", "endurance", "charm")
    assert rules.elements == ("fire", "water", "wind", "earth", "light", "shadow")
    assert rules.roles == ("vanguard", "striker", "mystic", "support", "ranger", "trickster")
    assert rules.tags == frozenset(rules.elements) | frozenset(rules.roles)
    assert rules.scoring.weakness_bonus == Fraction(1, 4)
    assert rules.scoring.resistance_penalty == Fraction(1, 4)
    assert rules.scoring.multiplier_min == Fraction(1, 4)
    assert rules.scoring.multiplier_max == 3
    assert (rules.scoring.damage_divisor, rules.scoring.analysis_divisor) == (10, 10)
    assert rules.player.max_team_size == 6
    assert rules.player.strike_cooldown_s == 60
    assert rules.player.character_rest_s is None
    assert dict(rules.strike_rewards[Action.FIGHT]) == {"raid_tokens": 10}
    assert dict(rules.strike_rewards[Action.ANALYZE]) == {"raid_tokens": 10, "intel": 1}
    assert [m.threshold for m in rules.damage_milestones] == [1000, 10000]
    assert dict(rules.damage_milestones[1].reward) == {"raid_tokens": 200, "gems": 20}
    assert [m.threshold for m in rules.analysis_milestones] == [500]
    assert rules.curses["brittle_mind"] == Curse(
        "brittle_mind",
        "Brittle Mind",
        CurseKind.STAT_DRAIN,
        stat="intellect",
        factor=Fraction(1, 2),
    )
    assert rules.curses["iron_hide"].action is Action.FIGHT
    assert rules.curses["iron_hide"].factor == Fraction(4, 5)
    assert rules.curses["narrow_pass"].max == 4
    assert config.raid.retaliation_every == 50
    assert config.raid.curse_limit == 3
    assert config.raid.claim_grace_s == 604800
    assert config.raid.leaderboard_size == 10
    assert config.persistence.synchronous is Synchronous.FULL
    assert config.server.port == 8765
    boss = config.bosses["leviathan"]
    assert boss.total_hp == 5_000_000
    assert boss.dominant_stats == ("power", "endurance")
    assert boss.resistances == ("water", "shadow")
    assert boss.analysis_thresholds == (2000, 6000, 15000, 30000, 60000)
    assert [dict(b) for b in boss.analysis_reward_pool][-1] == {"gems": 50}
    assert dict(boss.victory_cache) == {"gems": 100, "raid_tokens": 500}
    assert boss.raid == config.raid


def test_repo_config_toml_equals_defaults() -> None:
    path = REPO / "config.toml"
    config = load_config(path)
    defaults = load_config(None)
    assert config.source == str(path)
    assert config.rules == defaults.rules
    assert config.bosses == defaults.bosses
    assert config.raid == defaults.raid
    assert config.server == defaults.server


def test_partial_file_merges_over_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[player]\nmax_team_size = 5\n"))
    defaults = load_config(None)
    assert config.rules.player.max_team_size == 5
    assert config.rules.player.strike_cooldown_s == defaults.rules.player.strike_cooldown_s
    assert config.rules.scoring == defaults.rules.scoring
    assert config.rules.curses == defaults.rules.curses
    assert config.bosses == defaults.bosses


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.rules == load_config(None).rules


def test_arrays_replace_defaults(tmp_path: Path) -> None:
    text = "[[milestones.damage]]\nthreshold = 7\nreward = { gems = 1 }\n"
    config = load_config(write(tmp_path, text))
    assert [m.threshold for m in config.rules.damage_milestones] == [7]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("character_rest = 30", Fraction(30)),
        ("character_rest = 0.5", Fraction(1, 2)),
        ("character_rest = 0", Fraction(0)),  # RULES.md: 0 means no rest
        ("character_rest = 0.005", Fraction(1, 200)),  # seconds need not be multiples of 0.01
        ('character_rest = "event"', None),
    ],
)
def test_character_rest(tmp_path: Path, text: str, expected: Fraction | None) -> None:
    config = load_config(write(tmp_path, f"[player]\n{text}\n"))
    assert config.rules.player.character_rest_s == expected


def test_cooldown_takes_any_number_of_decimals(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[player]\nstrike_cooldown_s = 1.001\n"))
    assert config.rules.player.strike_cooldown_s == Fraction(1001, 1000)


def test_synchronous_is_case_insensitive(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[persistence]\nsynchronous = "normal"\n'))
    assert config.persistence.synchronous is Synchronous.NORMAL


def test_boss_overrides_raid_keys(tmp_path: Path) -> None:
    text = "[bosses.leviathan]\nretaliation_every = 5\ncurse_limit = 1\n"
    config = load_config(write(tmp_path, text))
    boss = config.bosses["leviathan"]
    assert boss.raid.retaliation_every == 5
    assert boss.raid.curse_limit == 1
    assert boss.raid.claim_grace_s == 604800  # not overridden: the [raid] value
    assert config.raid.retaliation_every == 50  # [raid] itself unchanged
    state = new_boss_state(boss, "r", 0.0, 10.0, 0.0)
    assert state.settings.retaliation_every == 5
    assert state.curse_limit == 1


def test_factor_at_upper_bound_is_accepted(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[curses.veil.params]\nfactor = 10\n"))
    assert config.rules.curses["veil"].factor == 10


@pytest.mark.parametrize(
    ("curse_id", "params"),
    [
        ("brittle_mind", {"stat": "intellect", "factor": 0.5}),
        ("tidal_ward", {"tag": "water", "factor": 0.75}),
        ("iron_hide", {"action": "fight", "factor": 0.8}),
        ("narrow_pass", {"max": 4}),
        ("dread_aura", {"factor": 1.5}),
        ("veil", {"factor": 0.5}),
    ],
)
def test_curse_params_round_trip(curse_id: str, params: dict[str, object]) -> None:
    assert load_config(None).rules.curses[curse_id].params() == params


# ---------------------------------------------------------------------------------------------
# Errors: (toml text, key path, problem). The problem is matched as a prefix of ConfigError.problem
# and the whole message must read "file: key.path: problem".

LEV = "[bosses.leviathan]\n"
NEW_CURSE = '[curses.x]\nname = "X"\n'

ERRORS: list[tuple[str, str, str, str]] = [
    # unknown stat names
    (
        "dominant_stats",
        LEV + 'dominant_stats = ["power", "luck"]',
        "bosses.leviathan.dominant_stats",
        "unknown name(s) ['luck']",
    ),
    (
        "stat_drain_stat",
        '[curses.brittle_mind.params]\nstat = "luck"',
        "curses.brittle_mind.params.stat",
        "unknown stat 'luck'",
    ),
    # unknown tags
    (
        "weaknesses",
        LEV + 'weaknesses = ["plasma"]',
        "bosses.leviathan.weaknesses",
        "unknown name(s) ['plasma']",
    ),
    (
        "resistances",
        LEV + 'resistances = ["water", "plasma"]',
        "bosses.leviathan.resistances",
        "unknown name(s) ['plasma']",
    ),
    (
        "weakness_pool",
        LEV + 'weakness_pool = ["plasma"]',
        "bosses.leviathan.weakness_pool",
        "unknown name(s) ['plasma']",
    ),
    (
        "suppression_tag",
        '[curses.tidal_ward.params]\ntag = "plasma"',
        "curses.tidal_ward.params.tag",
        "unknown tag 'plasma'",
    ),
    # unknown curse names / kinds
    (
        "curse_pool",
        LEV + 'curse_pool = ["veil", "nope"]',
        "bosses.leviathan.curse_pool",
        "unknown name(s) ['nope']",
    ),
    (
        "curse_kind",
        NEW_CURSE + 'kind = "explode"\nparams = {}',
        "curses.x.kind",
        "unknown curse kind 'explode'",
    ),
    # thresholds not strictly ascending
    (
        "thresholds_equal",
        LEV + "analysis_thresholds = [10, 10]",
        "bosses.leviathan.analysis_thresholds",
        "thresholds must be strictly ascending (10 then 10)",
    ),
    (
        "thresholds_down",
        LEV + "analysis_thresholds = [20, 30, 10]",
        "bosses.leviathan.analysis_thresholds",
        "thresholds must be strictly ascending (30 then 10)",
    ),
    (
        "milestones_down",
        "[[milestones.damage]]\nthreshold = 100\nreward = { a = 1 }\n"
        "[[milestones.damage]]\nthreshold = 50\nreward = { a = 1 }",
        "milestones.damage",
        "thresholds must be strictly ascending (100 then 50)",
    ),
    (
        "milestones_equal",
        "[[milestones.analysis]]\nthreshold = 5\nreward = { a = 1 }\n"
        "[[milestones.analysis]]\nthreshold = 5\nreward = { a = 1 }",
        "milestones.analysis",
        "thresholds must be strictly ascending (5 then 5)",
    ),
    # factors: more than two decimals, out of range
    (
        "curse_three_decimals",
        "[curses.veil.params]\nfactor = 0.125",
        "curses.veil.params.factor",
        "0.125 has more than two decimal places",
    ),
    (
        "bonus_three_decimals",
        "[scoring]\nweakness_bonus = 0.125",
        "scoring.weakness_bonus",
        "0.125 has more than two decimal places",
    ),
    (
        "curse_factor_zero",
        "[curses.veil.params]\nfactor = 0",
        "curses.veil.params.factor",
        "0 is out of range (0.0, 10.0]",
    ),
    (
        "curse_factor_negative",
        "[curses.dread_aura.params]\nfactor = -0.5",
        "curses.dread_aura.params.factor",
        "-0.5 is out of range (0.0, 10.0]",
    ),
    (
        "curse_factor_above_10",
        "[curses.iron_hide.params]\nfactor = 10.01",
        "curses.iron_hide.params.factor",
        "10.01 is out of range (0.0, 10.0]",
    ),
    (
        "bonus_negative",
        "[scoring]\nweakness_bonus = -0.25",
        "scoring.weakness_bonus",
        "-0.25 is out of range [0.0, 10.0]",
    ),
    (
        "penalty_above_10",
        "[scoring]\nresistance_penalty = 11",
        "scoring.resistance_penalty",
        "11 is out of range [0.0, 10.0]",
    ),
    (
        "multiplier_min_zero",
        "[scoring]\nmultiplier_min = 0",
        "scoring.multiplier_min",
        "0 is out of range (0.0, 100.0]",
    ),
    (
        "multiplier_min_above_max",
        "[scoring]\nmultiplier_min = 2\nmultiplier_max = 1.5",
        "scoring.multiplier_min",
        "must not exceed multiplier_max",
    ),
    (
        "factor_inf",
        "[curses.veil.params]\nfactor = inf",
        "curses.veil.params.factor",
        "must be a finite number",
    ),
    (
        "factor_nan",
        "[curses.veil.params]\nfactor = nan",
        "curses.veil.params.factor",
        "must be a finite number",
    ),
    (
        "factor_bool",
        "[curses.veil.params]\nfactor = true",
        "curses.veil.params.factor",
        "must be a number, not bool",
    ),
    (
        "factor_string",
        '[scoring]\nmultiplier_max = "3"',
        "scoring.multiplier_max",
        "must be a number, not str",
    ),
    # negative / malformed reward amounts
    (
        "strike_reward_negative",
        "[strike_rewards]\nfight = { raid_tokens = -1 }",
        "strike_rewards.fight.raid_tokens",
        "negative amount -1",
    ),
    (
        "milestone_reward_negative",
        "[[milestones.damage]]\nthreshold = 1\nreward = { gems = -5 }",
        "milestones.damage[0].reward.gems",
        "negative amount -5",
    ),
    (
        "victory_negative",
        LEV + "victory_cache = { gems = -1 }",
        "bosses.leviathan.victory_cache.gems",
        "negative amount -1",
    ),
    (
        "pool_reward_negative",
        LEV + "analysis_thresholds = [1]\nanalysis_reward_pool = [{ gems = -2 }]",
        "bosses.leviathan.analysis_reward_pool[0].gems",
        "negative amount -2",
    ),
    (
        "reward_float",
        "[strike_rewards]\nanalyze = { intel = 1.5 }",
        "strike_rewards.analyze.intel",
        "must be an integer amount, not float",
    ),
    (
        "reward_not_table",
        "[strike_rewards]\nfight = 3",
        "strike_rewards.fight",
        "must be a table of currency = amount, not int",
    ),
    # analysis_reward_pool length / shape
    (
        "pool_too_short",
        LEV + "analysis_reward_pool = [{ gems = 1 }]",
        "bosses.leviathan.analysis_reward_pool",
        "has 1 rewards for 5 analysis_thresholds",
    ),
    (
        "pool_not_tables",
        LEV + "analysis_reward_pool = [1, 2, 3, 4, 5]",
        "bosses.leviathan.analysis_reward_pool",
        "must be a list of reward tables",
    ),
    (
        "thresholds_not_positive",
        LEV + "analysis_thresholds = [1, -2]",
        "bosses.leviathan.analysis_thresholds",
        "must be a list of integers from 1 to 9007199254740991",
    ),
    (
        "thresholds_bool",
        LEV + "analysis_thresholds = [true]",
        "bosses.leviathan.analysis_thresholds",
        "must be a list of integers from 1 to 9007199254740991",
    ),
    # a boss whose pools reference nothing
    (
        "boss_empty_pools",
        LEV
        + "weakness_pool = []\ncurse_pool = []\n"
        + "analysis_thresholds = []\nanalysis_reward_pool = []",
        "bosses.leviathan.weakness_pool",
        "the boss has no weakness pool, curse pool or thresholds",
    ),
    # unknown keys
    ("unknown_top", "[bogus]\na = 1", "bogus", f"unknown key (expected one of: {TOP_KEYS})"),
    (
        "unknown_server",
        "[server]\nhots = 1",
        "server.hots",
        "unknown key (expected one of: host, port,",
    ),
    ("unknown_persistence", "[persistence]\nwal = 1", "persistence.wal", "unknown key"),
    ("unknown_actors", "[actors]\nthreads = 1", "actors.threads", "unknown key"),
    ("unknown_stats", "[stats]\nextra = []", "stats.extra", "unknown key (expected one of: names)"),
    (
        "unknown_tags",
        "[tags]\nkinds = []",
        "tags.kinds",
        "unknown key (expected one of: elements, roles)",
    ),
    ("unknown_scoring", "[scoring]\nbonus = 1", "scoring.bonus", "unknown key"),
    (
        "unknown_player",
        "[player]\nteam = 1",
        "player.team",
        "unknown key (expected one of: max_team_size, strike_cooldown_s, character_rest)",
    ),
    (
        "unknown_strike_rewards",
        "[strike_rewards]\ndefend = { a = 1 }",
        "strike_rewards.defend",
        "unknown key (expected one of: fight, analyze)",
    ),
    (
        "unknown_milestones",
        "[[milestones.victory]]\nthreshold = 1\nreward = {}",
        "milestones.victory",
        "unknown key (expected one of: damage, analysis)",
    ),
    (
        "unknown_milestone_entry",
        "[[milestones.damage]]\nthreshold = 1\nreward = {}\nbonus = 1",
        "milestones.damage[0].bonus",
        "unknown key (expected one of: threshold, reward)",
    ),
    (
        "unknown_curse_key",
        "[curses.veil]\ncolour = 1",
        "curses.veil.colour",
        "unknown key (expected one of: name, kind, params)",
    ),
    (
        "unknown_curse_param",
        '[curses.veil.params]\nstat = "power"',
        "curses.veil.params.stat",
        "unknown key (expected one of: factor)",
    ),
    (
        "unknown_boss_key",
        LEV + "armour = 1",
        "bosses.leviathan.armour",
        "unknown key (expected one of: name, total_hp,",
    ),
    # wrong types and ranges
    ("port_string", '[server]\nport = "80"', "server.port", "must be an integer, not str"),
    ("port_bool", "[server]\nport = true", "server.port", "must be an integer, not bool"),
    ("port_too_big", "[server]\nport = 70000", "server.port", "70000 is above the maximum 65535"),
    ("host_empty", '[server]\nhost = ""', "server.host", "must be a non-empty string, not str"),
    (
        "page_cache_zero",
        "[persistence]\npage_cache_mib = 0",
        "persistence.page_cache_mib",
        "0 is below the minimum 1",
    ),
    (
        "send_buffer_tiny",
        "[server]\nsocket_send_buffer = 100",
        "server.socket_send_buffer",
        "must be 0 (the system's) or at least 4096, not 100",
    ),
    (
        "address_rate_negative",
        "[server]\nconnections_per_address_per_s = -1",
        "server.connections_per_address_per_s",
        "-1 is below the minimum 0",
    ),
    (
        "compression_int",
        "[server]\ncompression = 1",
        "server.compression",
        "must be true or false, not int",
    ),
    (
        "rate_string",
        '[server]\nmessages_per_s = "fast"',
        "server.messages_per_s",
        "must be a number, not str",
    ),
    (
        "rate_zero",
        "[server]\nmessages_per_s = 0",
        "server.messages_per_s",
        "0 is below the minimum 0.001",
    ),
    (
        "synchronous_off",
        '[persistence]\nsynchronous = "off"',
        "persistence.synchronous",
        "must be FULL or NORMAL, not 'OFF'",
    ),
    (
        "team_size_zero",
        "[player]\nmax_team_size = 0",
        "player.max_team_size",
        "0 is below the minimum 1",
    ),
    (
        "rest_word",
        '[player]\ncharacter_rest = "forever"',
        "player.character_rest",
        "must be \"event\" or a number of seconds, not 'forever'",
    ),
    (
        "rest_bool",
        "[player]\ncharacter_rest = true",
        "player.character_rest",
        'must be "event" or a number of seconds, not True',
    ),
    (
        "retaliation_zero",
        "[raid]\nretaliation_every = 0",
        "raid.retaliation_every",
        "0 is below the minimum 1",
    ),
    (
        "boss_override_bad",
        LEV + "retaliation_every = 0",
        "bosses.leviathan.retaliation_every",
        "0 is below the minimum 1",
    ),
    (
        "stats_not_list",
        '[stats]\nnames = "power"',
        "stats.names",
        "must be a list of non-empty strings",
    ),
    ("stats_empty", "[stats]\nnames = []", "stats.names", "must not be empty"),
    (
        "stats_duplicate",
        '[stats]\nnames = ["power", "power", "agility", "intellect", "spirit", "endurance"]',
        "stats.names",
        "has duplicate entries",
    ),
    (
        "tags_overlap",
        '[tags]\nroles = ["fire", "vanguard", "striker", "mystic", "support", "ranger"]',
        "tags.roles",
        "['fire'] are both elements and roles",
    ),
    ("bosses_not_table", "bosses = 3", "bosses", "must be a table, not int"),
    (
        "dominant_empty",
        LEV + "dominant_stats = []",
        "bosses.leviathan.dominant_stats",
        "must not be empty",
    ),
    (
        "total_hp_zero",
        LEV + "total_hp = 0",
        "bosses.leviathan.total_hp",
        "0 is below the minimum 1",
    ),
    (
        "milestones_not_array",
        "[milestones]\ndamage = 3",
        "milestones.damage",
        "must be an array of tables",
    ),
    (
        "milestone_not_table",
        "[milestones]\ndamage = [3]",
        "milestones.damage[0]",
        "must be a table with threshold and reward",
    ),
    (
        "fortify_action",
        '[curses.iron_hide.params]\naction = "defend"',
        "curses.iron_hide.params.action",
        "must be fight or analyze, not 'defend'",
    ),
    (
        "team_cap_zero",
        "[curses.narrow_pass.params]\nmax = 0",
        "curses.narrow_pass.params.max",
        "0 is below the minimum 1",
    ),
    (
        "curse_param_missing",
        NEW_CURSE + 'kind = "stat_drain"\nparams = { stat = "power" }',
        "curses.x.params.factor",
        "missing",
    ),
    (
        "curse_name_missing",
        '[curses.x]\nkind = "dampen_weakness"\nparams = { factor = 0.5 }',
        "curses.x.name",
        "missing",
    ),
    (
        "new_boss_incomplete",
        '[bosses.new]\nname = "New"',
        "bosses.new.analysis_thresholds",
        "missing",
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "problem"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_validation_error(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path, error = load_error(tmp_path, text + "\n")
    assert error.file == str(path)
    assert error.key == key
    assert error.problem.startswith(problem), error.problem
    assert str(error) == f"{path}: {key}: {error.problem}"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: (file): no such file"


@pytest.mark.parametrize("kind", ["directory", "not_utf8"])
def test_unreadable_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "config.toml"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"[server]\nhost = '\xff\xfe'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "(file)"
    assert info.value.problem.startswith("cannot read: ")


def test_toml_syntax_error(tmp_path: Path) -> None:
    path, error = load_error(tmp_path, "[server\nport = 1\n")
    assert error.key == "(syntax)"
    assert str(error).startswith(f"{path}: (syntax): ")
    assert "line 1" in error.problem


def test_parse_config_names_its_source() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({}, "memory")
    assert str(info.value) == "memory: stats: missing"


# ---------------------------------------------------------------------------------------------
# Bugs found in raid/config.py (these tests fail until the lead fixes them; see the report).


def test_unknown_key_in_raid_table_is_rejected(tmp_path: Path) -> None:
    """BUG: _raid_config never calls node.only(*_RAID_KEYS): [raid] typos load silently."""
    _, error = load_error(tmp_path, "[raid]\nretaliaton_every = 5\n")
    assert error.key == "raid.retaliaton_every"
    assert error.problem.startswith("unknown key")


@pytest.mark.parametrize(
    "text",
    [
        "[scoring]\nweakness_bonus = 1e30",
        "[scoring]\nmultiplier_max = 100000000000000000000000000000",
        "[player]\ncharacter_rest = 1e40",
        "[curses.veil.params]\nfactor = 1e300",
    ],
)
def test_huge_factor_is_a_config_error(tmp_path: Path, text: str) -> None:
    """BUG: _Node.factor's Decimal.quantize raises decimal.InvalidOperation for huge values."""
    _, error = load_error(tmp_path, text + "\n")
    assert "out of range" in error.problem


def test_self_contained_config_with_own_stats_loads(tmp_path: Path) -> None:
    """BUG: the shipped curses and boss are merged into every config and fail to validate
    against a config's own [stats]/[tags] ("curses.brittle_mind.params.stat: unknown stat")."""
    text = """
[stats]
names = ["str", "dex"]
[tags]
elements = ["hot", "cold"]
roles = ["tank", "dps"]
[curses.weak]
name = "Weak"
kind = "stat_drain"
params = { stat = "str", factor = 0.5 }
[bosses.ogre]
name = "Ogre"
total_hp = 100
duration_s = 100
dominant_stats = ["str"]
weaknesses = []
resistances = ["cold"]
weakness_pool = ["hot"]
curse_pool = ["weak"]
analysis_thresholds = [10]
analysis_reward_pool = [{ gems = 1 }]
victory_cache = { gems = 5 }
"""
    config = load_config(write(tmp_path, text))
    assert config.rules.stats == ("str", "dex")
    assert config.bosses["ogre"].dominant_stats == ("str",)


@pytest.mark.parametrize(
    ("which", "text", "expected"),
    [
        ("fight", "[strike_rewards]\nfight = { gold = 1 }", {"gold": 1}),
        ("victory", "[bosses.leviathan]\nvictory_cache = { gems = 5 }", {"gems": 5}),
    ],
)
def test_reward_bundle_replaces_the_default_bundle(
    tmp_path: Path, which: str, text: str, expected: dict[str, int]
) -> None:
    """BUG: _merge merges a reward bundle key by key with the shipped one, so a config cannot
    drop a default currency (fight = { gold = 1 } grants {raid_tokens: 10, gold: 1})."""
    config = load_config(write(tmp_path, text + "\n"))
    if which == "fight":
        bundle = dict(config.rules.strike_rewards[Action.FIGHT])
    else:
        bundle = dict(config.bosses["leviathan"].victory_cache)
    assert bundle == expected
