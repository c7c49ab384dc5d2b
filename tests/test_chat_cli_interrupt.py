"""Ctrl+C in an interactive `chat`: it stops the reply, not the session.

A real `python main.py chat` child with the SmolLM2 demo model; SIGINT is sent once
the reply has begun streaming (seen on stdout), never after a sleep.
"""
from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LONG_ASK = "Write a long story about a llama who travels the world.\n"   # ~500 tokens


class Chat:
    """The child, with its stdout and stderr read on threads into queues."""

    def __init__(self, model: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "main.py", "chat", "--model", str(model), "--temperature", "0",
             "--seed", "1", "--max-tokens", "1500", "--threads", "1", "--n-ctx", "4096", "--stats", "json"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out: queue.Queue = queue.Queue()
        self.err_lines: queue.Queue = queue.Queue()
        self.stdout = b""
        threading.Thread(target=self._pump_out, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump_out(self) -> None:
        while chunk := self.proc.stdout.read1(4096):
            self.out.put(chunk)
        self.out.put(None)

    def _pump_err(self) -> None:
        for line in self.proc.stderr:
            self.err_lines.put(line.decode("utf-8", "replace"))
        self.err_lines.put(None)

    def read_until(self, done, timeout: float = 120) -> None:
        """Collect stdout until ``done(self.stdout)`` holds (or the child's stdout ends)."""
        while not done(self.stdout):
            chunk = self.out.get(timeout=timeout)
            if chunk is None:
                raise AssertionError(f"the chat ended early: {self.stdout!r}")
            self.stdout += chunk

    def next_stats(self, timeout: float = 120) -> dict:
        while True:
            line = self.err_lines.get(timeout=timeout)
            assert line is not None, "stderr closed before the reply's statistics"
            if line.startswith("{"):
                return json.loads(line)

    def say(self, text: str) -> None:
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def chat(smollm2_path):
    c = Chat(smollm2_path)
    yield c
    c.close()


def test_ctrl_c_stops_the_reply_keeps_it_and_returns_to_the_prompt(chat):
    chat.read_until(lambda out: out.endswith(b"> "))
    chat.say(LONG_ASK)
    chat.read_until(lambda out: len(out.split(b"> ")[1]) >= 20)  # the reply is streaming
    chat.proc.send_signal(signal.SIGINT)
    first = chat.next_stats()
    assert first["stop_reason"] == "cancelled" and first["gen_tokens"] > 0
    chat.read_until(lambda out: out.endswith(b"\n> "))         # back at the prompt
    assert chat.proc.poll() is None
    partial = chat.stdout.split(b"> ")[1].strip()
    assert len(partial) >= 20
    chat.say("Thanks.\n")
    second = chat.next_stats()
    assert second["stop_reason"] != "cancelled"
    # The stopped reply is part of the conversation: the second prompt holds it.
    assert second["prompt_tokens"] >= first["prompt_tokens"] + first["gen_tokens"]
    chat.read_until(lambda out: out.endswith(b"\n> "))
    chat.proc.stdin.close()                                       # Ctrl+D ends the chat
    assert chat.proc.wait(timeout=60) == 0


def test_ctrl_c_at_the_prompt_ends_the_chat(chat):
    chat.read_until(lambda out: out.endswith(b"> "))
    chat.proc.send_signal(signal.SIGINT)
    assert chat.proc.wait(timeout=60) == 0
    err = "".join(iter(lambda: chat.err_lines.get(timeout=60), None))
    assert "Traceback" not in err and "interrupted" not in err
