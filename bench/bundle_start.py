"""Start-up to a visible window: the bundle (make dist) against `python main.py`.

Each run starts the program under one Xvfb with a fresh LLAMADESK_HOME and times it
from the start of the process to its window being mapped (xdotool search --sync
--onlyvisible), then closes it. "Cold" runs first drop the program's own files from
the page cache (posix_fadvise DONTNEED on every file of the bundle folder, or of the
source tree, .venv's site-packages and the Python installation), so they read from
disk as a first start after a reboot would, without touching the rest of the machine's
cache; "warm" runs follow straight after. Runs alternate between the two programs, so
a change in the machine's load lands on both.

    python bench/bundle_start.py [--runs 3] [--bundle dist/LlamaDesk/llamadesk]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def drop_from_cache(folders: list[Path]) -> int:
    count = 0
    for folder in folders:
        for dirpath, _dirs, names in os.walk(folder):
            for n in names:
                p = os.path.join(dirpath, n)
                if os.path.islink(p):
                    continue
                try:
                    fd = os.open(p, os.O_RDONLY)
                except OSError:
                    continue
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    count += 1
                finally:
                    os.close(fd)
    return count


def time_to_window(cmd: list[str], display: str, work: Path) -> float:
    home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
    env = {"HOME": str(home), "LLAMADESK_HOME": str(home / "ld"), "DISPLAY": display,
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        found = subprocess.run(["xdotool", "search", "--sync", "--onlyvisible", "--pid", str(proc.pid)],
                               env={**os.environ, "DISPLAY": display}, capture_output=True, text=True, timeout=180)
        shown = time.monotonic() - started
        if not found.stdout.strip():
            raise SystemExit(f"no window from {cmd}")
        return shown
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bundle", default=str(ROOT / "dist" / "LlamaDesk" / "llamadesk"))
    args = ap.parse_args()
    bundle = Path(args.bundle).resolve()
    if not bundle.is_file():
        raise SystemExit(f"{bundle} is missing: run `make dist` first")
    venv_python = ROOT / ".venv" / "bin" / "python"
    programs = {
        "bundle": ([str(bundle)], [bundle.parent]),
        "python main.py": ([str(venv_python), str(ROOT / "main.py")],
                           [ROOT / d for d in ("app", "chat", "cli", "common", "converters", "engine", "models",
                                               "server", "assets")]
                           + [Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["stdlib"])]),
    }
    r, w = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            pass_fds=(w,), stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        display = ":" + f.readline().strip()
    results: dict[tuple[str, str], list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.runs):
                for name, (cmd, folders) in programs.items():
                    drop_from_cache(folders)
                    results.setdefault((name, "cold"), []).append(time_to_window(cmd, display, Path(tmp)))
                    results.setdefault((name, "warm"), []).append(time_to_window(cmd, display, Path(tmp)))
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)
    print(f"start to a visible window, {args.runs} runs each (median, min-max), load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs:")
    for (name, kind), times in results.items():
        print(f"  {name:15} {kind}: {statistics.median(times):5.2f} s  ({min(times):.2f}-{max(times):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
