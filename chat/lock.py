"""The one-writer lock: a lock file next to the database, held while a store is open.

SQLite alone would keep two writers from corrupting the file, but a writer also
repairs what a crash left (a reply still marked streaming becomes interrupted), and
doing that while another instance is really streaming would be wrong. So a writable
store takes an exclusive OS lock on ``<db>.lock`` first. The OS drops the lock when
the process ends, however it ends (SIGKILL included), so a crash never leaves a stale
lock behind (``common.lock.FileLock``). The holder's pid is written into the file
for the error message.

The lock is per open file, not per process: a second store in the same process is
refused as well.
"""
from __future__ import annotations

from pathlib import Path

from chat.records import StoreLockedError
from common.lock import FileLock, LockHeld


def lock_path_for(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


class WriterLock:
    """Exclusive, non-blocking, released by ``release()`` or by the process ending."""

    def __init__(self, db_path: Path):
        self.db_path = db_path
        self.path = lock_path_for(db_path)
        self._lock = FileLock(self.path)

    def acquire(self) -> "WriterLock":
        try:
            self._lock.acquire()
        except LockHeld as held:
            who = f"process {held.holder}" if held.holder else "another process"
            raise StoreLockedError(
                f"The chat database {self.db_path} is already open in "
                f"another LlamaDesk window ({who}). Close that window first, or open "
                f"the chats read-only.") from None
        return self

    def release(self) -> None:
        self._lock.release()

    @property
    def held(self) -> bool:
        return self._lock.held
