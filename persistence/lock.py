"""``DatabaseLock``: the advisory lock a running server holds on its database.

SQLite's own locks only guard single transactions; operations such as ``restore`` rewrite a
raid's history and must not run under a live server whose memory would disagree with the
file. The server holds ``flock(LOCK_EX)`` on ``<db>.lock`` for its whole life and writes its
pid there; the CLI takes the same lock before such operations. The kernel releases the lock
when the holder dies, so a crashed server never leaves a stale lock behind (the file itself
stays; only the flock counts).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from types import TracebackType
from typing import IO

from persistence.errors import DatabaseInUse


class DatabaseLock:
    def __init__(self, db_path: str | os.PathLike[str], file: IO[str]) -> None:
        self.db_path = os.fspath(db_path)
        self._file: IO[str] | None = file  # the open, flock-ed lock file; None once released

    @staticmethod
    def lock_path(db_path: str | os.PathLike[str]) -> str:
        return os.fspath(db_path) + ".lock"

    @classmethod
    def acquire(cls, db_path: str | os.PathLike[str]) -> DatabaseLock:
        """Take the lock without waiting; ``DatabaseInUse`` if another holder has it.

        The lock belongs to this open file: a second ``acquire`` in the same process fails
        too.
        """
        # "a+" rather than "w": truncating before holding the lock would erase the holder's pid.
        file = open(cls.lock_path(db_path), "a+", encoding="ascii")  # noqa: SIM115
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip()
            file.close()
            pid = int(holder) if holder.isdigit() else None
            raise DatabaseInUse(os.fspath(db_path), pid) from None
        except BaseException:
            file.close()
            raise
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        return cls(db_path, file)

    @property
    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        """Release the lock (idempotent). The pid is erased so the file names no holder."""
        file, self._file = self._file, None
        if file is None:
            return
        with contextlib.closing(file):
            file.seek(0)
            file.truncate()
            file.flush()
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)

    def __enter__(self) -> DatabaseLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
