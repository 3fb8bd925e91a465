"""The parent's watchdog with real worker processes: silence is a hang, slowness is not."""

from __future__ import annotations

import multiprocessing
import multiprocessing.queues
import time
from collections.abc import Iterator
from typing import Any

import pytest

from raidclient.loadtest.run import Watchdog, WorkerFailed
from tests.loadtest.watchdog_workers import SILENCE_S, crashing, hung, slow_but_alive
from tests.timeouts import TIMEOUT


@pytest.fixture
def spawn() -> Iterator[Any]:
    context = multiprocessing.get_context("spawn")
    started: list[multiprocessing.process.BaseProcess] = []

    def start(target: Any, *args: Any) -> tuple[Watchdog, Any]:
        inbox: multiprocessing.queues.Queue[Any] = context.Queue()
        process = context.Process(target=target, args=(inbox, *args), daemon=True)
        process.start()
        started.append(process)
        return Watchdog(inbox, [process], silence_s=SILENCE_S, startup_s=TIMEOUT * 3), inbox

    yield start
    for process in started:
        process.terminate()
        process.join(timeout=TIMEOUT)


async def test_a_slow_phase_that_heartbeats_is_waited_for(spawn: Any) -> None:
    watchdog, _ = spawn(slow_but_alive, 14)  # 1.75 x the silence limit, with heartbeats
    assert await watchdog.next_message() == ("ready", 0)
    started = time.monotonic()
    assert await watchdog.next_message() == ("loaded", 0, "done")
    assert time.monotonic() - started > 1.5 * SILENCE_S


async def test_a_silent_worker_is_reported_hung(spawn: Any) -> None:
    watchdog, _ = spawn(hung)
    assert await watchdog.next_message() == ("ready", 0)
    started = time.monotonic()
    with pytest.raises(WorkerFailed, match=r"worker 0 sent nothing for 2 s \(hung or starved\)"):
        await watchdog.next_message()
    assert SILENCE_S <= time.monotonic() - started < TIMEOUT


async def test_a_dead_worker_is_reported_with_its_exit_code(spawn: Any) -> None:
    watchdog, _ = spawn(crashing)
    with pytest.raises(WorkerFailed, match=r"died \(exit code 3\)"):
        await watchdog.next_message()


async def test_heartbeats_read_late_still_count(spawn: Any) -> None:
    """The parent may be busy elsewhere (reading the raid for the audit) for longer than
    the silence limit; the heartbeats sent meanwhile are waiting in the queue."""
    watchdog, _ = spawn(slow_but_alive, 14)
    assert await watchdog.next_message() == ("ready", 0)
    time.sleep(2 * SILENCE_S)  # this process blocked: nothing is read meanwhile
    assert await watchdog.next_message() == ("loaded", 0, "done")
