"""Worker threads the GUI starts, tracked so shutdown and tests can see them."""
from __future__ import annotations

import weakref

from PySide6.QtCore import QThread


class WorkerThread(QThread):
    """A QThread that remembers itself while it exists, so leaks are detectable."""

    _live: "weakref.WeakSet[WorkerThread]" = weakref.WeakSet()

    def __init__(self, name: str, parent=None):
        super().__init__(parent)
        self.setObjectName(name)
        WorkerThread._live.add(self)

    @classmethod
    def running(cls) -> list["WorkerThread"]:
        alive = []
        for t in list(cls._live):
            try:
                if t.isRunning():
                    alive.append(t)
            except RuntimeError:  # the C++ object is already gone
                pass
        return alive

    def stop_and_wait(self, timeout_ms: int = 10000) -> bool:
        self.quit()
        return self.wait(timeout_ms)
