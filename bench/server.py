"""The local server against the engine called directly, and against llama.cpp's llama-server.

Demo model, the same threads everywhere, greedy decoding, one run:

  (1) tokens/s of one streamed reply seen by the ``openai`` client through ``serve``
      ÷ the engine's own ``stream_chat`` (target >= 0.97);
  (2) time to the first token through the server minus the engine's TTFT for the same
      prompt (target <= 15 ms);
  (3) aggregate tokens/s of 4 concurrent streams ÷ 1 stream, through ``serve --parallel 4``
      and through ``llama-server --parallel 4`` (built from the vendored llama.cpp by
      bench/llama_tools.py), same GGUF, same client (target: at least llama-server's ratio).

    python bench/server.py [--model GGUF] [--threads 1] [--tokens 96] [--no-llama-server]

Each stream's prompt starts with its own number, so no request finds its prompt in a
cache that an earlier one left (each engine still reuses the shared system prefix).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = "Story {n}: write a very long and detailed story about a lighthouse keeper and a storm."
N_CTX = 1024


def _rate(stamps: list[float]) -> float:
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0


def engine_direct(model: Path, threads: int, tokens: int, rounds: int) -> tuple[float, float]:
    """Median tokens/s and TTFT (s) of LlamaCppBackend.stream_chat."""
    from engine.llama_backend import LlamaCppBackend
    from engine.types import ChatMessage, GenerationParams

    b = LlamaCppBackend(model, n_ctx=N_CTX, n_threads=threads, n_gpu_layers=0)
    b.load()
    rates, ttfts = [], []
    try:
        for r in range(rounds):
            stamps = []
            for _ in b.stream_chat([ChatMessage("user", PROMPT.format(n=100 + r))],
                                   GenerationParams(max_tokens=tokens, temperature=0)):
                stamps.append(time.perf_counter())
            rates.append(_rate(stamps))
            ttfts.append(b.last_stats.ttft_s)
    finally:
        b.unload()
    return statistics.median(rates), statistics.median(ttfts)


def stream_once(client, model: str, n: int, tokens: int) -> dict:
    t0 = time.perf_counter()
    stamps = []
    stream = client.chat.completions.create(model=model, stream=True, temperature=0, max_tokens=tokens,
                                            messages=[{"role": "user", "content": PROMPT.format(n=n)}])
    for c in stream:
        if c.choices and c.choices[0].delta.content:
            stamps.append(time.perf_counter())
    return {"t0": t0, "stamps": stamps}


def through_server(url: str, model: str, tokens: int, rounds: int, start_n: int) -> tuple[float, float]:
    """Median tokens/s and time to first token (s) of one stream at a time."""
    import openai

    rates, ttfbs = [], []
    with openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=600) as c:
        for r in range(rounds):
            s = stream_once(c, model, start_n + r, tokens)
            rates.append(_rate(s["stamps"]))
            ttfbs.append(s["stamps"][0] - s["t0"])
    return statistics.median(rates), statistics.median(ttfbs)


def aggregate(url: str, model: str, tokens: int, streams: int, start_n: int) -> float:
    """Tokens/s of ``streams`` concurrent streams, all tokens over the whole span."""
    import openai

    results: list[dict] = []
    barrier = threading.Barrier(streams)

    def one(i: int):
        with openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=600) as c:
            barrier.wait()
            results.append(stream_once(c, model, start_n + i, tokens))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    start = min(r["t0"] for r in results)
    end = max(r["stamps"][-1] for r in results)
    return sum(len(r["stamps"]) for r in results) / (end - start)


def start_serve(model: Path, threads: int, parallel: int):
    from tests.server_helpers import start_serve as start

    home = ROOT / "bench" / ".cache" / "serve-home"
    home.mkdir(parents=True, exist_ok=True)
    return start(model, home, "--parallel", str(parallel), "--n-ctx", str(N_CTX), "--threads", str(threads))


def start_llama_server(exe: Path, model: Path, threads: int, parallel: int):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(exe), "-m", str(model), "-t", str(threads), "-tb", str(threads),
                             "-c", str(N_CTX * parallel), "--parallel", str(parallel), "-fa", "off",
                             "--host", "127.0.0.1", "--port", str(port), "--no-webui"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    import httpx

    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("llama-server exited: " + proc.stderr.read()[-2000:])
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("llama-server did not become ready")


def main() -> int:
    from models.bundled import bundled_model_path

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-llama-server", action="store_true")
    args = ap.parse_args()
    model = args.model or bundled_model_path()
    print(f"model {model.name}, threads {args.threads}, {args.tokens} tokens, greedy; "
          f"load average {os.getloadavg()[0]:.1f}")

    eng_tps, eng_ttft = engine_direct(model, args.threads, args.tokens, args.rounds)
    srv = start_serve(model, args.threads, 4)
    try:
        srv_tps, srv_ttfb = through_server(srv.url, srv.model, args.tokens, args.rounds, 200)
        ours1 = aggregate(srv.url, srv.model, args.tokens, 1, 300)
        ours4 = aggregate(srv.url, srv.model, args.tokens, 4, 310)
    finally:
        srv.stop()
    rows = [("engine stream_chat, 1 stream", f"{eng_tps:.1f} tok/s", f"TTFT {eng_ttft * 1000:.0f} ms"),
            ("serve + openai client, 1 stream", f"{srv_tps:.1f} tok/s", f"first token {srv_ttfb * 1000:.0f} ms"),
            ("serve --parallel 4: 1 stream", f"{ours1:.1f} tok/s", ""),
            ("serve --parallel 4: 4 streams", f"{ours4:.1f} tok/s aggregate", "")]
    ratio_ls = None
    if not args.no_llama_server:
        from bench.llama_tools import llama_server_path

        proc, url = start_llama_server(llama_server_path(), model, args.threads, 4)
        try:
            ls1 = aggregate(url, "x", args.tokens, 1, 400)
            ls4 = aggregate(url, "x", args.tokens, 4, 410)
        finally:
            proc.terminate()
            proc.wait(30)
        ratio_ls = ls4 / ls1
        rows += [("llama-server --parallel 4: 1 stream", f"{ls1:.1f} tok/s", ""),
                 ("llama-server --parallel 4: 4 streams", f"{ls4:.1f} tok/s aggregate", "")]
    width = max(len(r[0]) for r in rows)
    for r in rows:
        print(f"  {r[0]:<{width}}  {r[1]:<22} {r[2]}")
    print()
    print(f"(1) streamed tok/s through serve ÷ engine direct: {srv_tps / eng_tps:.3f}   (target >= 0.97)")
    print(f"(2) first-token overhead over the engine's TTFT:   {(srv_ttfb - eng_ttft) * 1000:+.1f} ms (target <= 15 ms)")
    line = f"(3) 4-stream aggregate ÷ 1 stream, serve:          {ours4 / ours1:.2f}"
    if ratio_ls is not None:
        line += f"   llama-server: {ratio_ls:.2f}   (target: at least llama-server's)"
    print(line)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
