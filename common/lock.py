"""The one cross-platform lock: an exclusive OS lock on a lock file.

``FileLock(path).acquire()`` takes an exclusive, non-blocking lock on ``path``
(created if missing), or raises ``LockHeld`` naming the holder's pid when another
open file holds it: in another process, or in this one (the lock is per open file,
so a second holder in the same process is refused as well). The OS drops the lock
when the process ends, however it ends (SIGKILL included), so a crash never leaves a
stale lock behind. The holder's pid is written into the file for error messages.

POSIX uses ``flock``; Windows locks the file's first byte with ``msvcrt.locking``
(which is why the pid goes after that byte there).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    _PID_AT = 1

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

    _PID_AT = 0

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class LockHeld(OSError):
    """Someone else holds the lock; ``holder`` is their pid when the file says it."""

    def __init__(self, path: Path, holder: Optional[int]):
        super().__init__(f"{path} is locked by {f'process {holder}' if holder else 'another process'}")
        self.path, self.holder = path, holder


class FileLock:
    """Exclusive and non-blocking; released by ``release()`` or by the process ending.

    ``unlink=True`` removes the lock file on release (a lock that names one job, such as
    a download, rather than a lasting resource)."""

    def __init__(self, path: Union[str, Path], *, mode: int = 0o600, unlink: bool = False):
        self.path = Path(path)
        self.mode = mode
        self.unlink = unlink
        self._fd: Optional[int] = None

    def acquire(self) -> "FileLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, self.mode)
        if not _try_lock(fd):
            holder = _read_pid(fd)
            os.close(fd)
            raise LockHeld(self.path, holder)
        # Our pid where the next contender can read it (on Windows after the locked byte).
        os.ftruncate(fd, _PID_AT)
        os.lseek(fd, _PID_AT, os.SEEK_SET)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if self.unlink and os.name != "nt":
            self.path.unlink(missing_ok=True)   # while still held: no one can take a doomed file
        try:
            _unlock(fd)
        finally:
            os.close(fd)
        if self.unlink and os.name == "nt":     # pragma: no cover - an open file cannot be removed there
            try:
                self.path.unlink(missing_ok=True)
            except OSError:
                pass

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> Optional[int]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        digits = "".join(ch for ch in os.read(fd, 64).decode("ascii", "replace") if ch.isdigit())
        return int(digits) if digits else None
    except OSError:
        return None
