"""Generation speed of the engine against llama.cpp's llama-bench and llama-cpp-python.

Same GGUF, same threads, A/B/C interleaved in one run (this machine's speed drifts
by ~10% between runs). Prints tokens/s per round and the ratios of the medians.

    python bench/generation.py [--model GGUF] [--threads N] [--tokens 200] [--rounds 3] [--gpu]

--gpu offloads all layers (a CUDA or Metal build of llama-cpp-python; llama-bench
is then built with the same backend).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = "Write a very long and detailed story about a lighthouse keeper and a storm."


def engine_tps(model: Path, threads: int, tokens: int, gpu: bool) -> tuple[float, float]:
    from engine.llama_backend import LlamaCppBackend
    from engine.types import ChatMessage, GenerationParams

    b = LlamaCppBackend(model, n_ctx=2048, n_threads=threads, n_gpu_layers=-1 if gpu else 0)
    b.load()
    try:
        params = GenerationParams(max_tokens=tokens, temperature=0.7, seed=1, stop=())
        for _ in b.stream_chat([ChatMessage("user", PROMPT)], params):
            pass
        s = b.last_stats
        return s.gen_tps, s.gen_tokens
    finally:
        b.unload()


def llcpp_tps(model: Path, threads: int, tokens: int, gpu: bool, flash_attn: bool) -> tuple[float, int]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(model), n_ctx=2048, n_threads=threads, n_threads_batch=threads,
                n_gpu_layers=-1 if gpu else 0, flash_attn=flash_attn, verbose=False, seed=1)
    try:
        n, first, last = 0, None, None
        for chunk in llm.create_chat_completion([{"role": "user", "content": PROMPT}], stream=True,
                                                max_tokens=tokens, temperature=0.7, seed=1):
            if chunk["choices"][0]["delta"].get("content"):
                n += 1
                last = time.perf_counter()
                first = first or last
        return ((n - 1) / (last - first) if n > 1 else 0.0), n
    finally:
        llm.close()


def llama_bench_tps(exe: Path, model: Path, threads: int, tokens: int, gpu: bool) -> float:
    out = subprocess.run([str(exe), "-m", str(model), "-p", "0", "-n", str(tokens), "-t", str(threads),
                          "-fa", "1", "-r", "1", "-ngl", "99" if gpu else "0", "-o", "json"],
                         capture_output=True, text=True, check=True).stdout
    return float(json.loads(out)[0]["avg_ts"])


def main() -> int:
    from engine.llama_backend import default_threads
    from models.bundled import bundled_model_path

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument("--no-llama-bench", action="store_true")
    args = ap.parse_args()
    model = args.model or bundled_model_path()
    exe = None
    if not args.no_llama_bench:
        from bench.llama_tools import llama_bench_path

        exe = llama_bench_path("cuda" if args.gpu else "cpu")
    print(f"model {model.name}, {args.threads} threads, {args.tokens} tokens, "
          f"{'all layers on GPU' if args.gpu else 'CPU'}")
    rows = {"engine": [], "llama-bench": [], "llcpp FA on": [], "llcpp default": []}
    for r in range(args.rounds):
        if exe:
            rows["llama-bench"].append(llama_bench_tps(exe, model, args.threads, args.tokens, args.gpu))
        rows["engine"].append(engine_tps(model, args.threads, args.tokens, args.gpu)[0])
        rows["llcpp FA on"].append(llcpp_tps(model, args.threads, args.tokens, args.gpu, True)[0])
        rows["llcpp default"].append(llcpp_tps(model, args.threads, args.tokens, args.gpu, False)[0])
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rows.items() if v), flush=True)
    med = {k: statistics.median(v) for k, v in rows.items() if v}
    print("\n| runner | tok/s (median) | ms/token | engine / runner |")
    print("|---|---|---|---|")
    for k, v in med.items():
        print(f"| {k} | {v:.1f} | {1000 / v:.2f} | {med['engine'] / v:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
