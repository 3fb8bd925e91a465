"""Database reads batched: every key wanted while a read is under way joins the next read.

Under load a database read waits for the GIL at each step of its reader thread, so one read
per key (a cold player's roster, a strike_id that may be a repeat) queued by the thousand and
made requests wait seconds. Here one read serves every key of a group (a raid, say) wanted
meanwhile, up to ``limit`` keys; callers share its result. The roster cache and the
strike_id lookups are built on it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeVar

G = TypeVar("G")  # what one read is about (a raid; None when there is one kind)
K = TypeVar("K")
V = TypeVar("V")


class ReadBatches(Generic[G, K, V]):
    """Batched reads of ``read(group, keys) -> {key: value}`` (loop thread only).

    ``keep(key, value)`` is told each value read, except for keys ``detach``ed while their
    read was under way (the value may be stale: a cache must not keep it)."""

    def __init__(
        self,
        read: Callable[[G, list[K]], Awaitable[Mapping[K, V]]],
        limit: int,
        name: str,
        keep: Callable[[K, V], None] | None = None,
    ) -> None:
        self._read = read
        self.limit = limit  # keys in one read at most
        self.name = name  # of the reader task
        self._keep = keep
        self._queued: dict[G, dict[K, asyncio.Future[V]]] = {}  # for the next reads
        self._reading: dict[tuple[G, K], asyncio.Future[V]] = {}  # in the read under way
        self._detached: set[tuple[G, K]] = set()  # detached from the read under way
        self._reader: asyncio.Task[None] | None = None  # reads while anything is queued
        self.reads = 0  # database reads made (tests: batching)

    async def get(self, group: G, key: K) -> V:
        """The value of ``key``, from the read under way or the next one."""
        future = self._reading.get((group, key))
        if future is None:
            queued = self._queued.setdefault(group, {})
            future = queued.get(key)
            if future is None:
                future = queued[key] = asyncio.get_running_loop().create_future()
                if self._reader is None:
                    self._reader = asyncio.create_task(self._run(), name=self.name)
        # Shielded: a caller that gives up must not cancel the others waiting for this read.
        return await asyncio.shield(future)

    def detach(self, group: G, key: K) -> None:
        """``key`` changed: its read under way (if any) answers its callers but is not kept,
        and a later ``get`` waits for a read of its own."""
        if self._reading.pop((group, key), None) is not None:
            self._detached.add((group, key))

    async def _run(self) -> None:
        try:
            while self._queued:
                group = next(iter(self._queued))
                queued = self._queued[group]
                keys = list(itertools.islice(queued, self.limit))
                batch = {key: queued.pop(key) for key in keys}
                if not queued:
                    del self._queued[group]
                self._reading = {(group, key): future for key, future in batch.items()}
                self._detached = set()
                self.reads += 1
                try:
                    values = await self._read(group, keys)
                except Exception as exc:  # noqa: BLE001 - each waiter gets it; the reader goes on
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(exc)
                            future.exception()  # retrieved: a waiter may have given up
                    continue
                finally:
                    self._reading = {}
                for key, future in batch.items():
                    value = values[key]
                    if self._keep is not None and (group, key) not in self._detached:
                        self._keep(key, value)
                    if not future.done():
                        future.set_result(value)
        finally:
            self._reader = None
            for queued in self._queued.values():  # cancelled with the loop: nobody hangs
                for future in queued.values():
                    future.cancel()
            self._queued.clear()
