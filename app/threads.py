"""Worker threads the GUI starts, tracked so shutdown and tests can see them."""
from __future__ import annotations

import time
import weakref
from typing import Callable, Optional

from PySide6.QtCore import QObject, QThread, Signal, Slot

from common.task import Cancelled, TaskHandle


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

    # Threads still running when their owner went away, with the objects living on them:
    # Qt must never destroy a running QThread, nor an object while its slot runs there.
    _kept: list = []

    def stop_or_keep(self, timeout_ms: int, *objects) -> bool:
        """Stop, waiting up to ``timeout_ms``; True once finished. Still running: the
        thread leaves its parent and, with ``objects``, is kept alive until it ends."""
        WorkerThread._kept[:] = [k for k in WorkerThread._kept if not _finished(k[0])]
        if self.stop_and_wait(timeout_ms):
            return True
        self.setParent(None)
        WorkerThread._kept.append((self, objects))
        return False


def _finished(thread: QThread) -> bool:
    try:
        return thread.isFinished()
    except RuntimeError:
        return True


class _OpThread(WorkerThread):
    """Runs one function with a TaskHandle; results travel back as queued signals."""

    succeeded = Signal(object)
    """The function returned; the argument is its result."""
    failed = Signal(object)
    """The function raised; the argument is the exception (Cancelled when cancelled)."""
    progressed = Signal(object)
    """A common.task.Progress report, at most about 20 per second."""

    def __init__(self, fn: Callable, name: str):
        super().__init__(name)
        self._fn = fn
        self._last_emit = 0.0
        self.handle = TaskHandle(on_progress=self._report)

    def _report(self, report) -> None:
        now = time.monotonic()
        if now - self._last_emit >= 0.05 or (report.total is not None and report.done >= report.total):
            self._last_emit = now
            self.progressed.emit(report)

    def run(self) -> None:
        try:
            result = self._fn(self.handle)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller, never lost
            self.failed.emit(exc)
            return
        self.succeeded.emit(result)


class BackgroundOp(QObject):
    """``run_in_background(fn).on_success(...).on_failure(...).start()``.

    ``fn(handle)`` runs on its own tracked thread; callbacks run on the GUI thread.
    Cancelled jobs call ``on_cancel`` (if given) instead of ``on_failure``.
    """

    _running: "set[BackgroundOp]" = set()

    def __init__(self, fn: Callable, name: str = "background"):
        super().__init__()
        self._thread = _OpThread(fn, name)
        self._success: Optional[Callable] = None
        self._failure: Optional[Callable] = None
        self._cancel: Optional[Callable] = None
        self._progress: Optional[Callable] = None
        self._thread.succeeded.connect(self._on_thread_succeeded)
        self._thread.failed.connect(self._on_thread_failed)
        self._thread.progressed.connect(self._on_thread_progressed)

    @property
    def handle(self) -> TaskHandle:
        return self._thread.handle

    def on_success(self, fn: Callable) -> "BackgroundOp":
        self._success = fn
        return self

    def on_failure(self, fn: Callable) -> "BackgroundOp":
        self._failure = fn
        return self

    def on_cancel(self, fn: Callable) -> "BackgroundOp":
        self._cancel = fn
        return self

    def on_progress(self, fn: Callable) -> "BackgroundOp":
        self._progress = fn
        return self

    def start(self) -> "BackgroundOp":
        BackgroundOp._running.add(self)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.handle.cancel()

    def wait(self, timeout_ms: int = 10000) -> bool:
        return self._thread.wait(timeout_ms)

    @Slot(object)
    def _on_thread_progressed(self, report) -> None:
        if self._progress and not self.handle.cancelled:
            self._progress(report)

    @Slot(object)
    def _on_thread_succeeded(self, result) -> None:
        self._thread.wait()
        BackgroundOp._running.discard(self)
        if self._success:
            self._success(result)

    @Slot(object)
    def _on_thread_failed(self, exc) -> None:
        self._thread.wait()
        BackgroundOp._running.discard(self)
        if isinstance(exc, Cancelled) and self._cancel:
            self._cancel()
        elif not isinstance(exc, Cancelled) and self._failure:
            self._failure(exc)

    @classmethod
    def cancel_all_and_wait(cls, timeout_ms: int = 120000) -> None:
        """Cancel every running op and wait until its thread has finished (used when the
        app closes). A cancelled op stops at its next check, so this returns promptly;
        ``timeout_ms`` only bounds an op that never checks its handle."""
        for op in list(cls._running):
            op.cancel()
        for op in list(cls._running):
            op.wait(timeout_ms)
            cls._running.discard(op)


def run_in_background(fn: Callable, name: str = "background") -> BackgroundOp:
    return BackgroundOp(fn, name)
