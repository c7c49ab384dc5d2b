"""The one-writer lock: a lock file next to the database, held while a store is open.

SQLite alone would keep two writers from corrupting the file, but a writer also
repairs what a crash left (a reply still marked streaming becomes interrupted), and
doing that while another instance is really streaming would be wrong. So a writable
store takes an exclusive OS lock on ``<db>.lock`` first. The OS drops the lock when
the process ends, however it ends (SIGKILL included), so a crash never leaves a stale
lock behind. The holder's pid is written into the file for the error message.

The lock is per open file, not per process: a second store in the same process is
refused as well.
"""
from __future__ import annotations

import os
from pathlib import Path

from chat.model import StoreLockedError

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def lock_path_for(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


class WriterLock:
    """Exclusive, non-blocking, released by ``release()`` or by the process ending."""

    def __init__(self, db_path: Path):
        self.db_path = db_path
        self.path = lock_path_for(db_path)
        self._fd: int | None = None

    def acquire(self) -> "WriterLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if not _try_lock(fd):
            holder = _read_pid(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise StoreLockedError(
                f"The chat database {self.db_path} is already open in "
                f"another LlamaDesk window ({who}). Close that window first, or open "
                f"the chats read-only.")
        # Write our pid where the next contender can read it. On Windows the locked
        # byte cannot be written, so the pid goes after it.
        os.ftruncate(fd, 1) if os.name == "nt" else os.ftruncate(fd, 0)
        os.lseek(fd, 1 if os.name == "nt" else 0, os.SEEK_SET)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                _unlock(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        digits = "".join(ch for ch in os.read(fd, 64).decode("ascii", "replace") if ch.isdigit())
        return int(digits) if digits else None
    except OSError:
        return None
