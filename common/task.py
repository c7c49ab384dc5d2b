"""The task handle: the one contract between long-running core work and its caller.

A long job (download, convert, quantize, load, generate) takes a ``TaskHandle``.
It reports progress through ``handle.progress(...)`` and calls ``handle.check()``
at every chunk, tensor or token; ``check()`` raises ``Cancelled`` once someone
called ``handle.cancel()`` from any thread. The GUI turns progress into signals;
the CLI draws a bar; tests just read the last report.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional


class Cancelled(Exception):
    """Raised inside a job when its handle was cancelled."""


@dataclass(frozen=True)
class Progress:
    """One progress report: ``done`` of ``total`` units, with rate and ETA."""

    done: float
    total: Optional[float]
    unit: str = ""
    message: str = ""
    rate: Optional[float] = None      # units per second since the job started
    eta_s: Optional[float] = None     # seconds left, when total and rate are known
    extra: dict = field(default_factory=dict)

    @property
    def fraction(self) -> Optional[float]:
        if not self.total:
            return None
        return min(1.0, max(0.0, self.done / self.total))


ProgressCallback = Callable[[Progress], None]


class TaskHandle:
    """Progress sink and cooperative cancellation flag for one job.

    Thread-safe: ``cancel()`` may be called from any thread, and the callback is
    invoked on the job's own thread (callers marshal it to their GUI themselves).
    """

    def __init__(self, on_progress: Optional[ProgressCallback] = None,
                 clock: Callable[[], float] = time.monotonic):
        self._on_progress = on_progress
        self._cancelled = threading.Event()
        self._clock = clock
        self._started = clock()
        self._base_done = 0.0
        self.last: Optional[Progress] = None

    # cancellation -------------------------------------------------------
    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        """Raise ``Cancelled`` if the job should stop now."""
        if self._cancelled.is_set():
            raise Cancelled()

    # progress -----------------------------------------------------------
    def restart_clock(self, done: float = 0.0) -> None:
        """Measure rate from now and from ``done`` (e.g. a resumed download)."""
        self._started = self._clock()
        self._base_done = done

    def linked(self, on_progress: Optional[ProgressCallback] = None) -> "LinkedHandle":
        """A handle for one step of this job: its own progress (to ``on_progress``, or
        nowhere), cancelled together with this one, from either side."""
        return LinkedHandle(self, on_progress)

    def progress(self, done: float, total: Optional[float] = None, *,
                 unit: str = "", message: str = "", **extra) -> Progress:
        elapsed = self._clock() - self._started
        moved = done - self._base_done
        rate = moved / elapsed if elapsed > 0 and moved > 0 else None
        eta = None
        if rate and total is not None and total >= done:
            eta = (total - done) / rate
        report = Progress(done, total, unit, message, rate, eta, extra)
        self.last = report
        if self._on_progress is not None:
            self._on_progress(report)
        return report


class LinkedHandle(TaskHandle):
    """The handle of one step inside a larger job (one file of a repo download, the model
    load inside a measurement): it reports its own progress, and cancelling it or the
    job's handle cancels both."""

    def __init__(self, parent: TaskHandle, on_progress: Optional[ProgressCallback] = None):
        super().__init__(on_progress=on_progress)
        self._parent = parent

    def cancel(self) -> None:
        self._parent.cancel()

    @property
    def cancelled(self) -> bool:
        return self._parent.cancelled

    def check(self) -> None:
        self._parent.check()


def format_eta(seconds: Optional[float]) -> str:
    """'1:05:09', '4:07' or '--:--' for an unknown ETA."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_bytes(n: Optional[float]) -> str:
    """'512 B', '3.5 MB', '4.4 GB'; '?' for an unknown (None, negative, NaN) size."""
    if n is None or n != n or n < 0:
        return "?"
    if n == float("inf"):
        return "?"
    if round(n) < 1000:
        return f"{n:.0f} B"
    for unit in ("KB", "MB", "GB", "TB"):
        n /= 1000.0
        if round(n, 1) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}"
    return f"{n:.1f} TB"  # pragma: no cover - the loop returns at TB


def format_parameters(n: Optional[float]) -> str:
    """A parameter count as people say it: '1.7 M', '135 M', '8.03 B'; '?' when unknown.

    Three significant digits, so the same model reads the same in the library, the
    conversion checks, the catalog and the CLI."""
    if n is None or n != n or n <= 0 or n == float("inf"):
        return "?"
    if n < 1000:
        return f"{n:.0f}"
    value, unit = float(n), ""
    for unit in ("K", "M", "B", "T"):
        value /= 1000.0
        if float(f"{value:.3g}") < 1000 or unit == "T":
            break
    return f"{value:.3g} {unit}" if value < 1000 else f"{value:.0f} {unit}"


def plural(count: int, noun: str, nouns: Optional[str] = None) -> str:
    """'1 model', '3 models', '0 conversations' ('nouns' for an irregular plural)."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"
