"""Hostile chat templates: how long each takes to be refused, and the peak memory it cost.

    python bench/templates.py [--extra-mb 512]

Each template of ``tests/fixtures/hostile_templates.HOSTILE`` is rendered in a fresh
child process whose address space is capped (RLIMIT_AS) at its size after imports
plus ``--extra-mb``; the child's own peak RSS (``ru_maxrss``) and the render time are
printed. Anchors, measured the same way in the same run: the real Llama 3.1 template
on a 4,000-message conversation (what a legitimate long render costs), and the
process itself rendering ``{{ 'ok' }}`` (its baseline memory).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.hostile_templates import HOSTILE  # noqa: E402

ANCHOR = r'''
import json, sys, time
sys.path.insert(0, sys.argv[1])
from tests.fixtures.hostile_templates import cap_memory, peak_mb
from common.jinja_sandbox import SandboxedTemplate
source = open(sys.argv[1] + "/tests/fixtures/llama31_chat_template.jinja").read() if sys.argv[2] == "llama31" else "{{ 'ok' }}"
n = 4000 if sys.argv[2] == "llama31" else 1
messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": "word " * 200} for i in range(n)]
template = SandboxedTemplate(source)
cap_memory(int(sys.argv[3]))
start = time.monotonic()
text = template.render(messages=messages, bos_token="<|begin_of_text|>", add_generation_prompt=True)
print(json.dumps({"seconds": round(time.monotonic() - start, 3), "peak_mb": round(peak_mb(), 1), "chars": len(text)}))
'''


def run_child(args: list[str]) -> list[dict]:
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1"})
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return [json.loads(line) for line in out.stdout.splitlines()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra-mb", type=int, default=512)
    args = parser.parse_args()
    base = run_child(["-c", ANCHOR, str(ROOT), "baseline", str(args.extra_mb)])[0]
    legit = run_child(["-c", ANCHOR, str(ROOT), "llama31", str(args.extra_mb)])[0]
    print(f"anchor: baseline process, peak {base['peak_mb']} MB")
    print(f"anchor: Llama 3.1 template, 4,000 messages ({legit['chars']:,} chars): "
          f"{legit['seconds'] * 1000:.0f} ms, peak {legit['peak_mb']} MB")
    print(f"{'hostile input':28} {'result':8} {'ms':>7} {'peak MB':>8} {'over base':>9}  reason")
    worst = 0.0
    for name in HOSTILE:
        rows = run_child(["-m", "tests.fixtures.hostile_templates", str(args.extra_mb), name])
        cap = rows[0]["cap_mb"]
        r = next(row for row in rows if row["name"] == name)
        result = "refused" if r["refused"] else "RENDERED"
        if r["memory_error"]:
            result = "MEMERR"
        worst = max(worst, r["seconds"])
        print(f"{name:28} {result:8} {r['seconds'] * 1000:7.0f} {r['peak_mb']:8.1f} "
              f"{r['peak_mb'] - base['peak_mb']:9.1f}  {r['reason'][:70]}")
    print(f"address-space cap per child: {cap} MB (its size after imports + {args.extra_mb} MB); "
          f"slowest refusal {worst * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
