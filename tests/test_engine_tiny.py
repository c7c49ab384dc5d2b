"""The llama.cpp backend on the tiny converted Llama 3 checkpoint: BOS once, abortable prompts."""
from __future__ import annotations

import pytest

from common.task import TaskHandle
from engine.llama_backend import LlamaCppBackend
from engine.types import ChatMessage, GenerationParams


class CancelDuringPrompt(TaskHandle):
    """Cancels itself after llama.cpp polled it ``after`` times from inside llama_decode."""

    def __init__(self, after: int):
        super().__init__()
        self.after, self.polls = after, 0

    @property
    def cancelled(self) -> bool:
        self.polls += 1
        if self.polls > self.after:
            self.cancel()
        return super().cancelled


@pytest.fixture(scope="module")
def tiny(tiny_gguf_factory):
    backend = LlamaCppBackend(tiny_gguf_factory("plain", "f16"), n_ctx=2048, n_threads=1)
    backend.load()
    yield backend
    backend.unload()


def test_bos_exactly_once_with_the_llama3_template(tiny):
    rt = tiny._rt
    assert rt.adds_bos and not tiny.template.is_builtin
    tokens = tiny.prompt_tokens([ChatMessage("system", "s"), ChatMessage("user", "hello")])
    assert tokens[0] == rt.bos and tokens.count(rt.bos) == 1
    assert rt.piece(tokens[1], special=True) == b"<|start_header_id|>"


def test_long_prompt_evaluation_is_interrupted_inside_llama_decode(tiny):
    msgs = [ChatMessage("user", "the quick brown fox jumps over the lazy dog " * 150)]
    n_prompt = len(tiny.prompt_tokens(msgs))
    assert n_prompt > 2 * tiny._rt.n_batch
    handle = CancelDuringPrompt(after=60)
    assert list(tiny.stream_chat(msgs, GenerationParams(max_tokens=4), handle)) == []
    assert tiny.last_stats.stop_reason == "cancelled"
    assert handle.polls > 60  # llama.cpp itself asked, mid-evaluation
    assert len(tiny.cache_tokens) < n_prompt
    kept = len(tiny.cache_tokens)
    assert kept == tiny._rt.kv_pos_max() + 1
    # The next request continues from what was kept and completes.
    list(tiny.stream_chat(msgs, GenerationParams(max_tokens=4, temperature=0)))
    assert tiny.last_stats.stop_reason in ("length", "eog")
    assert tiny.last_stats.prompt_evaluated == n_prompt - kept
