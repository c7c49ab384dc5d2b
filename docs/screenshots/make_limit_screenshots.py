"""Write the pictures of two messages that must read whole (light and dark): a reply cut by
the length limit, with its note and Continue, and the Models window saying why a
pickle-only folder cannot be converted, its long message wrapped inside the window.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python docs/screenshots/make_limit_screenshots.py
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import shots
from shots import OUT

STORY = "Write a long story about a girl named Lila who sews a cloth on a boat."


def pickle_only_folder(tiny: Path) -> Path:
    """A downloaded checkpoint with only PyTorch pickles, deep in a long path, as users have."""
    src = (Path(tempfile.mkdtemp(prefix="llamadesk-shots-")) / "Downloads" / "huggingface" / "hub"
           / "models--meta-llama--Meta-Llama-3.1-8B-Instruct" / "snapshots"
           / "0e9e39f249a16976918f6564b8830bc894c89659" / "original-consolidated-weights")
    src.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny / name, src / name)
    (src / "consolidated.00.pth").write_bytes(b"\x80\x04not really a pickle")
    return src


def main() -> int:
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from app.main_window import MainWindow
    from common.settings import Settings, save_settings
    from engine.types import GenerationParams
    from models.bundled import bundled_model_path
    from tests.fixtures.tiny_llama import make_tiny_llama

    def wait(predicate, timeout_s: float = 120.0) -> None:
        shots.wait(app, predicate, timeout_s)

    tiny = Path(tempfile.mkdtemp(prefix="llamadesk-shots-ckpt-")) / "Tiny-Llama-3-Instruct"
    make_tiny_llama(tiny)
    folder = pickle_only_folder(tiny)
    for theme in ("light", "dark"):
        shots.private_home()
        save_settings(Settings(theme=theme, welcome_done=True))
        w = MainWindow(str(bundled_model_path()), n_ctx=2048)
        w.resize(980, 620)
        w.show()
        wait(lambda: w.model_ready)
        w.settings.params = GenerationParams(max_tokens=60, temperature=0.0, seed=1)
        done = []
        w.reply_completed.connect(done.append)
        w.send(STORY)
        wait(lambda: done)
        wait(lambda: w.context_meter.used > 60, 30)        # the count with the reply in it
        w.grab().save(str(OUT / f"length-limit-{theme}.png"))

        win = w.open_model_manager()
        win.resize(860, 540)
        win.tabs.setCurrentWidget(win.convert)
        win.convert.source.setText(str(folder))
        win.convert.update_estimate()
        wait(lambda: "pickle" in win.convert.estimate.text(), 60)
        win.grab().save(str(OUT / f"models-long-error-{theme}.png"))
        win.close()
        shots.close(app, w)
    for theme in ("light", "dark"):
        for name in ("length-limit", "models-long-error"):
            print(OUT / f"{name}-{theme}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
