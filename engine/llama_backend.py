"""In-process llama.cpp backend (llama-cpp-python)."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

from common.task import Cancelled, TaskHandle
from engine.types import ChatMessage, GenerationParams, ReplyStats


class LlamaCppBackend:
    """A GGUF loaded into llama.cpp, streaming chat replies token by token."""

    def __init__(self, model_path: str | os.PathLike, *, n_ctx: int = 8192,
                 n_gpu_layers: int = 0, n_threads: Optional[int] = None):
        self.model_path = Path(model_path)
        self.name = self.model_path.stem
        self.requested_n_ctx = n_ctx
        self.n_gpu_layers = n_gpu_layers
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self.last_stats: Optional[ReplyStats] = None
        self._llm = None

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    @property
    def n_ctx(self) -> int:
        return self._llm.n_ctx() if self._llm is not None else 0

    def load(self, handle: Optional[TaskHandle] = None) -> None:
        from llama_cpp import Llama

        if handle:
            handle.check()
            handle.progress(0, 1, message=f"Loading {self.name}")
        self._llm = Llama(
            model_path=str(self.model_path),
            n_ctx=self.requested_n_ctx,
            n_gpu_layers=self.n_gpu_layers,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            flash_attn=True,
            verbose=False,
        )
        if handle:
            handle.progress(1, 1, message=f"Loaded {self.name}")

    def unload(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream_chat(self, messages: Sequence[ChatMessage], params: GenerationParams,
                    handle: Optional[TaskHandle] = None) -> Iterator[str]:
        if self._llm is None:
            raise RuntimeError("no model is loaded")
        handle = handle or TaskHandle()
        stats = ReplyStats(n_ctx=self.n_ctx, gpu_layers=self.n_gpu_layers)
        self.last_stats = stats
        start = time.perf_counter()
        first = None
        stream = self._llm.create_chat_completion(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            stream=True, max_tokens=params.max_tokens, temperature=params.temperature,
            top_p=params.top_p, top_k=params.top_k, min_p=params.min_p,
            repeat_penalty=params.repeat_penalty, seed=params.seed,
            stop=list(params.stop) or None,
        )
        try:
            for chunk in stream:
                handle.check()
                choice = chunk["choices"][0]
                piece = choice["delta"].get("content")
                if piece:
                    if first is None:
                        first = time.perf_counter()
                        stats.ttft_s = first - start
                    stats.gen_tokens += 1
                    yield piece
                if choice.get("finish_reason"):
                    stats.stop_reason = "length" if choice["finish_reason"] == "length" else "eog"
        except Cancelled:
            stats.stop_reason = "cancelled"
        finally:
            stream.close()
            if first is not None and stats.gen_tokens > 1:
                stats.gen_tps = (stats.gen_tokens - 1) / max(1e-9, time.perf_counter() - first)
