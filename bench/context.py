"""Time to first token once the window is full, and the quality cost of the KV shift.

Three ways to answer the same short message:
  first turn  - the message alone in a fresh window (the anchor);
  engine      - after the window overflowed: oldest turns dropped, the cache shifted;
  naive       - fit the history, re-render the whole prompt, call llama-cpp-python's
                create_chat_completion (its prefix cache cannot help once the start moved).
Also prints the next-token agreement and KL divergence of the shifted cache against
a full recompute of the same prompt.

    python bench/context.py [--model GGUF] [--n-ctx 8192] [--threads N] [--rounds 2]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.llama_backend import LlamaCppBackend, default_threads  # noqa: E402
from engine.types import ChatMessage, GenerationParams  # noqa: E402

M = ChatMessage
PARAMS = GenerationParams(max_tokens=256, temperature=0)
QUESTION = "What is the capital of France?"


def long_history(n_turns: int) -> list[ChatMessage]:
    msgs = [M("system", "You are a helpful assistant.")]
    for i in range(n_turns):
        msgs.append(M("user", f"Tell me about topic number {i}. " + "Please be detailed. " * 20))
        msgs.append(M("assistant", f"Topic {i} is interesting. " + "Here are more details about it. " * 25))
    return msgs


def ttft(backend, msgs) -> float:
    start = time.perf_counter()
    for _ in backend.stream_chat(msgs, PARAMS):
        break
    return time.perf_counter() - start


def fill_to_overflow(backend, n_ctx: int) -> list[ChatMessage]:
    """A cached history filled to the last token the window allows, ending in a long reply.

    The question that follows therefore overflows the window by a few tokens, and the
    oldest turn has to leave: the case where other apps re-read the whole history.
    """
    budget = n_ctx - PARAMS.max_tokens
    turns = 1
    while len(backend.prompt_tokens(long_history(turns + 1))) < budget:
        turns += 1
    history = long_history(turns - 1) + [M("user", "Now summarise everything.")]
    slack = budget - len(backend.prompt_tokens(history + [M("assistant", "")]))
    words = max(1, slack - 4)
    while True:
        reply = M("assistant", "Summary:" + " details" * words)
        if len(backend.prompt_tokens(history + [reply])) <= budget or words <= 1:
            break
        words -= 1
    backend.prefill(history + [reply], PARAMS)
    return history + [reply]


def naive_ttft(model: Path, n_ctx: int, threads: int, before: list, after: list) -> float:
    from llama_cpp import Llama

    llm = Llama(model_path=str(model), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                flash_attn=True, verbose=False)
    try:
        as_dicts = lambda ms: [{"role": m.role, "content": m.content} for m in ms]  # noqa: E731
        for _ in llm.create_chat_completion(as_dicts(before), max_tokens=1):  # warm its prefix cache
            pass
        start = time.perf_counter()
        for _ in llm.create_chat_completion(as_dicts(after), stream=True, max_tokens=1):
            break
        return time.perf_counter() - start
    finally:
        llm.close()


def shift_kl(model: Path, backend: LlamaCppBackend, threads: int) -> tuple[bool, float]:
    fresh = LlamaCppBackend(model, n_ctx=backend.n_ctx, n_threads=threads)
    fresh.load()
    try:
        fresh.prefill(backend.last_fit.messages, PARAMS)
        a = fresh.next_token_logits().astype(np.float64)
        b = backend.next_token_logits().astype(np.float64)
        la, lb = a - a.max(), b - b.max()
        la -= np.log(np.exp(la).sum())
        lb -= np.log(np.exp(lb).sum())
        return bool(a.argmax() == b.argmax()), float(np.sum(np.exp(la) * (la - lb)))
    finally:
        fresh.unload()


def main() -> int:
    from models.bundled import bundled_model_path

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--n-ctx", type=int, default=8192)
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    model = args.model or bundled_model_path()
    print(f"model {model.name}, n_ctx {args.n_ctx}, {args.threads} threads")
    rows = {"first turn": [], "engine after overflow": [], "naive after overflow": []}
    quality = []
    for r in range(args.rounds):
        b = LlamaCppBackend(model, n_ctx=args.n_ctx, n_threads=args.threads)
        b.load()
        try:
            rows["first turn"].append(ttft(b, [M("system", "You are a helpful assistant."), M("user", QUESTION)]))
            b.reset_cache()
            history = fill_to_overflow(b, args.n_ctx)
            cached = len(b.cache_tokens)
            msgs = history + [M("user", QUESTION)]
            rows["engine after overflow"].append(ttft(b, msgs))
            s = b.last_stats
            print(f"round {r + 1}: cached {cached} tokens; overflow turn dropped {len(s.dropped)} messages, "
                  f"prompt {s.prompt_tokens} tokens, evaluated {s.prompt_evaluated}", flush=True)
            b.prefill(msgs, PARAMS)
            quality.append(shift_kl(model, b, args.threads))
            fitted = list(b.last_fit.messages)
        finally:
            b.unload()
        rows["naive after overflow"].append(naive_ttft(model, args.n_ctx, args.threads, history, fitted))
        print("  " + ", ".join(f"{k} {v[-1] * 1000:.0f} ms" for k, v in rows.items()), flush=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print("\n| case | TTFT (median) | / first turn |")
    print("|---|---|---|")
    for k, v in med.items():
        print(f"| {k} | {v * 1000:.0f} ms | {v / med['first turn']:.2f}x |")
    print(f"\nshift quality vs full recompute: top-1 agreement {sum(q[0] for q in quality)}/{len(quality)}, "
          f"KL {', '.join(f'{q[1]:.5f}' for q in quality)} nats")
    return 0


if __name__ == "__main__":
    sys.exit(main())
