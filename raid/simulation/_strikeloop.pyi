"""Types of the compiled strike loop (``_strikeloop.c``); engine.py documents the semantics."""

from collections.abc import Callable

class Loop:
    def __init__(
        self,
        heap: list[tuple[float, int]],
        sizes: list[int],
        masks: list[int],
        dominant: list[int],
        n_dominant: int,
        policy: list[int],
        stream: list[int],
        analyst: list[bool],
        session_end: list[float],
        rest: float | None,
        react_lo: float,
        react_span: float,
        sessions: tuple[int, int, float, float, float, float],
        utc_offset: list[float],
        day: list[int],
        pending: list[list[tuple[float, float]]],
    ) -> None: ...
    def __len__(self) -> int: ...
    def add_table(
        self, nums: tuple[object, ...], suppressions: tuple[tuple[int, int, int], ...]
    ) -> int: ...
    def set_scoring(
        self,
        key: int,
        scale: int,
        flags: list[int],
        base_den: int,
        fight_num: int,
        fight_den: int,
        analyze_num: int,
        analyze_den: int,
        cap: int,
        cooldown: float,
        multiplier: Callable[[int], tuple[int, int]],
        multipliers: int,
        /,
    ) -> None: ...
    def run(
        self,
        until: float,
        hp: int,
        analysis: int,
        seq: int,
        fights: int,
        analyzes: int,
        next_threshold: int | None,
        sample_at: float,
        marks: list[int],
        total_hp: int,
        every: int,
        on_sample: Callable[[float, int, int, int, int], float],
        on_draw: Callable[[float, int, int], int | None],
        milestones: list[tuple[float, int]],
        trace: Callable[[int, float, bool, list[int], int], None] | None,
        /,
    ) -> tuple[int, int, int, int, int, int, float]: ...
    def totals(self) -> tuple[list[int], list[int], list[int], list[int]]: ...
