"""bench/convert.py runs end to end on the tiny shape (figures are not asserted)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_convert_benchmark_runs_on_tiny_shape(tmp_path):
    proc = subprocess.run([sys.executable, "bench/convert.py", "--shape", "tiny", "--skip-theirs",
                           "--threads", "2", "--workdir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for row in ("ours --type f16", "ours --type bf16", "ours --type q4_k_m", "peak RSS"):
        assert row in proc.stdout
    assert "comparison with llama.cpp's converter skipped: --skip-theirs" in proc.stdout
