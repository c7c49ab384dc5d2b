"""The download queue: parallel jobs, pause/resume, cancel, totals, events from workers."""
from __future__ import annotations

import threading

from models.download_queue import CANCELLED, DONE, FAILED, PAUSED, DownloadManager
from models.file_download import RetryPolicy
from tests.fixtures.hub_server import GGUF_MAIN, GGUF_REPO, OPEN_REPO

NO_WAIT = RetryPolicy(attempts=3, delays=(0.0,))
FOLDER = ("bartowski", "Llama-3.2-1B-Instruct-GGUF")


def _when(predicate):
    """An on_event callback that sets the returned Event once ``predicate(event)`` holds."""
    seen = threading.Event()
    events = []

    def on_event(ev):
        events.append(ev)
        if predicate(ev):
            seen.set()
    return on_event, seen, events


def test_parallel_queue_downloads_everything_and_reports_totals(hub_server, tmp_path):
    files = hub_server.state.repos[OPEN_REPO].files
    names = sorted(n for n in files if n.endswith(".json"))
    on_event, _, events = _when(lambda ev: False)
    with DownloadManager(models_dir=tmp_path, max_parallel=2, on_event=on_event, retry=NO_WAIT) as dm:
        ids = dm.enqueue(OPEN_REPO, names) + dm.enqueue(GGUF_REPO, [GGUF_MAIN])
        assert dm.wait(ids, timeout=60)
        snaps = {s.job_id: s for s in dm.jobs()}
        assert all(snaps[i].state == DONE for i in ids), [snaps[i].error for i in ids]
        for i, name in zip(ids, names):
            assert snaps[i].path.read_bytes() == files[name]
        gguf = snaps[ids[-1]]
        assert gguf.path == tmp_path.joinpath(*FOLDER, GGUF_MAIN) and gguf.done == gguf.total
        totals = dm.totals()
        assert totals.done == totals.total == sum(len(files[n]) for n in names) + gguf.total
    kinds = [e.kind for e in events if e.job.job_id == ids[-1]]
    assert kinds[0] == "queued" and kinds[1] == "started" and kinds[-1] == "done" and "progress" in kinds
    assert {e.job.job_id for e in events if e.kind == "done"} == set(ids)


def test_pause_then_resume_continues_from_the_partial(hub_server, tmp_path):
    data = hub_server.state.repos[GGUF_REPO].files[GGUF_MAIN]
    hub_server.throttle_bps = 4_000_000
    on_event, moving, events = _when(lambda ev: ev.kind == "progress" and ev.job.done >= 500_000)
    with DownloadManager(models_dir=tmp_path, on_event=on_event, retry=NO_WAIT) as dm:
        (job,) = dm.enqueue(GGUF_REPO, [GGUF_MAIN])
        assert moving.wait(30)
        dm.pause(job)
        assert dm.wait([job], timeout=30) and dm.job(job).state == PAUSED
        part = tmp_path.joinpath(*FOLDER, GGUF_MAIN + ".part")
        kept = part.stat().st_size
        assert 500_000 <= kept < len(data) and not tmp_path.joinpath(*FOLDER, GGUF_MAIN).exists()
        hub_server.throttle_bps = None
        dm.resume(job)
        assert dm.wait([job], timeout=60)
        snap = dm.job(job)
        assert snap.state == DONE, snap.error
        assert snap.path.read_bytes() == data
    assert hub_server.ranges_for(GGUF_MAIN)[-1] == f"bytes={kept}-"
    assert [e.kind for e in events].count("paused") == 1


def test_cancel_leaves_nothing_that_looks_complete(hub_server, tmp_path):
    hub_server.throttle_bps = 4_000_000
    on_event, moving, _ = _when(lambda ev: ev.kind == "progress" and ev.job.done >= 300_000)
    with DownloadManager(models_dir=tmp_path, max_parallel=1, on_event=on_event, retry=NO_WAIT) as dm:
        running, waiting = dm.enqueue(GGUF_REPO, [GGUF_MAIN, "Llama-3.2-1B-Instruct-Q8_0.gguf"])
        assert moving.wait(30)
        dm.cancel(waiting)
        dm.cancel(running)
        assert dm.wait(timeout=30)
        assert dm.job(running).state == CANCELLED and dm.job(waiting).state == CANCELLED
    folder = tmp_path.joinpath(*FOLDER)
    assert not folder.exists() or [p.name for p in folder.iterdir()] == []


def test_failure_is_reported_on_the_job(hub_server, tmp_path):
    hub_server.corrupt(GGUF_MAIN, 10)
    with DownloadManager(models_dir=tmp_path, retry=NO_WAIT) as dm:
        (job,) = dm.enqueue(GGUF_REPO, [GGUF_MAIN])
        assert dm.wait([job], timeout=60)
        snap = dm.job(job)
    assert snap.state == FAILED and "failed verification" in snap.error


def test_whole_request_is_refused_when_it_does_not_fit(hub_server, tmp_path):
    import pytest

    from models.file_download import NotEnoughDiskSpace
    from models.repo_download import plan_download

    plan = plan_download(GGUF_REPO, ["*.gguf"])
    need = sum(r.size for r in plan)
    with DownloadManager(models_dir=tmp_path, free_space=lambda p: need - 1) as dm:
        with pytest.raises(NotEnoughDiskSpace, match="Not enough disk space: this download needs"):
            dm.enqueue_plan(plan)
        assert dm.jobs() == []
    with DownloadManager(models_dir=tmp_path, free_space=lambda p: need, retry=NO_WAIT) as dm:
        ids = dm.enqueue_plan(plan)
        assert dm.wait(ids, timeout=60) and all(s.state == DONE for s in dm.jobs())
