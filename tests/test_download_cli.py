"""The search, download and models commands, run as a user would, against the Hub stand-in."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from common.paths import data_paths
from tests.fixtures.hub_server import GATED_REPO, GGUF_MAIN, GGUF_REPO, OPEN_REPO

ROOT = Path(__file__).resolve().parents[1]


def llamadesk(*args, timeout=120):
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


def test_search_and_file_listing(hub_server):
    out = llamadesk("search", "llama", "--gguf")
    assert out.returncode == 0, out.stderr
    assert GGUF_REPO in out.stdout and OPEN_REPO not in out.stdout
    out = llamadesk("search", "--files", GGUF_REPO)
    assert "Q4_K_M" in out.stdout and "(2/2 parts)" in out.stdout


def test_download_then_models_table(hub_server):
    out = llamadesk("download", GGUF_REPO, "--include", "*Q4_K_M*.gguf")
    assert out.returncode == 0, out.stderr
    path = data_paths().models / "bartowski" / "Llama-3.2-1B-Instruct-GGUF" / GGUF_MAIN
    assert f"{GGUF_MAIN} -> {path}" in out.stdout
    assert path.read_bytes() == hub_server.state.repos[GGUF_REPO].files[GGUF_MAIN]
    table = llamadesk("models")
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith(GGUF_MAIN))
    assert "llama" in row and "F32" in row and "downloaded" in row and GGUF_REPO in row


def test_gated_download_prints_the_sign_in_message(hub_server):
    out = llamadesk("download", GATED_REPO)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f"error: {GATED_REPO} is a gated model: sign in with a Hugging Face token to download it "
        f"(set HF_TOKEN, run `hf auth login`, or enter a token in LlamaDesk; create one at "
        f"{hub_server.url}/settings/tokens).")


def test_ctrl_c_keeps_the_partial_and_the_same_command_resumes(hub_server):
    # The stand-in stops mid-file until released, so Ctrl-C always lands mid-download
    # however slowly the child starts or the machine runs.
    hold = hub_server.hold_after(GGUF_MAIN, 300_000)
    args = [sys.executable, "main.py", "download", GGUF_REPO, "--include", GGUF_MAIN]
    child = subprocess.Popen(args, cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    part = data_paths().models / "bartowski" / "Llama-3.2-1B-Instruct-GGUF" / (GGUF_MAIN + ".part")
    try:
        assert hold.reached.wait(120), "the download never started"
        tick = threading.Event()
        for _ in range(1200):  # bounded wait for the child to write what it received
            if part.exists() and part.stat().st_size >= 300_000:
                break
            tick.wait(0.05)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        hold.released.set()
    assert child.returncode == 130 and "run the same command again to resume" in err
    kept = part.stat().st_size
    assert kept > 0
    hub_server.throttle_bps = None
    out = llamadesk("download", GGUF_REPO, "--include", GGUF_MAIN)
    assert out.returncode == 0, out.stderr
    assert hub_server.ranges_for(GGUF_MAIN)[-1] == f"bytes={kept}-"


def test_original_repo_downloads_and_converts_with_provenance(hub_server):
    out = llamadesk("download", OPEN_REPO, "--convert", "f16", timeout=300)
    assert out.returncode == 0, out.stderr
    gguf = data_paths().models / "testorg" / "Tiny-Llama-3-Instruct" / "Tiny-Llama-3-Instruct-F16.gguf"
    assert f"converted to {gguf}" in out.stdout
    from models import library

    entry = next(e for e in library.scan() if e.kind == "gguf")
    assert entry.path == gguf and entry.info.quant == "F16" and entry.usable
    assert entry.provenance == {"origin": "converted", "repo": OPEN_REPO, "quant": "F16",
                                "revision": hub_server.state.repos[OPEN_REPO].sha}
    # Again: an earlier conversion is not replaced unless asked (and nothing is fetched first).
    before = gguf.stat().st_mtime_ns
    again = llamadesk("download", OPEN_REPO, "--convert", "f16")
    assert again.returncode == 1
    assert again.stderr == f"error: {gguf} already exists; add --force to convert again and replace it.\n"
    assert gguf.stat().st_mtime_ns == before
    forced = llamadesk("download", OPEN_REPO, "--convert", "f16", "--force", timeout=300)
    assert forced.returncode == 0, forced.stderr
    assert gguf.stat().st_mtime_ns != before
