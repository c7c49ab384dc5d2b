"""What the screenshot scripts share: where the project and the pictures are, a private
data folder, and driving the window's event loop until it shows what is to be pictured.

A script in this folder imports it first (``import shots``); that puts the project on
``sys.path``, so the script can import the app afterwards.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def private_home(prefix: str = "llamadesk-shots-") -> str:
    """Point LLAMADESK_HOME at a fresh temporary folder (before the app reads its paths)."""
    home = tempfile.mkdtemp(prefix=prefix)
    os.environ["LLAMADESK_HOME"] = home
    return home


def settle(app, rounds: int = 20) -> None:
    """Let queued events run (layouts, repaints, results arriving from worker threads)."""
    for _ in range(rounds):
        app.processEvents()


def wait(app, predicate, timeout_s: float = 120.0) -> None:
    """Run the event loop until ``predicate()`` holds, then let the window settle."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("gave up waiting")
        app.processEvents()
        time.sleep(0.02)
    settle(app)


def close(app, window) -> None:
    """Close a window as a user would, and let what it started wind down."""
    window.close()
    settle(app)
