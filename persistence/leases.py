"""Raid host leases and fencing: at most one raid host writes a database's journal.

A raid host holds a *lease* (a row of ``host_leases``) with a *generation*. Taking the lease
over (it expired, or the operator forces it) increments the generation. The host then sets
``Database.fence = Fence(lease, generation)``, and every journal batch and snapshot checks,
inside its own write transaction, that the row still has that generation: a host that was
paused (SIGSTOP, a VM migration, a long GC) past its lease and resumes after another host
took over cannot commit a single entry: its transaction raises ``Fenced`` and rolls back
(the JournalWriter fails and poisons the batch's raids, their requests answer
``unavailable``). The check and the write share one ``BEGIN IMMEDIATE`` transaction, and
SQLite serialises writers, so no takeover can slip between them.

Time only decides when a lease may be taken over (``expires_at``); correctness does not
depend on clocks: a host whose lease has expired but was not taken over may still write,
which is safe because nobody else does.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from persistence.database import Database
from persistence.errors import PersistenceError

DEFAULT_LEASE = "raid-host"
"""The lease of the one raid host a database has (hosts owning disjoint raids would each
take their own lease and fence on it)."""


class LeaseHeld(PersistenceError):
    """Another host holds the lease and it has not expired."""

    def __init__(self, lease: str, holder: str, expires_in: float) -> None:
        super().__init__(
            f"lease {lease!r} is held by {holder} for {expires_in:.1f} s more "
            "(wait, or take it over if that host is gone)"
        )
        self.lease = lease  # the lease's name
        self.holder = holder  # who holds it
        self.expires_in = expires_in  # seconds until it may be taken over


class Fenced(PersistenceError):
    """A write by a host whose lease generation was taken over: refused, nothing written."""

    def __init__(self, lease: str, generation: int, current: int | None) -> None:
        super().__init__(
            f"lease {lease!r} generation {generation} was taken over "
            f"(now generation {current}): this host may no longer write"
        )
        self.lease = lease
        self.generation = generation  # the stale generation that tried to write
        self.current = current  # the generation holding the lease now


@dataclass(frozen=True, slots=True)
class Fence:
    """What every fenced write checks: the lease still has this generation."""

    lease: str
    generation: int


@dataclass(frozen=True, slots=True)
class Lease:
    fence: Fence
    holder: str
    expires_at: float


def check_fence(conn: sqlite3.Connection, fence: Fence) -> None:
    """Inside a write transaction: raise ``Fenced`` unless ``fence`` still holds the lease."""
    row = conn.execute(
        "SELECT generation FROM host_leases WHERE lease = ?", (fence.lease,)
    ).fetchone()
    current = None if row is None else int(row[0])
    if current != fence.generation:
        raise Fenced(fence.lease, fence.generation, current)


async def acquire_lease(
    db: Database,
    holder: str,
    ttl_s: float,
    now: float,
    *,
    lease: str = DEFAULT_LEASE,
    take_over: bool = False,
) -> Lease:
    """Take the lease with a new generation; ``LeaseHeld`` if it is held and not expired
    (unless ``take_over``)."""
    return await db.run_transaction(_acquire, lease, holder, ttl_s, now, take_over)


async def renew_lease(db: Database, lease: Lease, ttl_s: float, now: float) -> Lease:
    """Extend the lease; ``Fenced`` if it was taken over meanwhile."""
    return await db.run_transaction(_renew, lease, ttl_s, now)


def _acquire(
    conn: sqlite3.Connection, lease: str, holder: str, ttl_s: float, now: float, take_over: bool
) -> Lease:
    row = conn.execute(
        "SELECT holder, generation, expires_at FROM host_leases WHERE lease = ?", (lease,)
    ).fetchone()
    if row is None:
        generation = 1
        conn.execute(
            "INSERT INTO host_leases (lease, holder, generation, expires_at) VALUES (?, ?, 1, ?)",
            (lease, holder, now + ttl_s),
        )
    else:
        if float(row[2]) > now and not take_over:
            raise LeaseHeld(lease, str(row[0]), float(row[2]) - now)
        generation = int(row[1]) + 1
        conn.execute(
            "UPDATE host_leases SET holder = ?, generation = ?, expires_at = ? WHERE lease = ?",
            (holder, generation, now + ttl_s, lease),
        )
    return Lease(Fence(lease, generation), holder, now + ttl_s)


def _renew(conn: sqlite3.Connection, lease: Lease, ttl_s: float, now: float) -> Lease:
    check_fence(conn, lease.fence)
    conn.execute(
        "UPDATE host_leases SET expires_at = ? WHERE lease = ?", (now + ttl_s, lease.fence.lease)
    )
    return Lease(lease.fence, lease.holder, now + ttl_s)
