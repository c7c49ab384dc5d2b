"""Write library-quality.png: the library showing a measured file's quality, in words.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python docs/screenshots/make_quality_screenshot.py

In a private LLAMADESK_HOME: the demo model (SmolLM2-135M Q4_1) is written out as F16 by
llama.cpp, which then makes a Q4_0 and a Q8_0 from that F16; the Q4_0 is measured against
the F16 (4 chunks of the calibration text) and the Q8_0 is left unmeasured. The picture
shows the Q4_0 selected.
"""
from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from pathlib import Path

import shots
from shots import OUT

shots.private_home()
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="llamadesk-shots-hf-")


def requantize(src: Path, dst: Path, file_type: int) -> None:
    import llama_cpp

    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype, p.nthread, p.allow_requantize = file_type, os.cpu_count() or 2, True
    if llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(p)) != 0:
        raise SystemExit(f"could not write {dst.name}")


def main() -> int:
    import gguf
    from PySide6.QtWidgets import QApplication

    from common.paths import data_paths
    from engine.quality import measure_and_record
    from models.bundled import bundled_model_path

    folder = data_paths().models / "SmolLM2-135M-Instruct"
    folder.mkdir(parents=True, exist_ok=True)
    f16, q4, q8 = (folder / f"SmolLM2-135M-Instruct-{q}.gguf" for q in ("F16", "Q4_0", "Q8_0"))
    requantize(bundled_model_path(), f16, int(gguf.LlamaFileType.MOSTLY_F16))
    requantize(f16, q4, int(gguf.LlamaFileType.MOSTLY_Q4_0))
    requantize(f16, q8, int(gguf.LlamaFileType.MOSTLY_Q8_0))
    measure_and_record(f16, q4, max_chunks=4)

    app = QApplication(sys.argv[:1])
    app.setApplicationName("LlamaDesk")
    from app.main_window import MainWindow
    from common.settings import Settings, save_settings

    save_settings(Settings(theme="light"))
    w = MainWindow(str(bundled_model_path()), n_ctx=2048)
    w.resize(1180, 760)
    w.show()
    win = w.open_model_manager()
    win.resize(1060, 560)
    win.tabs.setCurrentWidget(win.library)
    win.library.refresh()
    shots.wait(app, lambda: any(e.quality for e in win.library.entries), 600.0)
    win.library.list.setCurrentRow(next(i for i, e in enumerate(win.library.entries) if e.path == q4))
    app.processEvents()
    win.grab().save(str(OUT / "library-quality.png"))
    win.close()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
