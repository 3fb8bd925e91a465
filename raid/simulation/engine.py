"""A raid played on a simulated clock by synthetic players, with the server's own rules.

Players (``population.PlayerFactory``) strike when their cooldown and rested characters allow,
during sessions drawn from their play pattern; one heap orders every player's next attempt by
time (ties by player index), so a run is a pure function of its inputs and seed.

Two resolvers give identical results:

- ``exact_rules=True`` resolves every strike with ``raid.strike.decide_strike`` and
  ``apply_strike`` exactly as the server's RaidActor does (a refusal would be a bug and raises
  ``SimulationError``);
- the default lean path computes the same integers without building commands, results or
  player records: per-character contributions are computed once per set of curses that
  changes them (``_Scoring``), a strike adds a few integers, and breakthroughs and
  retaliations are drawn by the rules' own ``_draw_breakthroughs`` / ``_draw_retaliation``
  from the same ``random.Random``, so the draws match too. ``tests/simulation`` proves
  equivalence on random scenarios, and replays every strike through the server's validation.

Play-pattern draws (session times, reaction delays, random teams) come from a per-player
stream (``_uniform``), so a player's behaviour does not depend on the others:
``--compare`` runs two configurations with the same players doing the same things until the
rules make them differ.
"""

from __future__ import annotations

import bisect
import heapq
import math
import operator
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType

from raid.codec import new_boss_state
from raid.config import Action, BossTemplate, Rules
from raid.errors import Rejection
from raid.models import BossRaidState, Character, RaidState, RaidStatus, Roster
from raid.scoring import ScoringContext
from raid.simulation.population import (
    PlayerFactory,
    Population,
    SyntheticPlayer,
    TeamChoice,
    player_seed,
)
from raid.strike import (
    HP_MILESTONES,
    Breakthrough,
    Retaliation,
    StrikeCommand,
    StrikeResult,
    _draw_breakthroughs,
    _draw_retaliation,
    apply_strike,
    decide_strike,
)

RAID_ID = "simulated"
HOUR = 3600.0
DAY = 86400.0
MAX_PLAYERS = 100_000
"""A run keeps every player in memory: about 16 KiB each (1.6 GB at the cap)."""
MAX_HOURS = 24 * 366
TIMELINE = 10_000
"""Retaliations kept one by one for the report (the counts cover all of them)."""
SAMPLES = 240
"""Points of the hp/analysis/strikes time series (plus the start)."""

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_GREEDY, _RANDOM, _FIXED = 0, 1, 2
_POLICY = {TeamChoice.GREEDY: _GREEDY, TeamChoice.RANDOM: _RANDOM, TeamChoice.FIXED: _FIXED}


class SimulationInputError(ValueError):
    """The run cannot start: unknown boss, no players, a non-positive duration."""


class SimulationError(RuntimeError):
    """The simulator made a strike the rules refuse: a bug in the simulator."""


@dataclass(frozen=True, slots=True)
class SimulationSettings:
    boss_id: str
    players: int
    hours: float
    seed: int = 1
    exact_rules: bool = False
    """Resolve every strike with decide_strike/apply_strike (about 4x slower, same results)."""


@dataclass(frozen=True, slots=True)
class TracedStrike:
    """One strike the simulator made, as a client would have sent it (tests replay these)."""

    at: float
    user_id: str
    action: Action
    team: tuple[str, ...]
    strike_id: str


@dataclass(frozen=True, slots=True)
class Sample:
    """The raid at one instant of the simulated clock."""

    at: float
    hp: int
    analysis: int
    fights: int
    analyzes: int
    curses: int
    curses_applied: int
    """Retaliations so far."""


@dataclass(slots=True)
class SimulationResult:
    """Everything a run measured; ``raid.simulation.report`` turns it into figures."""

    settings: SimulationSettings
    population: Population
    boss: BossRaidState
    end_time: float
    """When the run stopped: the kill, the raid's end or the asked hours, whichever came first."""
    user_ids: list[str]
    damage: list[int]
    analysis: list[int]
    strikes: list[int]
    analyze_counts: list[int]
    """Analyze strikes per player (the rest of ``strikes`` are fights)."""
    fights: int
    analyzes: int
    samples: list[Sample]
    breakthroughs: list[tuple[float, int, Breakthrough]]
    """(time, strike seq, breakthrough)."""
    retaliations: list[tuple[float, int, Retaliation]]
    """The first ``TIMELINE`` retaliations (time, strike seq, retaliation)."""
    curses_applied: dict[str, int]
    """Every retaliation, counted by curse."""
    curses_replaced: int
    hp_milestones: list[tuple[float, int]]
    """(time, pct) of each hp percentage crossed."""
    killed_at: float | None


_LCG_MUL = 6364136223846793005
_LCG_ADD = 1442695040888963407
_UNIT = 1.0 / 9007199254740992.0


def _scramble(seed: int) -> int:
    """splitmix64's finaliser: spreads a player's seed before its LCG stream starts."""
    z = (seed + _GAMMA) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _uniform(stream: list[int], p: int) -> float:
    """The next number in [0, 1) of player p's stream (a 64-bit LCG, top 53 bits).

    The hot loop inlines the same two lines.
    """
    z = stream[p] = (stream[p] * _LCG_MUL + _LCG_ADD) & _MASK64
    return (z >> 11) * _UNIT


@dataclass(slots=True)
class _Scoring:
    """What the lean path needs from one ``ScoringContext`` (one set of curses and tags)."""

    context: ScoringContext
    key: int
    """Which contribution table applies (curses that change contributions)."""
    contributions: list[int]
    """contribution_num of every character is ``scale * contributions[c]``."""
    scale: int
    flags: list[int]
    """By tag mask: 256 if the tags meet a weakness, plus 1 if they meet a resistance."""
    base_den: int
    multipliers: dict[int, tuple[int, int]] = field(default_factory=dict)
    """By 256 * weak members + resisted members: the multiplier as (numerator, denominator)."""
    fight: tuple[int, int] = (1, 1)
    """(numerator, denominator * divisor) of fight outcomes."""
    analyze: tuple[int, int] = (1, 1)

    def multiplier(self, counts: int) -> tuple[int, int]:
        found = self.multipliers.get(counts)
        if found is None:
            value = self.context.multiplier(counts >> 8, counts & 255)
            found = self.multipliers[counts] = (value.numerator, value.denominator)
        return found


class RaidSimulation:
    """One simulated raid; advance it with ``run_until`` and read ``result()``."""

    def __init__(
        self,
        rules: Rules,
        bosses: Mapping[str, BossTemplate],
        population: Population,
        settings: SimulationSettings,
        trace: list[TracedStrike] | None = None,
        players: list[SyntheticPlayer] | None = None,
    ) -> None:
        """``players``: drawn already (``simulate`` draws them with progress); else drawn here."""
        template = bosses.get(settings.boss_id)
        if template is None:
            known = ", ".join(sorted(bosses)) or "none"
            raise SimulationInputError(f"unknown boss {settings.boss_id!r} (known: {known})")
        if not 1 <= settings.players <= MAX_PLAYERS:
            raise SimulationInputError(f"--players must be 1 to {MAX_PLAYERS:,}")
        if not 0 < settings.hours <= MAX_HOURS:
            raise SimulationInputError(f"--hours must be above 0 and at most {MAX_HOURS}")
        self.rules = rules  # the rules every strike is resolved with
        self.settings = settings  # what was asked
        self.population = population  # who plays
        self._trace = trace  # every strike made, when a test asks for it
        self.state = RaidState(new_boss_state(template, RAID_ID, 0.0, template.duration_s, 0.0))
        self.end_time = min(settings.hours * HOUR, template.duration_s)
        """The clock stops here (or at the kill)."""
        self.clock = 0.0  # simulated seconds since the raid started
        self._rng = random.Random(settings.seed)  # the raid's random source (draws)
        if players is None:
            factory = PlayerFactory(population, rules, settings.seed)
            players = [factory.player(i) for i in range(settings.players)]
        self._players = players
        self._rosters: list[Roster | None] = [None] * settings.players  # exact mode only
        self._setup_characters(template)
        self._setup_players()
        self._scorings: dict[tuple[object, ...], _Scoring] = {}  # by curses and tags
        self._tables: dict[tuple[object, ...], list[int]] = {}  # contributions, by _table_key
        self._flag_tables: dict[tuple[int, int], list[int]] = {}  # by weak and resisted masks
        self._multipliers: dict[tuple[object, ...], dict[int, tuple[int, int]]] = {}
        self._scoring = self._scoring_now()
        thresholds = self.state.boss.analysis_thresholds
        self._thresholds = thresholds
        # results
        n = settings.players
        self._damage = [0] * n
        self._analysis = [0] * n
        self._strikes = [0] * n
        self._analyze_counts = [0] * n
        self._fights = self._analyzes = 0
        self._samples: list[Sample] = []
        self._sample_step = self.end_time / SAMPLES
        self._next_sample = 0  # index of the next sample to record
        self._breakthroughs: list[tuple[float, int, Breakthrough]] = []
        self._retaliations: list[tuple[float, int, Retaliation]] = []  # the first TIMELINE
        self._curses_applied: dict[str, int] = {}  # curse id -> times applied
        self._curses_replaced = 0
        self._hp_milestones: list[tuple[float, int]] = []
        self._killed_at: float | None = None

    # --- setup --------------------------------------------------------------------------

    def _setup_characters(self, template: BossTemplate) -> None:
        rules = self.rules
        positions = [rules.stats.index(s) for s in template.dominant_stats]
        getter = operator.itemgetter(*positions)
        bits = {tag: 1 << i for i, tag in enumerate(sorted(rules.tags))}
        self._tag_bits = bits  # tag -> bit of the masks below
        dominant: list[tuple[int, ...]] = []  # per character: its dominant stat values
        masks: list[int] = []  # per character: its tags as bits
        self._owned: list[list[int]] = []  # per player: character indices, roster order
        self._first: list[int] = []  # per player: index of its first character
        single = len(positions) == 1
        for player in self._players:
            first = len(masks)
            for character in player.roster:
                values = getter(character.stats)
                dominant.append((values,) if single else values)
                element, role = character.tags
                masks.append(bits[element] | bits[role])
            self._first.append(first)
            self._owned.append(list(range(first, len(masks))))
        self._dominant = dominant
        self._masks = masks

    def _character_id(self, c: int) -> str:
        p = bisect.bisect(self._first, c) - 1
        return self._players[p].roster[c - self._first[p]].character_id

    def _setup_players(self) -> None:
        play = self.population.play
        rest = self.rules.player.character_rest_s
        self._rest = None if rest is None else float(rest)
        n = len(self._players)
        self._avail = [list(owned) for owned in self._owned]  # rested characters, per player
        self._resting: list[deque[tuple[float, list[int]]]] | None = (
            None if rest is None else [deque() for _ in range(n)]
        )  # (rested at, characters) per player, oldest first; None when rest is "event"
        self._sorted_by = [-1] * n  # contribution table the player's avail is sorted by
        self._policy = [_POLICY[p.team_choice] for p in self._players]
        self._stream = [_scramble(player_seed(self.settings.seed, i)) for i in range(n)]
        self._analyst = [p.analyst for p in self._players]
        self._sessions: list[list[tuple[float, float]]] = [[] for _ in range(n)]
        self._session_end = [-1.0] * n  # end of the player's current session
        self._day = [
            int((p.utc_offset_h * HOUR) // DAY) for p in self._players
        ]  # next local day to plan
        self._play = play
        self._heap: list[tuple[float, int]] = [(self._in_session(p, 0.0), p) for p in range(n)]
        heapq.heapify(self._heap)

    def _in_session(self, p: int, earliest: float) -> float:
        """The first moment from ``earliest`` on at which player ``p`` is playing."""
        end = self._session_end
        while earliest >= end[p]:
            start, stop = self._next_session(p)
            end[p] = stop
            earliest = max(earliest, start)
        return earliest

    def _next_session(self, p: int) -> tuple[float, float]:
        """The player's next session (start, end) in simulated seconds, drawn day by day."""
        pending = self._sessions[p]
        draw = _uniform
        state = self._stream
        play = self._play
        while not pending:
            day = self._day[p]
            self._day[p] = day + 1
            midnight = day * DAY - self._players[p].utc_offset_h * HOUR
            lo, hi = play.sessions_per_day
            count = lo + int(draw(state, p) * (hi - lo + 1))
            first, last = play.active_hours
            m_lo, m_hi = play.session_minutes
            for _ in range(count):
                start = midnight + (first + draw(state, p) * (last - first)) * HOUR
                length = (m_lo + draw(state, p) * (m_hi - m_lo)) * 60.0
                pending.append((start, start + length))
            pending.sort(reverse=True)  # pop() takes the earliest
        return pending.pop()

    # --- scoring --------------------------------------------------------------------------

    def _scoring_now(self) -> _Scoring:
        boss = self.state.boss
        signature = (
            frozenset(boss.active_curses),
            frozenset(boss.weaknesses),
            frozenset(boss.resistances),
        )
        found = self._scorings.get(signature)
        if found is not None:
            return found
        context = ScoringContext.build(self.rules, boss)
        scale, key = _table_key(context)
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = self._contributions(key)
        multipliers = (
            context.bonus,
            context.penalty,
            context.multiplier_min,
            context.multiplier_max,
        )
        bits = self._tag_bits
        fight, analyze = context.fortify[Action.FIGHT], context.fortify[Action.ANALYZE]
        found = _Scoring(
            context=context,
            key=list(self._tables).index(key),
            contributions=table,
            scale=scale,
            flags=self._flags(
                sum(bits[t] for t in context.weaknesses),
                sum(bits[t] for t in context.resistances),
            ),
            base_den=context.stat_den * context.tag_den,
            multipliers=self._multipliers.setdefault(multipliers, {}),
            fight=_outcome(fight, context.divisors[Action.FIGHT]),
            analyze=_outcome(analyze, context.divisors[Action.ANALYZE]),
        )
        self._scorings[signature] = found
        return found

    def _flags(self, weak_mask: int, resisted_mask: int) -> list[int]:
        """``_Scoring.flags`` for these weaknesses and resistances (as tag masks)."""
        found = self._flag_tables.get((weak_mask, resisted_mask))
        if found is None:
            found = self._flag_tables[(weak_mask, resisted_mask)] = [
                (256 if mask & weak_mask else 0) + (1 if mask & resisted_mask else 0)
                for mask in range(1 << len(self._tag_bits))
            ]
        return found

    def _contributions(self, key: tuple[object, ...]) -> list[int]:
        """Every character's contribution under ``key`` (see ``_table_key``), in bulk."""
        nums, suppressions = key
        assert isinstance(nums, tuple) and isinstance(suppressions, tuple)
        if len(nums) == 1:
            (n0,) = nums
            table = [v[0] * n0 for v in self._dominant]
        elif len(nums) == 2:
            n0, n1 = nums
            table = [a * n0 + b * n1 for a, b in self._dominant]
        else:
            table = [sum(map(operator.mul, vals, nums)) for vals in self._dominant]
        for tag, with_tag, without in suppressions:
            bit = self._tag_bits[tag]
            table = [
                x * with_tag if m & bit else x * without
                for x, m in zip(table, self._masks, strict=True)
            ]
        return table

    # --- the clock ------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._killed_at is not None or self.clock >= self.end_time or not self._heap

    def run_until(self, until: float) -> None:
        """Play every strike before ``until`` (simulated seconds; capped at the end time)."""
        until = min(until, self.end_time)
        if self._killed_at is None:
            self._play_until(until)
        self.clock = max(self.clock, until)
        if self.done:
            self._finish_samples()

    def _record_samples(self, t: float) -> None:
        boss = self.state.boss
        step = self._sample_step
        while self._next_sample <= SAMPLES and self._next_sample * step <= t:
            self._samples.append(
                Sample(
                    self._next_sample * step,
                    boss.current_hp,
                    boss.analysis_points,
                    self._fights,
                    self._analyzes,
                    len(boss.active_curses),
                    sum(self._curses_applied.values()),
                )
            )
            self._next_sample += 1

    def _finish_samples(self) -> None:
        self._record_samples(self.end_time)

    def _play_until(self, until: float) -> None:
        """The hot loop: one iteration per player attempt, kept in one piece for speed."""
        heap = self._heap
        heappop, heappush = heapq.heappop, heapq.heappush
        stream = self._stream
        avail_of, resting_of = self._avail, self._resting
        session_end, in_session = self._session_end, self._in_session
        policy_of, sorted_by, analyst_of = self._policy, self._sorted_by, self._analyst
        damage_of, analysis_of, strikes_of = self._damage, self._analysis, self._strikes
        analyze_counts = self._analyze_counts
        masks = self._masks
        rest = self._rest
        thresholds = self._thresholds
        state = self.state
        boss = state.boss
        rng = self._rng
        every = boss.settings.retaliation_every
        curses_on = boss.curse_limit > 0
        exact = self.settings.exact_rules
        trace = self._trace
        total_hp = boss.total_hp
        marks = [m for m in HP_MILESTONES if boss.current_hp * 100 > m * total_hp]
        react_lo, react_hi = self._play.reaction_s
        react_span = (react_hi - react_lo) * _UNIT
        sample_at = self._next_sample * self._sample_step
        mul, add, mask64 = _LCG_MUL, _LCG_ADD, _MASK64

        hp, analysis, seq = boss.current_hp, boss.analysis_points, boss.strike_count
        bt_index = boss.analysis_breakthroughs
        next_threshold = thresholds[bt_index] if bt_index < len(thresholds) else None
        sc = self._scoring
        table, flags, multipliers, scale = sc.contributions, sc.flags, sc.multipliers, sc.scale
        fight_num, fight_den = sc.fight
        ana_num, ana_den = sc.analyze
        base_den, cap, cooldown = sc.base_den, sc.context.max_team_size, sc.context.cooldown_float
        key = sc.key
        fights = self._fights
        analyzes = self._analyzes
        FIGHT, ANALYZE = Action.FIGHT, Action.ANALYZE
        table_at = table.__getitem__

        while heap and heap[0][0] < until:
            t, p = heappop(heap)
            if t >= sample_at:
                boss.current_hp, boss.analysis_points = hp, analysis
                self._fights, self._analyzes = fights, analyzes
                self._record_samples(t)
                sample_at = self._next_sample * self._sample_step
            avail = avail_of[p]
            policy = policy_of[p]
            if resting_of is not None:
                resting = resting_of[p]
                while resting and resting[0][0] <= t:
                    avail.extend(resting.popleft()[1])
                    sorted_by[p] = -1
                    if policy == _FIXED:
                        avail.sort()
                if not avail:
                    heappush(heap, (in_session(p, resting[0][0]), p))
                    continue
            k = cap if cap < len(avail) else len(avail)
            if policy == _GREEDY:
                if sorted_by[p] != key:
                    avail.sort(key=table_at, reverse=True)
                    sorted_by[p] = key
            elif policy == _RANDOM:
                size = len(avail)
                z = stream[p]
                for i in range(k):
                    z = (z * mul + add) & mask64
                    j = i + int((z >> 11) * _UNIT * (size - i))
                    avail[i], avail[j] = avail[j], avail[i]
                stream[p] = z
            team = avail[:k]
            del avail[:k]
            action = ANALYZE if next_threshold is not None and analyst_of[p] else FIGHT

            if exact:
                result = self._exact_strike(p, t, action, team, sc.context)
                damage, points = result.damage, result.analysis_points
                hp, analysis, seq = result.boss_hp, result.analysis_total, result.seq
                breakthroughs, retaliations = result.breakthroughs, result.retaliations
                cooldown_until = result.cooldown_until
            else:
                base = counts = 0
                for c in team:
                    base += table[c]
                    counts += flags[masks[c]]
                m_num, m_den = multipliers.get(counts) or sc.multiplier(counts)
                score = base * scale * m_num // (base_den * m_den)
                seq += 1
                damage = points = 0
                if action is FIGHT:
                    damage = score * fight_num // fight_den
                    if damage > hp:  # noqa: PLR1730 - cheaper than calling min() here
                        damage = hp
                    hp -= damage
                else:
                    points = score * ana_num // ana_den
                    analysis += points
                cooldown_until = t + cooldown
                breakthroughs = retaliations = ()
                if next_threshold is not None and analysis >= next_threshold:
                    breakthroughs = _draw_breakthroughs(state, analysis, rng)
                if curses_on and seq % every == 0:
                    retaliations = _draw_retaliation(state, seq, rng)
                if breakthroughs or retaliations:
                    _apply_draws(boss, breakthroughs, retaliations)
            if trace is not None:
                self._trace_strike(p, t, action, team)

            strikes_of[p] += 1
            if action is FIGHT:
                fights += 1
                if damage:
                    damage_of[p] += damage
                    while marks and hp * 100 <= marks[0] * total_hp:
                        self._hp_milestones.append((t, marks.pop(0)))
            else:
                analyzes += 1
                analysis_of[p] += points
                analyze_counts[p] += 1
            if breakthroughs or retaliations:
                for found in breakthroughs:
                    self._breakthroughs.append((t, seq, found))
                for retaliation in retaliations:
                    if len(self._retaliations) < TIMELINE:
                        self._retaliations.append((t, seq, retaliation))
                    applied = self._curses_applied
                    applied[retaliation.curse] = applied.get(retaliation.curse, 0) + 1
                    self._curses_replaced += retaliation.replaced is not None
                bt_index = boss.analysis_breakthroughs
                next_threshold = thresholds[bt_index] if bt_index < len(thresholds) else None
                sc = self._scoring = self._scoring_now()
                table, flags, multipliers, scale = (
                    sc.contributions,
                    sc.flags,
                    sc.multipliers,
                    sc.scale,
                )
                table_at = table.__getitem__
                fight_num, fight_den = sc.fight
                ana_num, ana_den = sc.analyze
                base_den, cap = sc.base_den, sc.context.max_team_size
                cooldown, key = sc.context.cooldown_float, sc.key
            if hp == 0:
                self._killed_at = t
                if not exact:
                    boss.status = RaidStatus.DEFEATED
                    boss.final_blow_user = self._players[p].user_id
                    boss.ended_at = t
                break

            if resting_of is not None:
                resting_of[p].append((t + rest, team))  # type: ignore[operator]
                if not avail:
                    nxt = resting_of[p][0][0]
                    nxt = nxt if nxt > cooldown_until else cooldown_until
                    heappush(heap, (in_session(p, nxt), p))
                    continue
            elif not avail:
                continue  # every character used for the rest of the raid: the player is done
            z = stream[p] = (stream[p] * mul + add) & mask64
            nxt = cooldown_until + react_lo + (z >> 11) * react_span
            heappush(heap, (nxt if nxt < session_end[p] else in_session(p, nxt), p))

        boss.current_hp, boss.analysis_points, boss.strike_count = hp, analysis, seq
        self._fights, self._analyzes = fights, analyzes

    # --- exact mode and tracing ---------------------------------------------------------

    def roster(self, p: int) -> Roster:
        """Player ``p``'s roster as the server's rules see it."""
        found = self._rosters[p]
        if found is None:
            found = self._rosters[p] = roster_of(self._players[p], self.rules)
        return found

    def _exact_strike(
        self, p: int, t: float, action: Action, team: list[int], context: ScoringContext
    ) -> StrikeResult:
        user_id = self._players[p].user_id
        command = StrikeCommand(
            user_id,
            action,
            tuple(map(self._character_id, team)),
            f"s{self._strikes[p] + 1}",
            self.roster(p),
        )
        try:
            result = decide_strike(self.rules, self.state, context, command, t, self._rng)
        except Rejection as exc:
            raise SimulationError(f"the rules refused a simulated strike: {exc.message}") from exc
        apply_strike(self.state, result)
        return result

    def _trace_strike(self, p: int, t: float, action: Action, team: list[int]) -> None:
        assert self._trace is not None
        user_id = self._players[p].user_id
        self._trace.append(
            TracedStrike(
                t, user_id, action, tuple(map(self._character_id, team)), f"s{self._strikes[p] + 1}"
            )
        )

    # --- results --------------------------------------------------------------------------

    @property
    def players(self) -> list[SyntheticPlayer]:
        return self._players

    def result(self) -> SimulationResult:
        return SimulationResult(
            settings=self.settings,
            population=self.population,
            boss=self.state.boss,
            end_time=self._killed_at if self._killed_at is not None else self.clock,
            user_ids=[p.user_id for p in self._players],
            damage=self._damage,
            analysis=self._analysis,
            strikes=self._strikes,
            analyze_counts=self._analyze_counts,
            fights=self._fights,
            analyzes=self._analyzes,
            samples=self._samples,
            breakthroughs=self._breakthroughs,
            retaliations=self._retaliations,
            curses_applied=dict(sorted(self._curses_applied.items())),
            curses_replaced=self._curses_replaced,
            hp_milestones=self._hp_milestones,
            killed_at=self._killed_at,
        )


def _table_key(context: ScoringContext) -> tuple[int, tuple[object, ...]]:
    """(scale, key): ``contribution_num(m) = scale * table[key][m]``, exactly.

    The key is the context's stat numerators and tag suppressions divided by their common
    factors, so curses that scale every contribution alike (a drain on a stat that is not
    dominant, say) share one table and leave the greedy players' order unchanged.
    """
    nums = context.stat_nums
    scale = math.gcd(*nums)
    suppressions = []
    for tag, num in context.suppressions:
        common = math.gcd(num, 100)
        scale *= common
        suppressions.append((tag, num // common, 100 // common))
    return scale, (tuple(n // math.gcd(*nums) for n in nums), tuple(sorted(suppressions)))


def _outcome(fortify: Fraction, divisor: int) -> tuple[int, int]:
    return fortify.numerator, fortify.denominator * divisor


def _apply_draws(
    boss: BossRaidState,
    breakthroughs: tuple[Breakthrough, ...],
    retaliations: tuple[Retaliation, ...],
) -> None:
    """What ``apply_strike`` does with a result's draws (the lean path's copy of it)."""
    if breakthroughs:
        weaknesses = list(boss.weaknesses)
        resistances = list(boss.resistances)
        for found in breakthroughs:
            if found.weakness is not None:
                weaknesses.append(found.weakness)
                if found.weakness in resistances:
                    resistances.remove(found.weakness)
        boss.weaknesses = tuple(weaknesses)
        boss.resistances = tuple(resistances)
        boss.analysis_breakthroughs = breakthroughs[-1].index
    for retaliation in retaliations:
        active = [c for c in boss.active_curses if c != retaliation.replaced]
        active.append(retaliation.curse)
        boss.active_curses = tuple(active)


def roster_of(player: SyntheticPlayer, rules: Rules) -> Roster:
    """A synthetic player's roster as ``Character`` values, the way the server stores them."""
    return MappingProxyType(
        {
            c.character_id: Character(
                c.character_id,
                c.character_id,
                c.rarity,
                MappingProxyType(dict(zip(rules.stats, c.stats, strict=True))),
                frozenset(c.tags),
            )
            for c in player.roster
        }
    )


def simulate(
    rules: Rules,
    bosses: Mapping[str, BossTemplate],
    population: Population,
    settings: SimulationSettings,
    progress: Callable[[str, float], None] | None = None,
    steps: int = 100,
) -> SimulationResult:
    """Run a whole simulation; ``progress(phase, fraction done)`` as it goes."""
    if settings.boss_id not in bosses or not 1 <= settings.players <= MAX_PLAYERS:
        RaidSimulation(rules, bosses, population, settings, players=[])  # raises the input error
    factory = PlayerFactory(population, rules, settings.seed)
    players: list[SyntheticPlayer] = []
    chunk = max(1, settings.players // steps)
    for start in range(0, settings.players, chunk):
        players += [factory.player(i) for i in range(start, min(settings.players, start + chunk))]
        if progress is not None:
            progress("drawing players", len(players) / settings.players)
    sim = RaidSimulation(rules, bosses, population, settings, players=players)
    for step in range(1, steps + 1):
        sim.run_until(sim.end_time * step / steps)
        if progress is not None:
            progress("playing", step / steps)
        if sim.done:
            break
    return sim.result()
