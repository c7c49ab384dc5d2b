"""`python main.py chat`: one-shot streaming to stdout, stats as JSON on stderr's last line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_one_shot_chat_prints_reply_and_json_stats(smollm2_path):
    r = subprocess.run([sys.executable, "main.py", "chat", "--model", str(smollm2_path), "--system", "Be brief.",
                        "--prompt", "Name a colour.", "--max-tokens", "24", "--temperature", "0",
                        "--threads", "1", "--n-ctx", "1024", "--gpu-layers", "auto", "--stats", "json"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    stats = json.loads(r.stderr.strip().splitlines()[-1])
    for key in ("ttft_s", "prompt_tokens", "prompt_tps", "gen_tokens", "gen_tps", "ctx_used", "n_ctx", "gpu_layers"):
        assert key in stats
    assert stats["n_ctx"] == 1024 and stats["gpu_layers"] == 0 and stats["gen_tokens"] > 0
    assert stats["ctx_used"] >= stats["prompt_tokens"] + stats["gen_tokens"] - 1


def test_unknown_model_is_a_clear_error():
    r = subprocess.run([sys.executable, "main.py", "chat", "--model", "no-such-model", "--prompt", "x"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "No model file 'no-such-model'" in r.stderr
