"""Quantize an F16/BF16/F32 GGUF with llama.cpp, with progress and prompt cancellation."""
from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional

from common.task import Cancelled, TaskHandle
from converters.errors import ConversionError
from converters.quant_types import QUANT_TYPES_INFO

_ROOT = Path(__file__).resolve().parents[1]


def default_threads() -> int:
    return max(1, os.cpu_count() or 1)


def quantize_gguf(src: Path, dst: Path, qtype: str, *, threads: Optional[int] = None,
                  handle: Optional[TaskHandle] = None) -> None:
    """Write ``dst`` from ``src``; on failure or cancel, ``dst`` is removed."""
    handle = handle or TaskHandle()
    info = QUANT_TYPES_INFO[qtype]
    cmd = [sys.executable, "-m", "converters.quantize_worker", str(src), str(dst),
           str(info.file_type), str(threads or default_threads())]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")])))
    handle.check()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=str(_ROOT))
    lines: queue.Queue = queue.Queue()
    errors: list[str] = []

    def pump_stdout():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def pump_stderr():
        for line in proc.stderr:
            errors.append(line)

    readers = [threading.Thread(target=pump_stdout, daemon=True, name="quantize-stdout"),
               threading.Thread(target=pump_stderr, daemon=True, name="quantize-stderr")]
    for t in readers:
        t.start()
    result = None
    total = 0   # tensors, as llama.cpp counts them
    try:
        while True:
            handle.check()
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            parts = line.split()
            if parts[:1] == ["PROGRESS"] and len(parts) >= 4:
                i, total = int(parts[1]), int(parts[2])
                handle.progress(i - 1, total, unit="tensors", message=parts[3], stage="quantize",
                                tensor=i - 1, tensors=total)
            elif parts[:1] == ["DONE"]:
                result = int(parts[1])
        proc.wait()
    except Cancelled:
        proc.kill()
        proc.wait()
        _remove(dst)
        raise
    finally:
        for t in readers:
            t.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
    if proc.returncode != 0 or result != 0:
        _remove(dst)
        detail = " ".join("".join(errors).split())[-300:] or f"exit status {proc.returncode}"
        raise ConversionError(f"llama.cpp could not quantize the model to {info.label} ({detail}).")
    total = total or 1
    handle.progress(total, total, unit="tensors", message="quantized", stage="quantize",
                    tensor=total, tensors=total)


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
