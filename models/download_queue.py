"""The download queue: parallel workers, pause/resume/cancel, progress for every file.

``DownloadManager(models_dir=..., max_parallel=2, on_event=callback)`` runs its own
plain worker threads. ``enqueue(repo_id, filenames, revision)`` returns one job id
per file; ``pause``/``resume``/``cancel`` act on a job; ``jobs()`` is a snapshot with
bytes done/total, speed, ETA and state; ``totals()`` sums them. ``on_event`` is
called from worker threads with a ``DownloadEvent`` (a GUI marshals it to its own
thread). Each file is fetched by ``file_download.download_file``, so a paused job, or one
interrupted by a crash, resumes from its partial file.

Pause and cancel both stop the transfer at the next chunk; pause keeps the partial,
cancel deletes it (nothing half-written is left looking complete either way).
"""
from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

from common.task import Cancelled, Progress, TaskHandle
from models import file_download
from models.file_download import FreeSpace, RetryPolicy, default_free_space

QUEUED, RUNNING, PAUSED, DONE, FAILED, CANCELLED = "queued", "running", "paused", "done", "failed", "cancelled"
EVENT_INTERVAL_S = 0.1   # progress events per job are coalesced to at most 10 a second


@dataclass(frozen=True)
class JobSnapshot:
    job_id: int
    repo_id: str
    filename: str
    revision: Optional[str]
    state: str
    done: int = 0
    total: Optional[int] = None
    speed: Optional[float] = None      # bytes per second
    eta_s: Optional[float] = None
    error: Optional[str] = None
    path: Optional[Path] = None


@dataclass(frozen=True)
class DownloadEvent:
    kind: str             # queued | started | progress | paused | done | failed | cancelled
    job: JobSnapshot


@dataclass(frozen=True)
class Totals:
    done: int
    total: int
    speed: float
    eta_s: Optional[float]
    active: int


class _Job:
    def __init__(self, snap: JobSnapshot):
        self.snap = snap
        self.handle: Optional[TaskHandle] = None
        self.stop_as: Optional[str] = None   # PAUSED or CANCELLED while running
        self.last_event = 0.0


class DownloadManager:
    def __init__(self, models_dir: Optional[Path] = None, max_parallel: int = 2,
                 on_event: Optional[Callable[[DownloadEvent], None]] = None, *,
                 token: Optional[str] = None, retry: RetryPolicy = RetryPolicy(),
                 free_space: FreeSpace = default_free_space):
        self.models_dir = Path(models_dir) if models_dir else None
        self._on_event = on_event
        self._token = token
        self._retry = retry
        self._free_space = free_space
        self._jobs: dict[int, _Job] = {}
        self._ids = itertools.count(1)
        self._queue: "queue.Queue[Optional[int]]" = queue.Queue()
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)   # notified when a job leaves RUNNING/QUEUED
        self._closed = False
        self._workers = [threading.Thread(target=self._work, name=f"download-{i + 1}", daemon=False)
                         for i in range(max(1, max_parallel))]
        for w in self._workers:
            w.start()

    # --- public API -----------------------------------------------------------
    def enqueue(self, repo_id: str, filenames: list[str], revision: Optional[str] = None) -> list[int]:
        ids = []
        for name in filenames:
            job = _Job(JobSnapshot(next(self._ids), repo_id, name, revision, QUEUED))
            with self._lock:
                if self._closed:
                    raise RuntimeError("the download manager was shut down")
                self._jobs[job.snap.job_id] = job
            ids.append(job.snap.job_id)
            self._emit("queued", job)
            self._queue.put(job.snap.job_id)
        return ids

    def enqueue_plan(self, remotes: list) -> list[int]:
        """Enqueue files resolved by ``repo_download.plan_download`` after checking that the
        whole request fits on disk (raises ``NotEnoughDiskSpace`` and enqueues nothing)."""
        from models.repo_download import bytes_still_needed

        file_download.check_disk_space(bytes_still_needed(remotes, self.models_dir), self._free_space)
        ids = []
        for r in remotes:
            ids += self.enqueue(r.repo_id, [r.filename], r.commit or r.revision)
        return ids

    def pause(self, job_id: int) -> None:
        self._stop(job_id, PAUSED)

    def cancel(self, job_id: int) -> None:
        self._stop(job_id, CANCELLED)

    def resume(self, job_id: int) -> None:
        with self._lock:
            job = self._jobs[job_id]
            if job.snap.state not in (PAUSED, FAILED):
                return
            job.snap = replace(job.snap, state=QUEUED, error=None, speed=None, eta_s=None)
        self._emit("queued", job)
        self._queue.put(job_id)

    def jobs(self) -> list[JobSnapshot]:
        with self._lock:
            return [j.snap for j in self._jobs.values()]

    def job(self, job_id: int) -> JobSnapshot:
        with self._lock:
            return self._jobs[job_id].snap

    def totals(self) -> Totals:
        snaps = [s for s in self.jobs() if s.state != CANCELLED]
        done = sum(s.done for s in snaps)
        total = sum(s.total or 0 for s in snaps)
        speed = sum(s.speed or 0.0 for s in snaps if s.state == RUNNING)
        eta = (total - done) / speed if speed > 0 and total >= done else None
        return Totals(done, total, speed, eta, sum(s.state in (QUEUED, RUNNING) for s in snaps))

    def wait(self, job_ids: Optional[list[int]] = None, timeout: Optional[float] = None) -> bool:
        """Block until the jobs leave the queued/running states; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._settled:
            while True:
                snaps = [self._jobs[i].snap for i in (job_ids or list(self._jobs))]
                if all(s.state not in (QUEUED, RUNNING) for s in snaps):
                    return True
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._settled.wait(left)

    def shutdown(self) -> None:
        """Pause whatever is running (partials stay resumable) and stop the workers."""
        with self._lock:
            self._closed = True
            running = [j for j in self._jobs.values() if j.snap.state in (RUNNING, QUEUED)]
        for job in running:
            self._stop(job.snap.job_id, PAUSED)
        for _ in self._workers:
            self._queue.put(None)
        for w in self._workers:
            w.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    # --- internals ------------------------------------------------------------
    def _stop(self, job_id: int, state: str) -> None:
        with self._lock:
            job = self._jobs[job_id]
            s = job.snap.state
            if s == RUNNING:
                job.stop_as = state
                if job.handle is not None:
                    job.handle.cancel()
                return
            if s in (DONE, CANCELLED) or (s == PAUSED and state == PAUSED):
                return
            job.snap = replace(job.snap, state=state, speed=None, eta_s=None)
            self._settled.notify_all()
        if state == CANCELLED:
            self._discard(job)
        self._emit(state, job)

    def _discard(self, job: _Job) -> None:
        try:
            remote = file_download.resolve_remote(job.snap.repo_id, job.snap.filename, job.snap.revision,
                                          token=self._token)
        except Exception:  # noqa: BLE001 - nothing to discard if the Hub cannot say where it went
            return
        file_download.discard_partial(remote, self.models_dir)

    def _emit(self, kind: str, job: _Job) -> None:
        if self._on_event is not None:
            self._on_event(DownloadEvent(kind, job.snap))

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            with self._lock:
                job = self._jobs[job_id]
                if job.snap.state != QUEUED:
                    continue  # paused or cancelled while waiting
                job.handle = TaskHandle(on_progress=lambda p, j=job: self._on_progress(j, p))
                job.stop_as = None
                job.snap = replace(job.snap, state=RUNNING)
            self._emit("started", job)
            self._run(job)

    def _run(self, job: _Job) -> None:
        kind, path, error = DONE, None, None
        try:
            path = file_download.download_file(job.snap.repo_id, job.snap.filename, revision=job.snap.revision,
                                       handle=job.handle, models_dir=self.models_dir, token=self._token,
                                       retry=self._retry, free_space=self._free_space)
        except Cancelled:
            kind = job.stop_as or PAUSED
        except Exception as exc:  # noqa: BLE001 - every failure is reported on the job
            kind, error = FAILED, str(exc) or type(exc).__name__
        if kind == CANCELLED:
            self._discard(job)
        with self._lock:
            job.snap = replace(job.snap, state=kind, error=error, path=path, speed=None, eta_s=None,
                               done=job.snap.total or job.snap.done if kind == DONE else job.snap.done)
            job.handle = None
            self._settled.notify_all()
        self._emit(kind, job)

    def _on_progress(self, job: _Job, p: Progress) -> None:
        if p.message.startswith("checking"):
            return  # re-hashing a partial: bytes on disk, not new bytes
        with self._lock:
            job.snap = replace(job.snap, done=int(p.done), total=int(p.total) if p.total else None,
                               speed=p.rate, eta_s=p.eta_s)
            now = time.monotonic()
            due = now - job.last_event >= EVENT_INTERVAL_S or p.done == p.total
            if due:
                job.last_event = now
        if due:
            self._emit("progress", job)
