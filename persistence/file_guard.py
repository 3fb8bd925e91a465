"""Refuse to commit into a database file that was removed or replaced while open.

SQLite keeps writing through its open file descriptors when the file's name is removed
(``rm raid.db``) or pointed at another file (a restore copied over it): commits succeed, into
a file nobody will ever open again, and every write acknowledged from then on is lost at the
next start. So before each commit the writer checks that the database's path (and its WAL's)
still names the files it opened; if not, the commit fails like a full disk does: the batch
answers ``unavailable``, nothing is acknowledged, and writes resume by themselves once the
file is back under its name (e.g. ``ln raid.db.saved raid.db``, or moving it back).

One ``stat`` per file per commit: about a microsecond against a commit's fsync.
"""

from __future__ import annotations

import os

from persistence.errors import PersistenceError


class DatabaseFileGone(PersistenceError):
    """The database (or WAL) file under the configured path is not the one open."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"database file {path} {problem}; writes are refused until it is back")
        self.path = path  # the file that moved
        self.problem = problem  # "was removed" / "was replaced by another file"


def _identity(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


class FileGuard:
    """Remembers which files a database path named when it was opened."""

    def __init__(self, path: str) -> None:
        self.paths = (path, path + "-wal")  # the WAL holds every commit until a checkpoint
        self._opened: dict[str, tuple[int, int]] = {}

    def remember(self) -> None:
        """Call once the connections are open (the WAL exists from then on)."""
        for path in self.paths:
            identity = _identity(path)
            if identity is not None:
                self._opened[path] = identity

    def check(self) -> None:
        """Raise ``DatabaseFileGone`` if a remembered file is no longer under its name."""
        for path, opened in self._opened.items():
            now = _identity(path)
            if now is None:
                raise DatabaseFileGone(path, "was removed")
            if now != opened:
                raise DatabaseFileGone(path, "was replaced by another file")
