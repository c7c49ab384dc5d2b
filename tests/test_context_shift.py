"""Quality of the KV shift: next-token distributions after dropping turns vs a full recompute."""
from __future__ import annotations

import numpy as np

from engine.llama_backend import LlamaCppBackend
from engine.types import ChatMessage, GenerationParams


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64) - x.max()
    return x - np.log(np.exp(x).sum())


def shift_quality(model_path, n_ctx: int, turns: int, max_tokens: int = 12, shifted: int = 0):
    """Per shifted turn: (top-1 agrees, KL(full || shifted)) of the next-token distribution.

    Stops after ``shifted`` shifted turns when given (each costs a full recompute).
    """
    live = LlamaCppBackend(model_path, n_ctx=n_ctx, n_threads=1)
    fresh = LlamaCppBackend(model_path, n_ctx=n_ctx, n_threads=1)
    live.load()
    fresh.load()
    params = GenerationParams(max_tokens=max_tokens, temperature=0)
    results = []
    try:
        msgs = [ChatMessage("system", "You are a helpful assistant.")]
        for i in range(turns):
            if shifted and len(results) >= shifted:
                break
            msgs.append(ChatMessage("user", f"Fact {i}: say something true about the number {i + 3}."))
            shifts = live.shift_count
            live.prefill(msgs, params)
            if live.shift_count > shifts:
                fresh.reset_cache()
                fresh.prefill(live.last_fit.messages, params)
                assert fresh.cache_tokens == live.cache_tokens
                a, b = log_softmax(fresh.next_token_logits()), log_softmax(live.next_token_logits())
                kl = float(np.sum(np.exp(a) * (a - b)))
                results.append((int(a.argmax() == b.argmax()), kl))
            msgs.append(ChatMessage("assistant", "".join(live.stream_chat(msgs, params))))
    finally:
        live.unload()
        fresh.unload()
    return results


def test_shifted_cache_agrees_with_full_recompute(smollm2_path, capsys):
    results = shift_quality(smollm2_path, n_ctx=256, turns=30, max_tokens=6, shifted=4)
    assert len(results) >= 4
    agree = sum(r[0] for r in results) / len(results)
    kls = [r[1] for r in results]
    with capsys.disabled():
        print(f"\nKV shift vs full recompute over {len(results)} shifted turns: top-1 agreement "
              f"{agree:.0%}, KL mean {np.mean(kls):.4f}, max {max(kls):.4f} nats")
    assert agree >= 0.8
    assert np.mean(kls) < 0.5
