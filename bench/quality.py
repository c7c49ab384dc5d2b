"""Benchmark `quality`: LlamaDesk's figures and time against llama.cpp's own llama-perplexity.

    python bench/quality.py [--workdir DIR] [--threads N] [--chunks N] [--only demo|1b]

On the same two files and the same text (assets/calibration.txt), runs
- ours:   `python main.py quality BASE OTHER --json` (one process, both passes);
- theirs: `llama-perplexity -m BASE -f TEXT --kl-divergence-base LOGITS` then
          `llama-perplexity -m OTHER --kl-divergence-base LOGITS --kl-divergence`,
          built from the llama.cpp source vendored in the llama-cpp-python sdist
          (bench/llama_tools.py builds only that target, cached under bench/.cache);
each measured with wait4() (wall time, peak RSS). Same context (512), chunks and threads.
Prints, per pair, both tools' mean KLD, same-top rate, PPL of both files, and the relative
differences (target: within 1%), the time ratio (target: ours <= 1.2x theirs) and peak RSS.

Pairs: the demo model (SmolLM2-135M Q4_1) against its re-quantization to Q4_0 (llama.cpp's
quantizer with requantizing allowed), and a Llama-3.2-1B-shaped checkpoint with random
weights (bench/convert.py makes it) converted to F16, its final norm scaled by 1/256 so its
random outputs are not saturated (otherwise the top token takes all the probability and
every file agrees trivially), against its Q4_K_M.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TEXT = ROOT / "assets" / "calibration.txt"
N_CTX = 512

REQUANTIZE = """
import ctypes, sys, llama_cpp
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = int(sys.argv[3]); p.nthread = int(sys.argv[4]); p.allow_requantize = True
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))
"""


def measure(cmd: list[str]) -> dict:
    """Run cmd; wall seconds, peak RSS bytes (of it and its waited children), output."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read()
    _, status, ru = os.wait4(proc.pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    rss = ru.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    out = output.decode("utf-8", "replace")
    if rc != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({rc}):\n{out[-3000:]}")
    return {"wall": time.perf_counter() - start, "rss": rss, "out": out}


def demo_pair(workdir: Path, threads: int) -> tuple[Path, Path]:
    from models.bundled import bundled_model_path

    import gguf

    base = bundled_model_path()
    other = workdir / "SmolLM2-135M-Instruct.requant-Q4_0.gguf"
    if not other.exists():
        print(f"re-quantizing {base.name} to Q4_0 ...", flush=True)
        subprocess.run([sys.executable, "-c", REQUANTIZE, str(base), str(other),
                        str(int(gguf.LlamaFileType.MOSTLY_Q4_0)), str(threads)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return base, other


def one_b_pair(workdir: Path, threads: int) -> tuple[Path, Path]:
    import shutil

    import gguf

    from bench.convert import make_checkpoint
    from converters.pipeline import convert_checkpoint
    from converters.quantize import quantize_gguf

    raw = workdir / "llama-1b-shaped-F16.gguf"
    f16, q4 = workdir / "llama-1b-shaped-t256-F16.gguf", workdir / "llama-1b-shaped-t256-Q4_K_M.gguf"
    if not raw.exists():
        ckpt = make_checkpoint(workdir, "1b")
        print("converting the 1B-shaped checkpoint to F16 ...", flush=True)
        convert_checkpoint(ckpt, raw, "f16", threads=threads)
    if not f16.exists():
        # With random tied embeddings the input token's own embedding dominates the last hidden
        # state, so "repeat the token" wins by a logit of about |e|^2 = 2048: the top token takes
        # all the probability and every file agrees trivially. The final norm scaled by 1/256
        # brings that lead down to a few nats, so the distributions are real ones to compare.
        shutil.copyfile(raw, f16.with_suffix(".part"))
        reader = gguf.GGUFReader(f16.with_suffix(".part"), "r+")
        norm = next(t for t in reader.tensors if t.name == "output_norm.weight")
        norm.data[:] = norm.data / 256
        del reader
        f16.with_suffix(".part").rename(f16)
    if not q4.exists():
        print("quantizing it to Q4_K_M ...", flush=True)
        quantize_gguf(f16, q4, "q4_k_m", threads=threads)
    return f16, q4


def theirs(exe: Path, base: Path, other: Path, workdir: Path, threads: int, chunks: int) -> dict:
    logits = workdir / f"{base.stem}.kld"
    common = ["-c", str(N_CTX), "-t", str(threads), "--chunks", str(chunks)]
    first = measure([str(exe), "-m", str(base), "-f", str(TEXT), "--kl-divergence-base", str(logits), *common])
    second = measure([str(exe), "-m", str(other), "--kl-divergence-base", str(logits), "--kl-divergence", *common])
    logits.unlink(missing_ok=True)
    out = second["out"]

    def grab(label: str) -> float:
        m = re.search(re.escape(label) + r"\s*:\s*(-?[\d.]+)", out)
        if not m:
            raise SystemExit(f"llama-perplexity printed no {label!r}:\n{out[-3000:]}")
        return float(m.group(1))
    return {"kld": grab("Mean    KLD"), "same_top": grab("Same top p") / 100, "ppl_other": grab("Mean PPL(Q)"),
            "ppl_base": grab("Mean PPL(base)"), "rms_dp": grab("RMS Δp") / 100,
            "wall": first["wall"] + second["wall"], "rss": max(first["rss"], second["rss"]),
            "scored": chunks * (N_CTX - 1 - N_CTX // 2)}


def ours(base: Path, other: Path, threads: int, chunks: int) -> dict:
    run = measure([sys.executable, "main.py", "quality", str(base), str(other), "--json", "--no-record",
                   "--ctx", str(N_CTX), "--chunks", str(chunks), "--threads", str(threads)])
    data = json.loads(run["out"][run["out"].index("{"):])
    return {**data, "wall": run["wall"], "rss": run["rss"], "scored": data["tokens"]}


def table(name: str, a: dict, b: dict) -> list[str]:
    rows = [f"== {name}: {a['scored']} scored tokens (theirs {b['scored']}), context {N_CTX}",
            f"{'figure':<14}{'LlamaDesk':>14}{'llama.cpp':>14}{'rel. diff':>12}"]
    worst = 0.0
    for key, label in (("kld", "mean KLD"), ("same_top", "same top"), ("ppl_base", "PPL base"),
                       ("ppl_other", "PPL other"), ("rms_dp", "RMS Δp")):
        rel = abs(a[key] - b[key]) / abs(b[key]) if b[key] else abs(a[key])
        if key != "rms_dp":
            worst = max(worst, rel)
        rows.append(f"{label:<14}{a[key]:>14.6g}{b[key]:>14.6g}{100 * rel:>11.3f}%")
    rows.append(f"{'time (s)':<14}{a['wall']:>14.1f}{b['wall']:>14.1f}{a['wall'] / b['wall']:>11.2f}x")
    rows.append(f"{'peak RSS (MB)':<14}{a['rss'] / 1e6:>14.0f}{b['rss'] / 1e6:>14.0f}{a['rss'] / b['rss']:>11.2f}x")
    if b["kld"] == 0 and b["same_top"] == 1:
        rows.append("(the outputs are saturated: one token takes all the probability, so agreement here is "
                    "trivial; time and memory still are what a real model of this shape costs)")
    rows.append(f"worst relative difference (KLD, same top, PPLs): {100 * worst:.3f}% (target < 1%); "
                f"time ratio {a['wall'] / b['wall']:.2f} (target <= 1.2)")
    return rows


def main() -> int:
    from bench.llama_tools import llama_perplexity_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=str(ROOT / "bench" / ".cache" / "quality"))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--chunks", type=int, default=10, help="chunks of 512 tokens (default 10, as `quality`)")
    ap.add_argument("--only", choices=("demo", "1b"))
    args = ap.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    exe = llama_perplexity_path()
    pairs = []
    if args.only in (None, "demo"):
        pairs.append(("demo SmolLM2-135M Q4_1 vs its Q4_0 re-quantization", demo_pair(workdir, args.threads)))
    if args.only in (None, "1b"):
        pairs.append(("Llama-3.2-1B-shaped (random weights) F16 vs Q4_K_M", one_b_pair(workdir, args.threads)))
    lines = [f"threads {args.threads}, text {TEXT.name}, llama-perplexity from llama-cpp-python's vendored source"]
    for name, (base, other) in pairs:
        print(f"measuring {name} ...", flush=True)
        a = ours(base, other, args.threads, args.chunks)
        b = theirs(exe, base, other, workdir, args.threads, args.chunks)
        lines += table(name, a, b)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
