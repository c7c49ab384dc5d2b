"""common/: the atomic writer, the cross-platform lock, the data paths, task handles and
the GGUF header reader that the packages above share."""
from __future__ import annotations

import errno
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from common import atomic
from common.atomic import atomic_write_bytes, atomic_write_text
from common.gguf_header import (GGUFArray, UnsafeGGUFError, array_strings, parse_header,
                                read_header)
from common.lock import FileLock, LockHeld
from common.paths import HOME_ENV, data_paths
from common.task import Cancelled, TaskHandle

ROOT = Path(__file__).resolve().parents[1]


# --- atomic writer ---------------------------------------------------------------------

def test_atomic_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "settings.json"
    target.write_text("old")
    atomic_write_text(target, '{"new": true}')
    assert target.read_text() == '{"new": true}'
    assert os.listdir(tmp_path) == ["settings.json"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_a_private_file_is_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        path = atomic_write_bytes(tmp_path / "secret", b"token", mode=0o600)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "library.json"
    target.write_text("old")

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    with pytest.raises(OSError) as caught:
        atomic_write_text(target, "new" * 1000)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["library.json"]


def test_a_write_into_a_missing_folder_names_the_target(tmp_path):
    target = tmp_path / "missing" / "x.json"
    with pytest.raises(FileNotFoundError) as caught:
        atomic_write_text(target, "{}")
    assert caught.value.filename == str(target)


# --- the lock --------------------------------------------------------------------------

HOLDER = """
import sys
from common.lock import FileLock
lock = FileLock(sys.argv[1]).acquire()
print("locked", flush=True)
sys.stdin.read()          # hold it until the test closes our stdin
lock.release()
"""


def _hold_in_another_process(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_the_lock_holds_across_processes_and_names_the_holder(tmp_path):
    path = tmp_path / "chats.sqlite3.lock"
    proc = _hold_in_another_process(path)
    try:
        with pytest.raises(LockHeld) as held:
            FileLock(path).acquire()
        assert held.value.holder == proc.pid
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    with FileLock(path) as lock:        # released by the other process: ours now
        assert lock.held
    assert not lock.held


def test_the_os_drops_the_lock_of_a_killed_process(tmp_path):
    path = tmp_path / "x.lock"
    proc = _hold_in_another_process(path)
    proc.kill()
    proc.wait(timeout=60)
    proc.stdin.close()
    FileLock(path).acquire().release()


def test_a_second_holder_in_the_same_process_is_refused(tmp_path):
    path = tmp_path / "x.lock"
    first = FileLock(path).acquire()
    with pytest.raises(LockHeld) as held:
        FileLock(path).acquire()
    assert held.value.holder == os.getpid()
    first.release()
    FileLock(path).acquire().release()


def test_a_job_lock_removes_its_file(tmp_path):
    path = tmp_path / "model.gguf.part.lock"
    with FileLock(path, unlink=True):
        assert path.exists()
    assert not path.exists()


# --- data paths ------------------------------------------------------------------------

def test_llamadesk_home_moves_every_folder_under_it(tmp_path):
    paths = data_paths({HOME_ENV: str(tmp_path)})
    assert {paths.models, paths.data, paths.config, paths.logs} == {
        tmp_path / "models", tmp_path / "data", tmp_path / "config", tmp_path / "logs"}
    assert paths.settings_file.parent == paths.config and paths.chats_db.parent == paths.data
    paths.ensure()
    assert all(p.is_dir() for p in (paths.models, paths.data, paths.config, paths.logs))


def test_without_llamadesk_home_the_folders_are_the_users_own():
    paths = data_paths({})
    assert "LlamaDesk" in str(paths.data) and "LlamaDesk" in str(paths.config)


# --- the GGUF header -------------------------------------------------------------------

def _s(b: bytes) -> bytes:
    return struct.pack("<Q", len(b)) + b


def _gguf() -> bytes:
    kvs = (_s(b"general.architecture") + struct.pack("<I", 8) + _s(b"llama")
           + _s(b"llama.block_count") + struct.pack("<II", 4, 2)
           + _s(b"tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 3) + _s(b"<s>") + _s(b"hi")
           + _s(b"<|eot_id|>"))
    tensors = (_s(b"a") + struct.pack("<I", 2) + struct.pack("<qq", 32, 2) + struct.pack("<IQ", 0, 0)
               + _s(b"b") + struct.pack("<I", 1) + struct.pack("<q", 64) + struct.pack("<IQ", 8, 256))
    head = b"GGUF" + struct.pack("<IQQ", 3, 2, 3) + kvs + tensors
    head += b"\0" * (-len(head) % 32)
    return head + b"\1" * (256 + 68)


def test_the_header_reader_gives_values_arrays_and_tensors(tmp_path):
    buf = _gguf()
    h = parse_header(buf)
    assert h.version == 3 and h.architecture == "llama" and h.values["llama.block_count"] == 2
    tokens = h.values["tokenizer.ggml.tokens"]
    assert isinstance(tokens, GGUFArray) and tokens.count == 3
    assert array_strings(buf, tokens, [1], find="<|eot_id|>") == ({1: "hi"}, 2)
    a, b = h.tensors
    assert (a.name, a.shape, a.nbytes, a.offset) == ("a", (32, 2), 256, h.data_offset)
    assert (b.name, b.nbytes, b.offset) == ("b", 68, h.data_offset + 256)
    path = tmp_path / "t.gguf"
    path.write_bytes(buf)
    assert read_header(path) == h
    path.write_bytes(buf[:-1])
    with pytest.raises(UnsafeGGUFError, match="^t.gguf: tensor b data .* lies outside"):
        read_header(path)
    assert read_header(path, data=False).tensors == h.tensors   # for a caller that words it itself
    path.write_bytes(b"")
    with pytest.raises(UnsafeGGUFError, match="empty"):
        read_header(path)


# --- task handles ----------------------------------------------------------------------

def test_a_step_handle_reports_on_its_own_and_cancels_with_its_job():
    job_reports, step_reports = [], []
    job = TaskHandle(on_progress=job_reports.append, clock=lambda: 0.0)
    step = job.linked(step_reports.append)
    step.progress(5, 10, unit="B")
    assert [r.done for r in step_reports] == [5] and job_reports == [] and job.last is None
    job.cancel()                                   # the job's cancel reaches the step
    assert step.cancelled
    with pytest.raises(Cancelled):
        step.check()
    other = TaskHandle()
    other.linked().cancel()                        # and a step's cancel reaches the job
    with pytest.raises(Cancelled):
        other.check()


def test_progress_has_rate_and_eta_from_the_handle_clock():
    now = [0.0]
    handle = TaskHandle(clock=lambda: now[0])
    now[0] = 2.0
    report = handle.progress(50, 150, unit="B")
    assert report.rate == 25 and report.eta_s == 4 and report.fraction == 1 / 3
    handle.restart_clock(done=50)                  # a resumed download: rate from here
    now[0] = 4.0
    assert handle.progress(100, 150).rate == 25
