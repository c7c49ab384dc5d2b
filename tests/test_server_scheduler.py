"""The engine's batch scheduler without HTTP: cancellation within one token, grammar
sampling, slot reuse, and a request that fails leaving the others running."""
from __future__ import annotations

import threading

import pytest

from engine.llama_backend import LlamaCppBackend
from engine.scheduler import BatchScheduler, ContextLengthExceeded, GenerationRequest
from engine.types import ChatMessage, GenerationParams


@pytest.fixture(scope="module")
def scheduler(smollm2_path):
    backend = LlamaCppBackend(smollm2_path, n_ctx=2 * 384, n_gpu_layers=0, n_threads=1, n_seq_max=2)
    backend.load()
    s = BatchScheduler(backend, parallel=2, slot_ctx=384)
    s.start()
    yield s
    assert s.stop()
    backend.unload()


class Collector:
    def __init__(self, cancel_after: int = 0):
        self.texts: list[str] = []
        self.end = None
        self.done = threading.Event()
        self.cancel_after = cancel_after
        self.req = None

    def __call__(self, kind, value):
        if kind == "text":
            self.texts.append(value)
            if self.cancel_after and len(self.texts) == self.cancel_after:
                self.req.handle.cancel()
        elif kind in ("done", "error"):
            self.end = (kind, value)
            self.done.set()


def run(scheduler, **kw) -> Collector:
    col = Collector(kw.pop("cancel_after", 0))
    col.req = GenerationRequest(on_event=col, **kw)
    scheduler.submit(col.req)
    assert col.done.wait(120)
    return col


def test_cancel_ends_the_reply_within_one_token(scheduler):
    col = run(scheduler, params=GenerationParams(max_tokens=200, temperature=0), prompt="1, 2, 3, 4,",
              cancel_after=3)
    kind, stats = col.end
    assert kind == "done" and stats.stop_reason == "cancelled"
    assert stats.gen_tokens <= 4 and len(col.texts) == 3


def test_grammar_constrains_the_reply(scheduler):
    grammar = 'root ::= "yes" | "no"'
    col = run(scheduler, params=GenerationParams(max_tokens=10, temperature=0.8, seed=3),
              messages=[ChatMessage("user", "Is the sky blue?")], grammar=grammar)
    assert "".join(col.texts) in ("yes", "no") and col.end[1].stop_reason == "eog"


def test_bad_grammar_and_strict_overflow_fail_alone(scheduler):
    col = run(scheduler, params=GenerationParams(max_tokens=4), messages=[ChatMessage("user", "hi")],
              grammar="root ::= ((")
    assert col.end[0] == "error" and "format" in str(col.end[1])
    long = [ChatMessage("user", "word " * 300), ChatMessage("assistant", "ok " * 150), ChatMessage("user", "and?")]
    col = run(scheduler, params=GenerationParams(max_tokens=16), messages=long, strict=True)
    assert col.end[0] == "error" and isinstance(col.end[1], ContextLengthExceeded)
    col = run(scheduler, params=GenerationParams(max_tokens=4, temperature=0), messages=long)
    assert col.end[0] == "done" and col.end[1].dropped == (0, 1)


def test_next_turn_reuses_its_slot_cache(scheduler):
    msgs = [ChatMessage("system", "You are brief. " * 20), ChatMessage("user", "Say one word.")]
    first = run(scheduler, params=GenerationParams(max_tokens=3, temperature=0), messages=msgs)
    again = run(scheduler, params=GenerationParams(max_tokens=3, temperature=0),
                messages=msgs + [ChatMessage("assistant", "".join(first.texts)), ChatMessage("user", "Another.")])
    stats = again.end[1]
    assert stats.prompt_evaluated < stats.prompt_tokens // 2


def test_a_scheduler_still_inside_a_step_says_so_and_keeps_its_batch():
    """stop() that times out tells the model's owner not to free what the thread still uses."""
    from types import SimpleNamespace

    from common.task import TaskHandle

    backend = SimpleNamespace(runtime=SimpleNamespace(n_ctx=256, n_batch=8))
    s = BatchScheduler(backend, parallel=1)
    entered, release = threading.Event(), threading.Event()

    def stuck_admit():
        entered.set()
        release.wait(60)

    s._admit = stuck_admit
    s.start()
    s.submit(SimpleNamespace(handle=TaskHandle(), on_event=lambda *a: None))
    assert entered.wait(60)
    try:
        assert s.stop(timeout=0.05) is False
        assert s._batch is not None            # the running step's batch is not freed under it
    finally:
        release.set()
    s._thread.join(60)
    assert not s._thread.is_alive()
    assert s.stop() is True and s._batch is None
