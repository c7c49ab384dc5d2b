"""The writer side of a download: blocks are written and hashed on a second thread."""
from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Optional

from models.download_errors import NotEnoughDiskSpace


class BlockSink:
    """Writes and hashes blocks on a second thread, so hashing overlaps the next recv.

    hashlib and file writes release the GIL on large buffers; the bounded queue keeps
    at most a few MB in flight. A write error (a full disk) is re-raised on ``put``.
    """

    def __init__(self, f, hasher, part: Path, depth: int = 64):
        self.f, self.hasher, self.part = f, hasher, part
        self.error: Optional[BaseException] = None
        self._q: "queue.Queue[Optional[bytes]]" = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, name="download-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            block = self._q.get()
            if block is None:
                self._q.task_done()
                return
            if self.error is None:
                try:
                    write_block(self.f, block, self.part)
                    self.hasher.update(block)
                except BaseException as exc:  # noqa: BLE001 - handed back to the producer
                    self.error = exc
            self._q.task_done()

    def put(self, block: bytes) -> None:
        if self.error is not None:
            raise self.error
        self._q.put(block)

    def drain(self) -> None:
        self._q.join()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join()
        self.f.flush()
        if self.error is not None:
            raise self.error


def write_block(f, block: bytes, part: Path) -> None:
    try:
        f.write(block)
    except OSError as exc:
        if exc.errno == 28:  # ENOSPC
            raise NotEnoughDiskSpace(f"The disk filled up while writing {part.name}. Free some space "
                                     "and run the download again: it resumes where it stopped.") from exc
        raise
