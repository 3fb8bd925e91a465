"""DatabaseLock across real processes."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistence.errors import DatabaseInUse
from persistence.lock import DatabaseLock
from tests.persistence.helpers import TIMEOUT

REPO_ROOT = Path(__file__).resolve().parents[2]

HOLD_LOCK = textwrap.dedent(
    """
    import sys
    from persistence.lock import DatabaseLock

    lock = DatabaseLock.acquire(sys.argv[1])
    print("locked", flush=True)
    sys.stdin.read()  # hold the lock until the test closes our stdin
    lock.release()
    """
)

TRY_LOCK = textwrap.dedent(
    """
    import sys
    from persistence.errors import DatabaseInUse
    from persistence.lock import DatabaseLock

    try:
        DatabaseLock.acquire(sys.argv[1]).release()
    except DatabaseInUse as exc:
        print(exc)
        sys.exit(3)
    print("acquired")
    """
)


def python(script: str, *args: str, stdin: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO_ROOT,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + TIMEOUT
    ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
    if not ready:
        raise TimeoutError("the child process printed nothing in time")
    return process.stdout.readline().strip()


@pytest.fixture
def holder(db_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process holding the lock until its stdin closes; always stopped."""
    process = python(HOLD_LOCK, str(db_path), stdin=subprocess.PIPE)
    try:
        assert read_line(process) == "locked"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=TIMEOUT)


def test_another_process_holding_the_lock_is_named(
    db_path: Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(DatabaseInUse) as caught:
        DatabaseLock.acquire(db_path)
    assert caught.value.pid == holder.pid
    assert str(caught.value) == (
        f"database {db_path} is in use by a running server (pid {holder.pid}); stop it first"
    )

    holder.communicate(input="", timeout=TIMEOUT)  # the child releases and exits
    assert holder.returncode == 0
    with DatabaseLock.acquire(db_path) as lock:
        assert lock.held
    assert not lock.held


def test_a_second_process_cannot_take_a_held_lock(db_path: Path) -> None:
    with DatabaseLock.acquire(db_path):
        child = python(TRY_LOCK, str(db_path))
        out, _ = child.communicate(timeout=TIMEOUT)
        assert child.returncode == 3
        assert f"in use by a running server (pid {os.getpid()})" in out

    child = python(TRY_LOCK, str(db_path))
    out, _ = child.communicate(timeout=TIMEOUT)
    assert (child.returncode, out.strip()) == (0, "acquired")


def test_the_lock_dies_with_its_holder(db_path: Path, holder: subprocess.Popen[str]) -> None:
    holder.kill()
    holder.communicate(timeout=TIMEOUT)
    lock = DatabaseLock.acquire(db_path)  # no stale lock after a crash
    lock.release()


def test_the_same_process_cannot_lock_twice_and_release_is_idempotent(db_path: Path) -> None:
    lock = DatabaseLock.acquire(db_path)
    try:
        with pytest.raises(DatabaseInUse, match=f"pid {os.getpid()}"):
            DatabaseLock.acquire(db_path)
    finally:
        lock.release()
    lock.release()
    assert Path(DatabaseLock.lock_path(db_path)).read_text() == ""
    DatabaseLock.acquire(db_path).release()
