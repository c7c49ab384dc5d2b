"""Download throughput: our downloader (Range, inline sha256, atomic placement) against a
plain streaming HTTP GET written to a file, same file, same loopback server, same run.

    python bench/download.py [--size-mb 256] [--rounds 3]

The Hub stand-in (tests/fixtures/hub_server.py) runs in a child process so it does not
share this process's interpreter. Prints MB/s for both and the ratio (target >= 0.9).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REPO, FILE = "bench/Bench-GGUF", "bench-Q4_K_M.gguf"

SERVE = """
import os, sys, threading
from tests.fixtures.hub_server import FakeRepo, HubServer
server = HubServer()
server.add_repo(FakeRepo({repo!r}, {{{file!r}: os.urandom({size})}}))
server.start()
print(server.url, server.state.cdn_url, flush=True)
sys.stdin.read()
server.stop()
"""


def plain_get(url: str, dest: Path) -> float:
    import httpx

    t0 = time.perf_counter()
    with httpx.Client(timeout=60) as client, client.stream("GET", url) as resp, open(dest, "wb") as f:
        resp.raise_for_status()
        for block in resp.iter_raw():
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - t0


def ours(models_dir: Path) -> float:
    from models.file_download import download_file

    t0 = time.perf_counter()
    path = download_file(REPO, FILE, models_dir=models_dir)
    elapsed = time.perf_counter() - t0
    path.unlink()
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    size = args.size_mb * 1024 * 1024
    child = subprocess.Popen([sys.executable, "-c", SERVE.format(repo=REPO, file=FILE, size=size)],
                             cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        hub_url, cdn_url = child.stdout.readline().split()
        os.environ["HF_ENDPOINT"] = hub_url
        os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["LLAMADESK_HOME"] = str(Path(tmp) / "home")
            os.environ["HF_HOME"] = str(Path(tmp) / "hf")
            url = f"{cdn_url}/cdn/{REPO}/{FILE}"
            plain_get(url, Path(tmp) / "plain.bin")  # warm-up: imports, first connections
            ours(Path(tmp) / "models")
            plain_s, ours_s = [], []
            for _ in range(args.rounds):  # alternate so both see the same machine state
                plain_s.append(plain_get(url, Path(tmp) / "plain.bin"))
                ours_s.append(ours(Path(tmp) / "models"))
        mb = size / 1e6
        best_plain, best_ours = mb / min(plain_s), mb / min(ours_s)
        print(f"file: {args.size_mb} MiB from a loopback server, best of {args.rounds}")
        print(f"plain streaming GET to file : {best_plain:8.1f} MB/s  ({', '.join(f'{s:.2f}' for s in plain_s)} s)")
        print(f"LlamaDesk (Range + sha256)  : {best_ours:8.1f} MB/s  ({', '.join(f'{s:.2f}' for s in ours_s)} s)")
        ratio = best_ours / best_plain
        print(f"ratio ours/plain            : {ratio:8.3f}  (target >= 0.9)")
        return 0 if ratio >= 0.9 else 1
    finally:
        child.stdin.close()
        child.wait(30)


if __name__ == "__main__":
    sys.exit(main())
