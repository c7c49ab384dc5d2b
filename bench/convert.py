"""Benchmark `convert`: wall time, CPU time and peak RSS on a Llama-3.2-1B-shaped checkpoint.

    python bench/convert.py [--workdir DIR] [--threads N] [--shape 1b|tiny] [--llama-cpp-src DIR]

Makes (or reuses) a synthetic bf16 checkpoint with Llama 3.2 1B's shapes (about 2.5 GB;
random weights, tied embeddings, rope scaling), then runs `python main.py convert` for
--type f16, bf16 and q4_k_m, each in a fresh process measured with wait4() (so the
quantizer child is included). Same-run anchors:
- a plain copy of the checkpoint's shards, flushed to disk as convert does (disk speed,
  for the bf16 byte copy);
- when torch and transformers are importable (here or by --theirs-python): llama.cpp's own convert_hf_to_gguf.py from the llama.cpp
  source that the llama-cpp-python sdist vendors (downloaded with pip when
  --llama-cpp-src is not given), plus llama.cpp's quantizer (llama_model_quantize,
  the function llama-quantize calls) on its F16 output.
Prints a table and the ratios ours / theirs.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PUBLISHED = ("published anchors (2 cores, 2.47 GB checkpoint, not this run): convert_hf_to_gguf.py "
             "F16 10.5 s / 1.9 GB RSS, BF16 12 s / 2.4 GB; llama-quantize F16->Q4_K_M 29 s / 1.8 GB")

# Their converter recognises a tokenizer by hashing a sample tokenization; the synthetic
# checkpoint's small BPE has Llama 3's regex and rules but not its vocabulary, so the
# wrapper tells it the answer (tokenizer handling is a negligible part of the cost).
THEIRS_WRAPPER = """
import sys, runpy
src = sys.argv.pop(1)
sys.path.insert(0, src); sys.path.insert(0, src + "/gguf-py")
import convert_hf_to_gguf as m
for mod in [m] + [v for k, v in list(sys.modules.items()) if k.split(".")[0] == "conversion"]:
    for cls in list(vars(mod).values()):
        if isinstance(cls, type) and "get_vocab_base_pre" in vars(cls):
            cls.get_vocab_base_pre = lambda self, tokenizer: "llama-bpe"
sys.argv[0] = src + "/convert_hf_to_gguf.py"
sys.exit(m.main())
"""
QUANTIZE_SNIPPET = """
import ctypes, sys, llama_cpp
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M; p.nthread = int(sys.argv[3])
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))
"""


def measure(cmd: list[str], env=None) -> dict:
    """Run cmd; wall seconds, CPU seconds (user+sys, with waited children) and peak RSS bytes."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read()
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    rss_kb = ru.ru_maxrss if sys.platform != "darwin" else ru.ru_maxrss / 1024
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss": rss_kb * 1024, "rc": proc.returncode,
            "out": output.decode("utf-8", "replace")}


def make_checkpoint(workdir: Path, shape_name: str) -> Path:
    from tests.fixtures.tiny_llama import LLAMA_3_2_1B_SHAPE, TinyShape, make_tiny_llama

    dest = workdir / f"ckpt-{shape_name}"
    if (dest / ".complete").exists():
        print(f"reusing checkpoint {dest}")
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    shape = LLAMA_3_2_1B_SHAPE if shape_name == "1b" else TinyShape()
    print(f"making a {shape_name}-shaped bf16 checkpoint in {dest} ...", flush=True)
    t0 = time.perf_counter()
    make_tiny_llama(dest, variant="tied", sharded=True, shape=shape)
    (dest / ".complete").write_text("ok")
    print(f"  made in {time.perf_counter() - t0:.0f} s", flush=True)
    return dest


def llama_cpp_source(workdir: Path, given) -> Path | None:
    if given:
        return Path(given)
    dest = workdir / "llama.cpp-src"
    if (dest / "convert_hf_to_gguf.py").exists():
        return dest
    import importlib.metadata

    version = importlib.metadata.version("llama-cpp-python")
    tmp = Path(tempfile.mkdtemp(dir=workdir))
    print(f"fetching the llama-cpp-python {version} sdist for its vendored llama.cpp ...", flush=True)
    rc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
                         "-d", str(tmp), f"llama-cpp-python=={version}"], capture_output=True).returncode
    archives = list(tmp.glob("*.tar.gz"))
    if rc != 0 or not archives:
        return None
    with tarfile.open(archives[0]) as tar:
        members = [m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name and (
            m.name.endswith("/convert_hf_to_gguf.py") or "/gguf-py/" in m.name or "/conversion/" in m.name)]
        tar.extractall(tmp, members=members, filter="data")
    src = next(tmp.glob("*/vendor/llama.cpp"))
    shutil.move(str(src), dest)
    shutil.rmtree(tmp, ignore_errors=True)
    return dest


def compare_tensors(ours: Path, theirs: Path) -> str:
    """How many tensors are byte-identical; the largest difference among the others."""
    import numpy as np

    from common.gguf_header import read_header

    a, b = read_header(ours), read_header(theirs)
    tb = {t.name: t for t in b.tensors}
    same, worst = 0, []
    for t in a.tensors:
        u = tb.get(t.name)
        if u is None or u.ggml_type != t.ggml_type or u.nbytes != t.nbytes:
            worst.append(f"{t.name} differs in type or size")
            continue
        x = np.memmap(ours, np.uint8, "r", t.offset, t.nbytes)
        y = np.memmap(theirs, np.uint8, "r", u.offset, u.nbytes)
        if np.array_equal(x, y):
            same += 1
        elif t.ggml_type == 0:  # F32 (rope_freqs): report the largest relative difference
            fx, fy = x.view(np.float32), y.view(np.float32)
            worst.append(f"{t.name} max rel diff {float(np.max(np.abs(fx - fy) / np.abs(fy))):.1e}")
        else:
            worst.append(f"{t.name} differs")
    missing = len(set(tb) - {t.name for t in a.tensors})
    return (f"{same}/{len(b.tensors)} tensors byte-identical to llama.cpp's F16"
            + (f"; {', '.join(worst[:3])}" if worst else "") + (f"; {missing} only in theirs" if missing else ""))


def fmt(r: dict) -> str:
    return f"{r['wall']:8.1f} s {r['cpu']:8.1f} s {r['rss'] / 1e9:7.2f} GB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "llamadesk-bench-convert"))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--shape", choices=("1b", "tiny"), default="1b")
    ap.add_argument("--llama-cpp-src", default=None, help="llama.cpp source tree with convert_hf_to_gguf.py")
    ap.add_argument("--theirs-python", default=sys.executable,
                    help="Python with torch and transformers for llama.cpp's converter (default: this one)")
    ap.add_argument("--skip-theirs", action="store_true")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = make_checkpoint(work, args.shape)
    size = sum(f.stat().st_size for f in ckpt.glob("*.safetensors"))
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    rows: dict[str, dict] = {}

    t0 = time.perf_counter()
    for f in sorted(ckpt.glob("*.safetensors")):  # copied and flushed to disk, as convert does
        shutil.copyfile(f, out / f.name)
        with open(out / f.name, "rb+") as fh:
            os.fsync(fh.fileno())
    rows["copy of the shards (disk anchor)"] = {"wall": time.perf_counter() - t0, "cpu": float("nan"), "rss": 0}
    for f in out.glob("*.safetensors"):
        f.unlink()

    for qtype in ("f16", "bf16", "q4_k_m"):
        r = measure([sys.executable, "main.py", "convert", str(ckpt), "--out", str(out / f"ours-{qtype}.gguf"),
                     "--type", qtype, "--threads", str(args.threads)])
        if r["rc"] != 0:
            print(r["out"][-2000:])
            return 1
        rows[f"ours --type {qtype}"] = r
        wrote = [ln for ln in r["out"].splitlines() if ln.startswith("wrote ")]
        r["phases"] = wrote[-1].split(" in ", 1)[-1] if wrote else ""
        print(wrote[-1] if wrote else "", flush=True)
        if qtype != "f16":  # kept to compare with theirs
            (out / f"ours-{qtype}.gguf").unlink()

    theirs_reason = None
    has_torch = subprocess.run([args.theirs_python, "-c", "import torch, transformers"],
                               capture_output=True).returncode == 0
    if not has_torch:
        theirs_reason = (f"torch and transformers are not importable by {args.theirs_python} "
                         f"(llama.cpp's convert_hf_to_gguf.py needs them; see --theirs-python)")
    if args.skip_theirs:
        theirs_reason = "--skip-theirs"
    src = None if theirs_reason else llama_cpp_source(work, args.llama_cpp_src)
    if not theirs_reason and src is None:
        theirs_reason = "the llama.cpp source could not be fetched"
    if not theirs_reason:
        env = dict(os.environ, NO_LOCAL_GGUF="")
        for outtype in ("f16", "bf16"):
            target = out / f"theirs-{outtype}.gguf"
            r = measure([args.theirs_python, "-c", THEIRS_WRAPPER, str(src), str(ckpt), "--outtype", outtype,
                         "--outfile", str(target)], env=env)
            if r["rc"] != 0:
                theirs_reason = "convert_hf_to_gguf.py failed: " + r["out"][-500:]
                break
            rows[f"theirs convert_hf_to_gguf --outtype {outtype}"] = r
            if outtype == "f16":
                same_tensors = compare_tensors(out / "ours-f16.gguf", target)
        if not theirs_reason:
            r = measure([sys.executable, "-c", QUANTIZE_SNIPPET, str(out / "theirs-f16.gguf"),
                         str(out / "theirs-q4_k_m.gguf"), str(args.threads)])
            rows["theirs quantize F16 -> Q4_K_M"] = r
    for f in out.glob("*.gguf"):
        f.unlink()
    same_tensors = locals().get("same_tensors")

    print(f"\ncheckpoint: {ckpt} ({size / 1e9:.2f} GB bf16), threads {args.threads}")
    print(f"{'run':<44} {'wall':>10} {'cpu':>10} {'peak RSS':>10}")
    for name, r in rows.items():
        print(f"{name:<44} {fmt(r)}  {r.get('phases', '')}")
    ours = {k.split()[-1]: v for k, v in rows.items() if k.startswith("ours")}
    copy = rows["copy of the shards (disk anchor)"]["wall"]
    print(f"\nbf16 byte copy: {size / ours['bf16']['wall'] / 1e6:.0f} MB/s end to end "
          f"(with verification) vs {size / copy / 1e6:.0f} MB/s for a plain copy: ratio "
          f"{ours['bf16']['wall'] / copy:.2f}x the copy's time")
    print(f"--type f16 peak RSS {ours['f16']['rss'] / 1e9:.2f} GB (target <= 1 GB)")
    if theirs_reason:
        print(f"comparison with llama.cpp's converter skipped: {theirs_reason}")
    else:
        t16 = rows["theirs convert_hf_to_gguf --outtype f16"]
        tq = rows["theirs quantize F16 -> Q4_K_M"]
        print(f"ratio ours/theirs, --type f16: time {ours['f16']['wall'] / t16['wall']:.2f} (target <= 0.7), "
              f"CPU time {ours['f16']['cpu'] / t16['cpu']:.2f}, peak RSS {ours['f16']['rss'] / t16['rss']:.2f}")
        if same_tensors:
            print(same_tensors)
        tb = rows["theirs convert_hf_to_gguf --outtype bf16"]
        print(f"ratio ours/theirs, --type bf16: time {ours['bf16']['wall'] / tb['wall']:.2f}, "
              f"CPU time {ours['bf16']['cpu'] / tb['cpu']:.2f}, peak RSS {ours['bf16']['rss'] / tb['rss']:.2f}")
        print(f"ratio ours/theirs, --type q4_k_m end to end vs convert F16 + quantize: time "
              f"{ours['q4_k_m']['wall'] / (t16['wall'] + tq['wall']):.2f} (target <= 0.85), CPU time "
              f"{ours['q4_k_m']['cpu'] / (t16['cpu'] + tq['cpu']):.2f}, peak RSS "
              f"{ours['q4_k_m']['rss'] / max(t16['rss'], tq['rss']):.2f}")
        print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
              f"(other work on the machine inflates wall times; CPU times are steadier)")
    print(PUBLISHED)
    return 0


if __name__ == "__main__":
    sys.exit(main())
