"""Crash safety and two processes on one chat database, with real child processes.

The child (tests/fixtures/chat_writer.py) chats into the store and reports each step
through a pipe; the test kills it with SIGKILL at a random report and checks what
survived. Nothing here sleeps: the test only blocks reading the child's pipe.
"""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from chat.records import (COMPLETE, INTERRUPTED, STREAMING, StoreLockedError,
                        StoreReadOnlyError)
from chat.store import ChatStore
from tests.fixtures.chat_writer import reply_pieces, user_text

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(os.name == "nt", reason="uses SIGKILL")


def start_writer(db: Path, seed: int, turns: int, pieces: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.chat_writer", str(db), "--seed", str(seed),
         "--turns", str(turns), "--pieces", str(pieces)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)


def kill_and_collect(proc: subprocess.Popen, lines: list[str]) -> list[str]:
    proc.send_signal(signal.SIGKILL)
    rest, _ = proc.communicate()
    return lines + rest.splitlines()


class RunLog:
    """What the child reported, parsed."""

    def __init__(self, lines: list[str]):
        self.users: list[int] = []
        self.replies: list[int] = []
        self.done: set[int] = set()
        self.pieces: dict[int, list[float]] = {}     # reply id -> times of reported pieces
        self.exited = False
        for line in lines:
            kind, *rest = line.split()
            if kind == "user":
                self.users.append(int(rest[0]))
            elif kind == "reply":
                self.replies.append(int(rest[0]))
                self.pieces[self.replies[-1]] = []
            elif kind == "piece":
                self.pieces[self.replies[-1]].append(float(rest[1]))
            elif kind == "done":
                self.done.add(int(rest[0]))
            elif kind == "exit":
                self.exited = True


def check_reply(msg, pieces: list[str], times: list[float], interval: float = 1.0):
    """The saved text is a prefix of the stream, missing only pieces handed over within
    ``interval`` of the last reported one. Returns (seconds lost, characters lost)."""
    prefix_ends = [0]
    for p in pieces:
        prefix_ends.append(prefix_ends[-1] + len(p))
    saved = len(msg.content)
    assert saved in prefix_ends, "saved text does not end at a piece boundary"
    assert msg.content == "".join(pieces)[:saved], "saved text is not what was streamed"
    n_saved = prefix_ends.index(saved)
    if n_saved >= len(times):
        return 0.0, 0
    lost_s = times[-1] - times[n_saved]
    assert lost_s < interval, f"lost {lost_s:.3f} s of streamed text (limit {interval} s)"
    return lost_s, prefix_ends[len(times)] - saved


@pytest.mark.timeout(180)
def test_sigkill_at_random_moments_loses_at_most_the_last_second(tmp_path):
    rng = random.Random(6)
    db = tmp_path / "chats.sqlite3"
    runs, max_lost_s, max_lost_chars, interrupted, killed_mid_reply = 60, 0.0, 0, 0, 0
    for run in range(runs):
        turns, n_pieces = 2, rng.randint(40, 160)
        proc = start_writer(db, run, turns, n_pieces)
        expected_lines = 3 + turns * (3 + n_pieces + n_pieces // 20)
        # Now and then die early: while opening, creating, committing the question.
        target = rng.randint(0, 4) if rng.random() < 0.15 else rng.randint(0, expected_lines)
        lines = []
        while len(lines) < target:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
        lines = kill_and_collect(proc, lines)
        if proc.returncode not in (-signal.SIGKILL, 0):
            pytest.fail(f"run {run}: child failed ({proc.returncode}): {proc.stderr}")
        log = RunLog(lines)

        with ChatStore.open(db) as store:
            assert store.integrity_check() == "ok", f"run {run}"
            assert store._rows("PRAGMA foreign_key_check") == []
            for turn, user_id in enumerate(log.users):
                msg = store.get_message(user_id)      # never missing once reported
                assert msg.content == user_text(run, turn) and msg.state == COMPLETE
            for turn, reply_id in enumerate(log.replies):
                msg = store.get_message(reply_id)
                pieces = reply_pieces(run, turn, n_pieces)
                if reply_id in log.done:
                    assert msg.state == COMPLETE and msg.content == "".join(pieces)
                    continue
                killed_mid_reply += 1
                assert msg.state == INTERRUPTED and reply_id in store.recovered
                lost_s, lost_chars = check_reply(msg, pieces, log.pieces[reply_id])
                max_lost_s, max_lost_chars = max(max_lost_s, lost_s), max(max_lost_chars, lost_chars)
            interrupted += len(store.recovered)
            assert not store._rows("SELECT id FROM messages WHERE state = ?", (STREAMING,))
    print(f"\nkill test: {runs} runs, {killed_mid_reply} killed mid-reply, {interrupted} "
          f"replies recovered as interrupted, max text lost {max_lost_s:.3f} s of the "
          f"1 s save interval ({max_lost_chars} characters)")
    assert killed_mid_reply >= runs // 3


@pytest.mark.timeout(60)
def test_second_process_is_refused_for_writing_reads_without_blocking_the_writer(tmp_path):
    db = tmp_path / "chats.sqlite3"
    ChatStore.open(db).close()
    proc = start_writer(db, seed=1, turns=1, pieces=100_000)
    try:
        lines = []
        while sum(ln.startswith("saved") for ln in lines) < 2:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line.strip())

        with pytest.raises(StoreLockedError) as err:
            ChatStore.open(db)
        assert f"process {proc.pid}" in str(err.value) and "read-only" in str(err.value)

        with ChatStore.open(db, read_only=True) as reader:
            log = RunLog(lines)
            conv = reader.list()[-1]
            path = reader.active_path(conv.id)
            assert [m.id for m in path] == [log.users[0], log.replies[0]]
            assert path[1].state == STREAMING        # a reader does not "recover" it
            assert len(path[1].content) >= int(lines[-1].split()[1])
            with pytest.raises(StoreReadOnlyError):
                reader.create()

        # A reader holding a transaction open does not block the writer's commits.
        raw = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
        raw.execute("BEGIN")
        seen = raw.execute("SELECT length(content) FROM messages WHERE id = ?",
                           (log.replies[0],)).fetchone()[0]
        saves = 0
        while saves < 3:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            saves += line.startswith("saved")
        assert raw.execute("SELECT length(content) FROM messages WHERE id = ?",
                           (log.replies[0],)).fetchone()[0] == seen   # its snapshot
        raw.execute("COMMIT")
        assert raw.execute("SELECT length(content) FROM messages WHERE id = ?",
                           (log.replies[0],)).fetchone()[0] > seen
        raw.close()
    finally:
        kill_and_collect(proc, [])

    with ChatStore.open(db) as store:             # the lock died with the process
        assert store.integrity_check() == "ok"
        assert store.recovered == [log.replies[0]]
        assert store.get_message(log.replies[0]).state == INTERRUPTED


def test_two_stores_in_one_process_are_refused_and_the_lock_is_released_on_close(tmp_path):
    db = tmp_path / "chats.sqlite3"
    first = ChatStore.open(db)
    with pytest.raises(StoreLockedError):
        ChatStore.open(db)
    first.close()
    ChatStore.open(db).close()
    with ChatStore.open(db, read_only=True) as reader:   # no writer, no -wal/-shm left
        assert reader.list() == []
