"""Starting `main.py serve` as a real process on 127.0.0.1 for the server tests."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
READY = re.compile(r"^Serving (.+) on (http://\S+)$")


class ServeProcess:
    def __init__(self, proc: subprocess.Popen, model: str, url: str):
        self.proc, self.model, self.url = proc, model, url

    def status(self, **headers) -> dict:
        return httpx.get(self.url + "/llamadesk/status", headers=headers, timeout=30).json()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        finally:
            for f in (self.proc.stdout, self.proc.stderr):
                if f:
                    f.close()


def start_serve(model: Path, home: Path, *extra: str, timeout: float = 120) -> ServeProcess:
    """`serve` on a free port; returns once it printed its ready line."""
    env = dict(os.environ, LLAMADESK_HOME=str(home), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, str(ROOT / "main.py"), "serve", "--model", str(model), "--port", "0",
           "--threads", "1", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=str(ROOT))
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = READY.match(line.strip())
        if m:
            return ServeProcess(proc, m.group(1), m.group(2))
    proc.kill()
    err = proc.stderr.read()
    proc.wait()
    raise RuntimeError(f"serve did not start: {''.join(lines)}{err}")
