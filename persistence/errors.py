"""The exceptions of the persistence layer.

::

    Exception
     +-- PersistenceError          base of everything below
          +-- DatabaseNotOpen      a Database method was called before open() or after close()
          +-- SchemaError          the file is not a raid database or its schema cannot be used
          |    +-- SchemaTooNew    the file was written by a newer version of the server
          +-- DuplicateRaid        create_boss_raid with an existing raid_id
          +-- UnknownRaid          a row names a raid that does not exist
          +-- UnknownSnapshot      the snapshot does not exist or belongs to another raid
          +-- RosterConflict       a character_id is already owned by another user
          +-- DuplicatePlayerState create_player_raid_state for a version that exists
          +-- JournalWriteFailed   a journal entry was not committed (the lead maps it to
          |                        ``unavailable``)
          +-- DatabaseInUse        another process holds the database lock
          +-- RestoreRefused       a restore that would leave the raid inconsistent

sqlite3 errors that are not a caller's fault (disk full, database locked) are not wrapped:
they reach the caller as ``sqlite3.Error``, except through the JournalWriter, which turns
them into ``JournalWriteFailed``.
"""

from __future__ import annotations

from collections.abc import Iterable


class PersistenceError(Exception):
    """Base of every persistence-specific exception."""


class DatabaseNotOpen(PersistenceError):
    def __init__(self, path: str) -> None:
        super().__init__(
            f"database {path} is not open (call open() first; not usable after close())"
        )
        self.path = path  # the database file the closed Database refers to


class SchemaError(PersistenceError):
    """The database file cannot be used with this version of the code."""


class SchemaTooNew(SchemaError):
    def __init__(self, path: str, found: int, supported: int) -> None:
        super().__init__(
            f"database {path} has schema version {found}, but this server only knows versions "
            f"up to {supported}; upgrade the server instead of opening it with an older one"
        )
        self.found = found  # the version recorded in the file
        self.supported = supported  # the newest version this code can migrate to


class DuplicateRaid(PersistenceError):
    def __init__(self, raid_id: str) -> None:
        super().__init__(f"raid {raid_id} already exists")
        self.raid_id = raid_id


class UnknownRaid(PersistenceError):
    def __init__(self, raid_id: str) -> None:
        super().__init__(f"raid {raid_id} does not exist")
        self.raid_id = raid_id


class UnknownSnapshot(PersistenceError):
    def __init__(self, raid_id: str, snapshot_id: int) -> None:
        super().__init__(
            f"raid {raid_id} has no snapshot {snapshot_id} (see `raid-server snapshots {raid_id}`)"
        )
        self.raid_id = raid_id
        self.snapshot_id = snapshot_id


class RosterConflict(PersistenceError):
    def __init__(self, character_ids: Iterable[str]) -> None:
        self.character_ids = tuple(sorted(set(character_ids)))  # every conflicting id, sorted
        super().__init__(
            "character(s) already owned by another user: " + ", ".join(self.character_ids)
        )


class DuplicatePlayerState(PersistenceError):
    def __init__(self, raid_id: str, user_id: str, snapshot_id: int) -> None:
        super().__init__(
            f"player state of {user_id} in raid {raid_id} at snapshot {snapshot_id} already exists"
        )
        self.raid_id = raid_id
        self.user_id = user_id
        self.snapshot_id = snapshot_id


class JournalWriteFailed(PersistenceError):
    """A journal entry was not committed: its batch failed or its raid is poisoned."""

    def __init__(self, raid_id: str, reason: str) -> None:
        super().__init__(f"journal write for raid {raid_id} failed: {reason}")
        self.raid_id = raid_id
        self.reason = reason  # why: the sqlite error of the batch, or the poisoning


class DatabaseInUse(PersistenceError):
    def __init__(self, path: str, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"database {path} is in use by a running server ({holder}); stop it first")
        self.path = path
        self.pid = pid  # the holder's pid as written in the lock file, if readable


class RestoreRefused(PersistenceError):
    """A restore was refused; nothing was changed. The message says why."""
