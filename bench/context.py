"""Time to first token once the window is full, and the quality cost of the KV shift.

Three ways to answer the same short message:
  first turn  - the message alone in a fresh window (the anchor);
                (also timed: the message at the same cache depth, with room to spare, which
                is what any turn costs that deep in the window: attention reads every
                cached token, so a 135M model pays several times its depth-0 cost at 8K)
  engine      - after the window overflowed: oldest turns dropped, the cache shifted;
  naive       - fit the history, re-render the whole prompt, call llama-cpp-python's
                create_chat_completion. Its prefix cache cannot help once the start of
                the history moved (it would match the system prompt only, a dozen
                tokens), so it is timed once, from a fresh model, on the fitted prompt.
The window is read in full once; each further round tops the cached history up to
the brim with a reply (a few hundred tokens) so that the next message overflows it
again. The naive run's next-token distribution is an exact recompute of the prompt
the engine reached by shifting, so it also gives the shift's top-1 agreement and
KL divergence.

    python bench/context.py [--model GGUF] [--n-ctx 8192] [--threads N] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.context_window import reply_reserve  # noqa: E402
from engine.llama_backend import LlamaCppBackend, default_threads  # noqa: E402
from engine.types import ChatMessage, GenerationParams  # noqa: E402

M = ChatMessage
PARAMS = GenerationParams(max_tokens=256, temperature=0)
QUESTION = "What is the capital of France?"
SYSTEM = M("system", "You are a helpful assistant.")


def long_history(n_turns: int) -> list[ChatMessage]:
    msgs = [SYSTEM]
    for i in range(n_turns):
        msgs.append(M("user", f"Tell me about topic number {i}. " + "Please be detailed. " * 20))
        msgs.append(M("assistant", f"Topic {i} is interesting. " + "Here are more details about it. " * 25))
    return msgs


def ttft(backend, msgs) -> float:
    start = time.perf_counter()
    for _ in backend.stream_chat(msgs, PARAMS):
        break
    return time.perf_counter() - start


def top_up(backend, history: list[ChatMessage]) -> list[ChatMessage]:
    """``history`` plus a reply that fills the window to the last token the fitter allows.

    The question that follows then overflows the window, and the oldest turn has to
    leave: the case where other apps re-read the whole history.
    """
    budget = backend.n_ctx - reply_reserve(PARAMS.max_tokens, backend.n_ctx)
    slack = budget - len(backend.prompt_tokens(history + [M("assistant", "")]))
    # Varied text: a reply of one repeated word is a degenerate history whose cached
    # states lean on whatever came before it (the shift's KL was 13 nats on one).
    points = max(1, slack // 4)
    while True:
        reply = M("assistant", "Summary:" + "".join(f" point {i} holds," for i in range(points)))
        if len(backend.prompt_tokens(history + [reply])) <= budget or points <= 1:
            break
        points -= 1
    backend.prefill(history + [reply], PARAMS)
    return history + [reply]


def first_history(backend) -> list[ChatMessage]:
    budget = backend.n_ctx - reply_reserve(PARAMS.max_tokens, backend.n_ctx)
    turns = 1
    while len(backend.prompt_tokens(long_history(turns + 1))) < budget:
        turns += 1
    return long_history(turns - 1) + [M("user", "Now summarise everything.")]


def naive(model: Path, n_ctx: int, threads: int, fitted: list[ChatMessage]):
    """TTFT of a full re-read through llama-cpp-python, its prompt tokens and last logits."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(model), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                verbose=False)
    try:
        start = time.perf_counter()
        for _ in llm.create_chat_completion([{"role": m.role, "content": m.content} for m in fitted],
                                            stream=True, max_tokens=1, temperature=0):
            break
        elapsed = time.perf_counter() - start
        import llama_cpp

        # The sampler works on a copy, so the context still holds the prompt's last logits.
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
        return elapsed, list(llm.input_ids[:llm.n_tokens]), logits.astype(np.float64)
    finally:
        llm.close()


def _eval_ms(stats) -> float:
    return stats.prompt_evaluated / stats.prompt_tps * 1000 if stats.prompt_tps else 0.0


def kl_and_agreement(full: np.ndarray, shifted: np.ndarray) -> tuple[bool, float]:
    la, lb = full - full.max(), shifted - shifted.max()
    la -= np.log(np.exp(la).sum())
    lb -= np.log(np.exp(lb).sum())
    return bool(full.argmax() == shifted.argmax()), float(np.sum(np.exp(la) * (la - lb)))


def main() -> int:
    from models.bundled import bundled_model_path

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--n-ctx", type=int, default=8192)
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    model = args.model or bundled_model_path()
    t_start = time.perf_counter()
    print(f"model {model.name}, n_ctx {args.n_ctx}, {args.threads} threads; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    first, after, same_depth = [], [], []
    b = LlamaCppBackend(model, n_ctx=args.n_ctx, n_threads=args.threads)
    b.load()
    try:
        print(f"flash attention: {({None: 'auto', True: 'on', False: 'off'})[b.flash_attn_on]}")
        t0 = time.perf_counter()
        history = top_up(b, first_history(b))
        read_s = time.perf_counter() - t0
        print(f"window read once: {len(b.cache_tokens)} tokens in {read_s:.1f} s", flush=True)
        shifted_logits = None
        for r in range(args.rounds):
            # The anchor, interleaved: the same message in a fresh window (a second
            # context, so the full one stays cached).
            fresh = LlamaCppBackend(model, n_ctx=args.n_ctx, n_threads=args.threads)
            fresh.load()
            try:
                ttft(fresh, [SYSTEM, M("user", "Hello.")])  # llama.cpp's one-time set-up on first use
                fresh.reset_cache()
                first.append(ttft(fresh, [SYSTEM, M("user", QUESTION)]))
                first_eval = fresh.last_stats.prompt_evaluated
                first_eval_ms = _eval_ms(fresh.last_stats)
            finally:
                fresh.unload()
            msgs = history + [M("user", QUESTION)]
            after.append(ttft(b, msgs))
            s = b.last_stats
            print(f"round {r + 1} (load {os.getloadavg()[0]:.2f}): first turn {first[-1] * 1000:.0f} ms "
                  f"({first_eval} tokens evaluated in {first_eval_ms:.0f} ms); after overflow "
                  f"{after[-1] * 1000:.0f} ms: dropped {len(s.dropped)} messages, prompt "
                  f"{s.prompt_tokens} tokens, evaluated {s.prompt_evaluated} in {_eval_ms(s):.0f} ms "
                  "(the rest: fitting, rendering, tokenizing, the shift, the first token)", flush=True)
            fitted = list(b.last_fit.messages)
            if r == 0:
                b.prefill(msgs, PARAMS)  # the cache exactly as the overflow turn left it
                shifted_logits = b.next_token_logits().astype(np.float64)
                shifted_tokens = b.cache_tokens
                fitted_first = fitted
            # A second anchor: the same message at the same depth with room to spare (no
            # overflow, nothing shifted), i.e. what any turn costs this deep in the window.
            deep = fitted + [M("assistant", "Paris."), M("user", QUESTION)]
            same_depth.append(ttft(b, deep))
            print(f"  same depth{', OVERFLOWED' if b.last_stats.dropped else ', no overflow'}: {same_depth[-1] * 1000:.0f} ms, evaluated "
                  f"{b.last_stats.prompt_evaluated} at depth {b.last_stats.prompt_tokens} in "
                  f"{_eval_ms(b.last_stats):.0f} ms", flush=True)
            history = top_up(b, list(b.last_fit.messages))
    finally:
        b.unload()
    naive_s, naive_tokens, naive_logits = naive(model, args.n_ctx, args.threads, fitted_first)
    med_first, med_after = statistics.median(first), statistics.median(after)
    print(f"\n| case | TTFT (median of {args.rounds}) | / first turn |")
    print("|---|---|---|")
    print(f"| first turn | {med_first * 1000:.0f} ms | 1.00x |")
    med_deep = statistics.median(same_depth)
    print(f"| same depth, no overflow | {med_deep * 1000:.0f} ms | {med_deep / med_first:.2f}x |")
    print(f"| engine after overflow | {med_after * 1000:.0f} ms | {med_after / med_first:.2f}x |")
    print(f"| naive after overflow (1 run) | {naive_s * 1000:.0f} ms | {naive_s / med_first:.2f}x |")
    print(f"\nengine after overflow / same depth without overflow: {med_after / med_deep:.2f}")
    print(f"engine after overflow / naive: {med_after / naive_s:.3f} "
          f"({naive_s / med_after:.0f}x faster)")
    if naive_tokens == shifted_tokens:
        agree, kl = kl_and_agreement(naive_logits, shifted_logits)
        print(f"shift quality vs full recompute ({len(naive_tokens)} tokens): top-1 "
              f"{'agrees' if agree else 'differs'}, KL {kl:.5f} nats")
    else:
        print("shift quality: llama-cpp-python tokenized the prompt differently "
              f"({len(naive_tokens)} vs {len(shifted_tokens)} tokens); not compared")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"bench took {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
