"""Going back to a long conversation: time to first token with and without its saved KV cache.

A conversation of about 7,900 tokens (n_ctx 8192) is continued
  (b) in a fresh process with no snapshot: the whole history is read (the anchor; what
      every other desktop app does when a chat is reopened or switched to);
  (c) as a normal next turn in a warm process (its cache is live);
  (a) in a fresh process with its snapshot on disk (engine.snapshots): restored, then
      only the new message is read;
and, in the warm process, switching A -> B -> A between it and a second conversation
(restored from RAM). Also: snapshot bytes per token, the time to copy the state out of
llama.cpp (the model's thread, after the reply) and to write the file (a thread of its
own), and the reply's own time, which ends before saving begins. Each warm turn starts
once the previous turn's file is written (as while the user types the next message):
on a 2-core machine the write would otherwise share the cores with it.

Targets: (a) <= 1.5x (c); (a) at least 50x faster than (b).

    python bench/reopen.py [--model GGUF] [--n-ctx 8192] [--tokens 7900] [--threads N]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.llama_backend import LlamaCppBackend, default_threads  # noqa: E402
from engine.types import ChatMessage, GenerationParams  # noqa: E402

M = ChatMessage
PARAMS = GenerationParams(max_tokens=16, temperature=0)
SYSTEM = M("system", "You are a helpful assistant.")


def conversation(backend, topic: str, target: int) -> list[ChatMessage]:
    """Varied turns about ``topic`` until the prompt is about ``target`` tokens."""
    msgs = [SYSTEM]
    i = 0
    while True:
        turn = [M("user", f"Question {i} about {topic}: what happened in year {1800 + 7 * i}, and why "
                          f"does it matter for point {i}? " + "Give reasons and examples. " * 6),
                M("assistant", f"In {1800 + 7 * i}, regarding {topic} and point {i}: "
                               + "".join(f"reason {i}.{k} is that item {k * 13 % 97} changed; " for k in range(40)))]
        if len(backend.prompt_tokens(msgs + turn + [M("user", "Next?")])) > target:
            return msgs
        msgs += turn
        i += 1


def ttft(backend, msgs) -> tuple[float, str]:
    """Seconds to the first piece of the reply, and the whole reply (generated to its end)."""
    start = time.perf_counter()
    first = None
    parts = []
    for piece in backend.stream_chat(msgs, PARAMS):
        if first is None:
            first = time.perf_counter() - start
        parts.append(piece)
    return (first if first is not None else time.perf_counter() - start), "".join(parts)


def child(args) -> dict:
    """One fresh process: ``args.child`` is "cold" (no snapshot, then warm turns) or "restore"."""
    out: dict = {}
    t0 = time.perf_counter()
    b = LlamaCppBackend(args.model, n_ctx=args.n_ctx, n_threads=args.threads)
    b.load()
    store = b.enable_snapshots(Path(args.cache))
    out["load_s"] = time.perf_counter() - t0
    try:
        if args.child == "cold":
            a = conversation(b, "the history of lighthouses", args.tokens) + [M("user", "Summarise it all.")]
            b.conversation = "A"
            out["b_ttft"], reply = ttft(b, a)
            st = b.last_stats
            out["b_prompt"], out["b_evaluated"] = st.prompt_tokens, st.prompt_evaluated
            meta = b.save_snapshot()
            out["save_copy_s"] = store.last_save_s
            store.flush()
            out["save_write_s"] = store.last_write_s
            path = store.dir / meta.name
            out["snapshot_bytes"], out["snapshot_tokens"] = path.stat().st_size, meta.n_tokens
            a.append(M("assistant", reply))
            out["c_ttft"], out["c_evaluated"] = [], []
            for k in range(args.repeat):        # normal next turns, the cache live
                store.flush()                   # the last snapshot written while the user types
                a.append(M("user", f"Which year was the most important ({k})?"))
                t, reply = ttft(b, a)
                out["c_ttft"].append(t)
                out["c_evaluated"].append(b.last_stats.prompt_evaluated)
                b.save_snapshot()
                a.append(M("assistant", reply))
            # A second, shorter conversation, then back and forth (RAM restores).
            bb = conversation(b, "bread baking", args.tokens_b) + [M("user", "Summarise it all.")]
            b.conversation = "B"
            _first_b, reply = ttft(b, bb)
            b.save_snapshot()
            bb.append(M("assistant", reply))
            switches = []
            for conv, msgs in (("A", a), ("B", bb), ("A", a)):
                store.flush()
                msgs.append(M("user", f"One more question ({len(switches)})?"))
                b.conversation = conv
                t, reply = ttft(b, msgs)
                r = b.last_restore
                switches.append({"to": conv, "ttft": t, "evaluated": b.last_stats.prompt_evaluated,
                                 "prompt": b.last_stats.prompt_tokens,
                                 "restored": r.tokens if r else 0, "source": r.source if r else "",
                                 "restore_s": r.seconds if r else 0.0})
                msgs.append(M("assistant", reply))
                b.save_snapshot()
            out["switches"] = switches
            a.append(M("user", "Thanks. And what came next?"))
            out["a_next"] = [[m.role, m.content] for m in a]
        else:
            a = [M(r, c) for r, c in json.loads(Path(args.messages).read_text())]
            b.conversation = "A"
            out["a_ttft"], _reply = ttft(b, a)
            r = b.last_restore
            out["a_restored"] = r.tokens if r else 0
            out["a_restore_s"] = r.seconds if r else 0.0
            out["a_source"] = r.source if r else ""
            out["a_prompt"], out["a_evaluated"] = b.last_stats.prompt_tokens, b.last_stats.prompt_evaluated
    finally:
        b.unload()
    return out


def run_child(args, mode: str, **extra) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--model", str(args.model), "--n-ctx", str(args.n_ctx),
           "--tokens", str(args.tokens), "--tokens-b", str(args.tokens_b), "--threads", str(args.threads),
           "--repeat", str(args.repeat),
           "--cache", args.cache]
    for k, v in extra.items():
        cmd += [f"--{k}", str(v)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"the {mode} process failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    from models.bundled import bundled_model_path

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--n-ctx", type=int, default=8192)
    ap.add_argument("--tokens", type=int, default=7900)
    ap.add_argument("--tokens-b", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of (a) and of (c); the median is reported")
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--child", default=None)
    ap.add_argument("--cache", default=None)
    ap.add_argument("--messages", default=None)
    args = ap.parse_args()
    args.model = args.model or bundled_model_path()
    if args.child:
        print(json.dumps(child(args)))
        return 0
    t_start = time.perf_counter()
    print(f"model {args.model.name}, n_ctx {args.n_ctx}, {args.threads} threads; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="reopen-") as tmp:
        args.cache = str(Path(tmp) / "kv")
        cold = run_child(args, "cold")
        print(f"(b) fresh process, no snapshot: {cold['b_evaluated']:,} of {cold['b_prompt']:,} tokens "
              f"read, first token after {cold['b_ttft']:.1f} s", flush=True)
        messages = Path(tmp) / "a.json"
        messages.write_text(json.dumps(cold["a_next"]))
        runs = [run_child(args, "restore", messages=messages) for _ in range(args.repeat)]
    runs.sort(key=lambda r: r["a_ttft"])
    warm = runs[len(runs) // 2]
    a, b, c = warm["a_ttft"], cold["b_ttft"], statistics.median(cold["c_ttft"])
    per_token = cold["snapshot_bytes"] / cold["snapshot_tokens"]
    print("\n| case | TTFT | prompt tokens evaluated | note |")
    print("|---|---|---|---|")
    print(f"| (a) fresh process, snapshot on disk (median of {len(runs)}) | {a * 1000:.0f} ms | {warm['a_evaluated']:,} of "
          f"{warm['a_prompt']:,} | restored {warm['a_restored']:,} tokens from {warm['a_source']} in "
          f"{warm['a_restore_s'] * 1000:.0f} ms |")
    print(f"| (b) fresh process, no snapshot (anchor) | {b * 1000:.0f} ms | {cold['b_evaluated']:,} of "
          f"{cold['b_prompt']:,} | the whole history read |")
    print(f"| (c) warm process, next turn (median of {len(cold['c_ttft'])}) | {c * 1000:.0f} ms | "
          f"{statistics.median(cold['c_evaluated']):,.0f} | live cache |")
    for s in cold["switches"]:
        print(f"| switch to {s['to']} | {s['ttft'] * 1000:.0f} ms | {s['evaluated']:,} of {s['prompt']:,} | "
              f"restored {s['restored']:,} tokens from {s['source'] or '-'} in {s['restore_s'] * 1000:.0f} ms |")
    print(f"\n(a) / (c) = {a / c:.2f} (target <= 1.5); (b) / (a) = {b / a:.0f}x (target >= 50x)")
    print(f"snapshot: {cold['snapshot_tokens']:,} tokens, {cold['snapshot_bytes'] / 1e6:.1f} MB, "
          f"{per_token / 1024:.1f} KiB per token")
    print(f"saving: state copied out of llama.cpp in {cold['save_copy_s'] * 1000:.0f} ms on the model's thread "
          f"after the reply ended, file written in {cold['save_write_s'] * 1000:.0f} ms on the writer thread; "
          f"the reply's own time does not include either (measured to its last token before saving)")
    print("all runs, ms: (a) " + ", ".join(f"{r['a_ttft'] * 1000:.0f}" for r in runs)
          + "; (c) " + ", ".join(f"{t * 1000:.0f}" for t in cold["c_ttft"]))
    print(f"model load {cold['load_s']:.1f} s / {warm['load_s']:.1f} s (not in any TTFT)")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"bench took {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
