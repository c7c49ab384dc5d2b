"""Generation speed of the engine against llama.cpp's llama-bench and llama-cpp-python.

Every runner uses the same GGUF, threads, flash-attention setting and number of
generated tokens, and generates from the same cache depth (the chat prompt's length:
llama-bench's ``-d``), since each token attends to everything before it. Runners are
interleaved in one run, in a rotating order (this machine's speed drifts by ~10%
between runs). Prints tokens/s per round, the load average, and ratios of the medians.

    python bench/generation.py [--model GGUF] [--threads 1] [--tokens 200] [--rounds 3] [--gpu]

Runners:
  llama-bench        llama.cpp's own tg test (no sampling), same flash-attention setting
  llama-bench FA on  the same with flash attention on (llama.cpp's auto on every backend)
  raw loop           llama_decode + a greedy C sampler through the bindings, no engine code
  engine             LlamaCppBackend.stream_chat with the default sampling chain
  llcpp default      llama-cpp-python's create_chat_completion(stream=True), its defaults

--gpu offloads all layers (a CUDA or Metal build of llama-cpp-python; llama-bench
is then built with the same backend).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = "Write a very long and detailed story about a lighthouse keeper and a storm."


def _rate(stamps: list[float]) -> float:
    """Tokens/s over the intervals between pieces (each one decode + one sample)."""
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0


def _n_ctx(depth: int, tokens: int) -> int:
    return -(-(depth + tokens + 16) // 256) * 256  # llama.cpp pads the window to 256


class Setup:
    def __init__(self, model: Path, threads: int, tokens: int, gpu: bool):
        from engine.llama_backend import LlamaCppBackend
        from engine.types import ChatMessage

        self.model, self.threads, self.tokens, self.gpu = model, threads, tokens, gpu
        self.messages = [ChatMessage("user", PROMPT)]
        b = LlamaCppBackend(model, n_ctx=512, n_threads=threads, n_gpu_layers=-1 if gpu else 0)
        b.load()
        try:
            self.prompt = b.prompt_tokens(self.messages)
            self.flash_attn = b.flash_attn_on
        finally:
            b.unload()
        self.depth = len(self.prompt)
        self.n_ctx = _n_ctx(self.depth, tokens)


def engine_run(s: Setup) -> tuple[float, int]:
    from engine.llama_backend import LlamaCppBackend
    from engine.types import GenerationParams

    b = LlamaCppBackend(s.model, n_ctx=s.n_ctx, n_threads=s.threads, n_gpu_layers=-1 if s.gpu else 0)
    b.load()
    try:
        stamps = []
        for _ in b.stream_chat(s.messages, GenerationParams(max_tokens=s.tokens, seed=1)):
            stamps.append(time.perf_counter())
        return _rate(stamps), b.last_stats.gen_tokens
    finally:
        b.unload()


def raw_loop_run(s: Setup) -> tuple[float, int]:
    import llama_cpp

    from engine.llama_runtime import LlamaRuntime

    rt = LlamaRuntime(s.model, n_ctx=s.n_ctx, n_gpu_layers=-1 if s.gpu else 0, n_threads=s.threads,
                      flash_attn=s.flash_attn)
    sampler = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    llama_cpp.llama_sampler_chain_add(sampler, llama_cpp.llama_sampler_init_greedy())
    try:
        rt.decode(s.prompt, 0)
        stamps = []
        for pos in range(s.depth, s.depth + s.tokens):
            tok = llama_cpp.llama_sampler_sample(sampler, rt.ctx, -1)
            rt.piece(tok)
            stamps.append(time.perf_counter())
            rt.decode_one(tok, pos)
        return _rate(stamps), s.tokens
    finally:
        llama_cpp.llama_sampler_free(sampler)
        rt.close()


def llcpp_run(s: Setup) -> tuple[float, int]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(s.model), n_ctx=s.n_ctx, n_threads=s.threads,
                n_threads_batch=s.threads, n_gpu_layers=-1 if s.gpu else 0, verbose=False, seed=1)
    try:
        stamps = []
        for chunk in llm.create_chat_completion([{"role": "user", "content": PROMPT}], stream=True,
                                                max_tokens=s.tokens, seed=1):
            if chunk["choices"][0]["delta"].get("content"):
                stamps.append(time.perf_counter())
        return _rate(stamps), len(stamps)
    finally:
        llm.close()


def llama_bench_run(exe: Path, s: Setup, flash_attn: bool) -> tuple[float, int]:
    out = subprocess.run([str(exe), "-m", str(s.model), "-p", "0", "-n", str(s.tokens),
                          "-d", str(s.depth), "-t", str(s.threads), "-fa", {None: "auto", True: "1", False: "0"}[flash_attn],
                          "-r", "1", "-ngl", "99" if s.gpu else "0", "-o", "json"],
                         capture_output=True, text=True, check=True).stdout
    return float(json.loads(out)[0]["avg_ts"]), s.tokens


def main() -> int:
    from models.bundled import bundled_model_path

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1,
                    help="llama.cpp threads for every runner (1 is steadiest on a shared machine)")
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument("--no-llama-bench", action="store_true")
    args = ap.parse_args()
    model = args.model or bundled_model_path()
    s = Setup(model, args.threads, args.tokens, args.gpu)
    runners = {"engine": lambda: engine_run(s), "raw loop": lambda: raw_loop_run(s),
               "llcpp default": lambda: llcpp_run(s)}
    if not args.no_llama_bench:
        from bench.llama_tools import llama_bench_path

        exe = llama_bench_path("cuda" if args.gpu else "cpu")
        runners["llama-bench"] = lambda: llama_bench_run(exe, s, s.flash_attn)
        if s.flash_attn is False:
            runners["llama-bench FA on"] = lambda: llama_bench_run(exe, s, True)
    print(f"model {model.name}, {args.threads} threads, {args.tokens} tokens from depth {s.depth}, "
          f"n_ctx {s.n_ctx}, flash attention {({None: 'auto', True: 'on', False: 'off'})[s.flash_attn]} (the engine's choice), "
          f"{'all layers on GPU' if args.gpu else 'CPU'}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    names = list(runners)
    rows: dict[str, list[float]] = {k: [] for k in names}
    counts: dict[str, int] = {}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            tps, n = runners[k]()
            rows[k].append(tps)
            counts[k] = n
        print(f"round {r + 1} (load {os.getloadavg()[0]:.2f}): "
              + ", ".join(f"{k} {rows[k][-1]:.1f}" for k in names), flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    med = {k: statistics.median(v) for k, v in rows.items()}
    anchor = "llama-bench" if "llama-bench" in med else "raw loop"
    print("\n| runner | tokens | tok/s (median) | ms/token | engine / runner |")
    print("|---|---|---|---|---|")
    for k, v in med.items():
        print(f"| {k} | {counts[k]} | {v:.1f} | {1000 / v:.2f} | {med['engine'] / v:.3f} |")
    per_round = statistics.median(e / a for e, a in zip(rows["engine"], rows[anchor]))
    print(f"\nengine / {anchor} (same settings): {med['engine'] / med[anchor]:.3f} from the medians, "
          f"{per_round:.3f} as the median of per-round ratios")
    return 0


if __name__ == "__main__":
    sys.exit(main())
