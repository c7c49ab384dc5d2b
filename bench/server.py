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

Rounds of (1) and (2) alternate between the engine and the server (this machine's
speed drifts); medians are printed. Each stream's prompt starts with its own number, so no request finds its prompt in a
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


class EngineDirect:
    """LlamaCppBackend.stream_chat in this process: one round -> (tokens/s, TTFT s)."""

    def __init__(self, model: Path, threads: int, tokens: int):
        from engine.llama_backend import LlamaCppBackend

        self.tokens = tokens
        self.b = LlamaCppBackend(model, n_ctx=N_CTX, n_threads=threads, n_gpu_layers=0)
        self.b.load()

    def round(self, n: int) -> tuple[float, float]:
        from engine.types import ChatMessage, GenerationParams

        stamps = []
        for _ in self.b.stream_chat([ChatMessage("user", PROMPT.format(n=n))],
                                    GenerationParams(max_tokens=self.tokens, temperature=0)):
            stamps.append(time.perf_counter())
        return _rate(stamps), self.b.last_stats.ttft_s

    def close(self) -> None:
        self.b.unload()


def stream_once(client, model: str, n: int, tokens: int) -> dict:
    t0 = time.perf_counter()
    stamps = []
    stream = client.chat.completions.create(model=model, stream=True, temperature=0, max_tokens=tokens,
                                            messages=[{"role": "user", "content": PROMPT.format(n=n)}])
    for c in stream:
        if c.choices and c.choices[0].delta.content:
            stamps.append(time.perf_counter())
    return {"t0": t0, "stamps": stamps}


def through_server(client, model: str, tokens: int, n: int) -> tuple[float, float]:
    """One stream through a server: (tokens/s, time to the first token in s)."""
    st = stream_once(client, model, n, tokens)
    return _rate(st["stamps"]), st["stamps"][0] - st["t0"]


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


class _InstantModel:
    """A model service that answers N pieces at once: what the HTTP path alone costs."""

    name, model_path, slot_ctx, template_source = "instant", "instant.gguf", 1 << 20, ""

    def __init__(self, pieces: int):
        self.pieces = pieces

    def submit(self, req) -> None:
        from engine.types import ReplyStats

        def run():
            req.on_event("start", ReplyStats(prompt_tokens=1))
            for _ in range(self.pieces):
                req.on_event("text", " word")
            req.on_event("done", ReplyStats(prompt_tokens=1, gen_tokens=self.pieces, stop_reason="length"))
        threading.Thread(target=run, daemon=True).start()

    def snapshot(self) -> dict:
        return {}

    def cancel_all(self) -> None:
        pass


def http_path_cost(pieces: int = 3000) -> float:
    """CPU microseconds per streamed piece, server and openai client together (one process)."""
    import openai

    from server.app import ApiState, build_app
    from server.run import Server, bind

    srv = Server(build_app(ApiState(_InstantModel(pieces))), bind("127.0.0.1", 0, None))
    srv.start()
    srv.ready.wait()
    try:
        with openai.OpenAI(base_url=f"http://127.0.0.1:{srv.port}/v1", api_key="x", max_retries=0) as c:
            cpu = time.process_time()
            n = sum(1 for _ in c.chat.completions.create(model="instant", stream=True, max_tokens=pieces,
                                                          messages=[{"role": "user", "content": "x"}]))
            cpu = time.process_time() - cpu
    finally:
        srv.stop()
    assert n >= pieces
    return cpu / pieces * 1e6


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
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-llama-server", action="store_true")
    args = ap.parse_args()
    model = args.model or bundled_model_path()
    print(f"model {model.name}, threads {args.threads}, {args.tokens} tokens, greedy; "
          f"load average {os.getloadavg()[0]:.1f}")

    import openai

    engine = EngineDirect(model, args.threads, args.tokens)
    srv = start_serve(model, args.threads, 4)
    eng, thr = [], []
    try:
        with openai.OpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0, timeout=600) as client:
            through_server(client, srv.model, 8, 99)             # the connection and the slot warm
            for r in range(args.rounds):                          # interleaved: the machine drifts
                order = (0, 1) if r % 2 == 0 else (1, 0)
                for which in order:
                    if which == 0:
                        eng.append(engine.round(100 + r))
                    else:
                        thr.append(through_server(client, srv.model, args.tokens, 200 + r))
        engine.close()
        ours1 = statistics.median(aggregate(srv.url, srv.model, args.tokens, 1, 300 + 10 * r)
                                  for r in range(args.rounds))
        ours4 = statistics.median(aggregate(srv.url, srv.model, args.tokens, 4, 400 + 10 * r)
                                  for r in range(args.rounds))
    finally:
        srv.stop()
    per_piece_us = http_path_cost()
    eng_tps, eng_ttft = statistics.median(e[0] for e in eng), statistics.median(e[1] for e in eng)
    srv_tps, srv_ttfb = statistics.median(t[0] for t in thr), statistics.median(t[1] for t in thr)
    ratio_rounds = [t[0] / e[0] for e, t in zip(eng, thr)]
    rows = [("engine stream_chat, 1 stream", f"{eng_tps:.1f} tok/s", f"TTFT {eng_ttft * 1000:.0f} ms"),
            ("serve + openai client, 1 stream", f"{srv_tps:.1f} tok/s", f"first token {srv_ttfb * 1000:.0f} ms"),
            ("serve --parallel 4: 1 stream", f"{ours1:.1f} tok/s", ""),
            ("serve --parallel 4: 4 streams", f"{ours4:.1f} tok/s aggregate", "")]
    ratio_ls = None
    if not args.no_llama_server:
        from bench.llama_tools import llama_server_path

        proc, url = start_llama_server(llama_server_path(), model, args.threads, 4)
        try:
            ls1 = statistics.median(aggregate(url, "x", args.tokens, 1, 500 + 10 * r) for r in range(args.rounds))
            ls4 = statistics.median(aggregate(url, "x", args.tokens, 4, 600 + 10 * r) for r in range(args.rounds))
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
    print(f"(1) streamed tok/s through serve ÷ engine direct: {srv_tps / eng_tps:.3f}   (target >= 0.97; "
          f"per round {', '.join(f'{x:.2f}' for x in ratio_rounds)})")
    print(f"(2) first-token overhead over the engine's TTFT:   {(srv_ttfb - eng_ttft) * 1000:+.1f} ms (target <= 15 ms)")
    print(f"    the HTTP path alone (a model that answers instantly): {per_piece_us:.0f} µs of CPU per piece, "
          f"server and openai client together = {per_piece_us / 1e4 * eng_tps:.2f}% of a token at {eng_tps:.0f} tok/s")
    line = f"(3) 4-stream aggregate ÷ 1 stream, serve:          {ours4 / ours1:.2f}"
    if ratio_ls is not None:
        line += f"   llama-server: {ratio_ls:.2f}   (target: at least llama-server's)"
    print(line)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
