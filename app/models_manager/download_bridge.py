"""The download manager's events, delivered as Qt signals on the GUI thread."""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class DownloadBridge(QObject):
    download_event = Signal(object)
    """A models.download_queue.DownloadEvent (queued, started, progress, paused, done, failed, cancelled)."""

    def __init__(self, models_dir, max_parallel: int = 2, parent=None):
        super().__init__(parent)
        from models.download_queue import DownloadManager

        # on_event runs on download threads; emitting queues it to this object's thread
        self.manager = DownloadManager(models_dir=models_dir, max_parallel=max_parallel,
                                       on_event=self.download_event.emit)

    def shutdown(self) -> None:
        """Pause running downloads (they resume next time) and stop the worker threads."""
        self.manager.shutdown()
