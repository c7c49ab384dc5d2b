"""bench/store.py runs on tiny inputs (timings are printed, never asserted)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_store_benchmark_runs_on_a_tiny_database(tmp_path):
    out = subprocess.run(
        [sys.executable, "bench/store.py", "--conversations", "20", "--messages", "400",
         "--largest", "60", "--repeats", "1", "--dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "20 conversations, 400 messages" in out.stdout
    assert "active path of the largest" in out.stdout and "LIKE scan" in out.stdout
