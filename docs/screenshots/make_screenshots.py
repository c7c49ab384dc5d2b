"""Write the README's screenshots: main window (light, dark), the model manager (catalog,
library, a finished conversion, downloads in progress) and settings.

Run under a real X server so Qt draws as it does for users:
    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python docs/screenshots/make_screenshots.py
Everything happens in a private LLAMADESK_HOME; the Hub is the loopback stand-in from
tests/fixtures (throttled, so the download is caught in progress).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
os.environ["LLAMADESK_HOME"] = tempfile.mkdtemp(prefix="llamadesk-shots-")
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="llamadesk-shots-hf-")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.pop("HF_TOKEN", None)

DEMO_REPLY = """Here is a small Python function that counts the words in a text:

```python
from collections import Counter

def word_counts(text: str) -> Counter:
    \"\"\"How often each word appears, ignoring case.\"\"\"
    return Counter(word.lower() for word in text.split())
```

Call it with any string, for example `word_counts("the llama and the alpaca")`, and it returns
`Counter({'the': 2, 'llama': 1, 'and': 1, 'alpaca': 1})`.

- **Counter** keeps the counts in a dictionary
- `.most_common(3)` gives the three most frequent words
"""


def seed_chats(store) -> int:
    for title, question in (("Trip to Peru", "What should I pack for the Andes?"),
                            ("Sourdough starter", "How often should I feed my starter?")):
        conv = store.create(title)
        store.add_user_message(conv, question)
    pinned = store.create("Llama facts")
    store.add_user_message(pinned, "How long do llamas live?")
    store.set_pinned(pinned, True)
    conv = store.create()
    store.add_user_message(conv, "Write a Python function that counts words in a text.")
    writer = store.start_reply(conv, model="SmolLM2-135M-Instruct.Q4_1")
    writer.append(DEMO_REPLY)
    writer.finish("complete", {"gen_tps": 158.0, "ttft_s": 0.09, "gen_tokens": 112})
    return conv


def make_library(tiny_dir: Path) -> None:
    """The models folder of the library picture: a real tiny Llama 3 checkpoint (converted in
    the Convert picture) and an older-style GGUF whose EOS is <|end_of_text|>."""
    from common.paths import data_paths
    from tests.fixtures.hub_server import write_llama3_gguf
    from tests.fixtures.tiny_llama import make_tiny_llama

    make_tiny_llama(tiny_dir)
    models = data_paths().models
    models.mkdir(parents=True, exist_ok=True)
    write_llama3_gguf(models / "Meta-Llama-3-8B-Instruct-early-conversion.gguf", eos="<|end_of_text|>",
                      name="Meta Llama 3 8B Instruct", tensor_bytes=1 << 16)


def wait_until(app, predicate, timeout_s: float = 120.0) -> None:
    """Run the event loop until ``predicate()`` holds (checked every 20 ms)."""
    import time

    from PySide6.QtCore import QEventLoop, QTimer

    if predicate():
        return
    loop = QEventLoop()
    deadline = time.monotonic() + timeout_s
    state = {"timed_out": False}

    def check():
        if predicate():
            loop.quit()
        elif time.monotonic() > deadline:
            state["timed_out"] = True
            loop.quit()

    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(20)
    loop.exec()
    timer.stop()
    if state["timed_out"]:
        raise TimeoutError("gave up waiting")


def main() -> int:
    import huggingface_hub.constants as hf_constants
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from tests.fixtures.hub_server import FakeRepo, HubServer

    repo_id = "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF"
    blob = b"GGUF" + bytes(48 << 20)
    server = HubServer()
    server.add_repo(FakeRepo(repo_id, {"Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf": blob,
                                       "Meta-Llama-3.1-8B-Instruct-Q8_0.gguf": blob[: 30 << 20],
                                       "README.md": b"# GGUF\n"}, downloads=120000, likes=700,
                             tags=["gguf", "llama"]))
    server.throttle_bps = 3_000_000
    server.start()
    os.environ["HF_ENDPOINT"] = server.url
    hf_constants.ENDPOINT = server.url
    hf_constants.HUGGINGFACE_CO_URL_TEMPLATE = server.url + "/{repo_id}/resolve/{revision}/{filename}"

    app = QApplication(sys.argv[:1])
    app.setApplicationName("LlamaDesk")
    from app.main_window import MainWindow
    from chat.store import ChatStore
    from common.settings import Settings, save_settings
    from engine.types import GenerationParams
    from models.bundled import bundled_model_path

    save_settings(Settings(theme="light"))
    store = ChatStore.open()
    conv = seed_chats(store)
    w = MainWindow(str(bundled_model_path()), n_ctx=4096, store=store)
    w.resize(1180, 760)
    w.show()
    wait_until(app, lambda: w.model_ready)
    w.session.open(conv)
    w.settings.params = GenerationParams(max_tokens=48, temperature=0.0, seed=1)
    done = []
    w.reply_completed.connect(done.append)
    w.send("Thanks! How do I show only the three most common words?")
    wait_until(app, lambda: done)
    w.composer.setPlainText("Can you also ignore punctuation?")
    wait_until(app, lambda: "/ 4,096" in w.context_meter.label.text(), 30)
    app.processEvents()
    w.grab().save(str(OUT / "main-light.png"))
    w.set_theme("dark")
    app.processEvents()
    w.grab().save(str(OUT / "main-dark.png"))
    w.set_theme("light")

    tiny_dir = Path(tempfile.mkdtemp(prefix="llamadesk-shots-ckpt-")) / "Tiny-Llama-3-Instruct"
    make_library(tiny_dir)

    win = w.open_model_manager()
    win.resize(980, 620)
    cat = win.discover.catalog
    wait_until(app, lambda: cat.mem is not None, 60)
    app.processEvents()
    win.grab().save(str(OUT / "model-catalog.png"))

    win.tabs.setCurrentWidget(win.convert)
    win.convert.source.setText(str(tiny_dir))
    win.convert.update_estimate()
    wait_until(app, lambda: bool(win.convert.sizes), 60)
    finished = []
    win.convert.conversion_finished.connect(finished.append)
    win.convert.start()
    wait_until(app, lambda: finished, 180)
    app.processEvents()
    win.grab().save(str(OUT / "convert.png"))
    # the quant chooser open, sizes next to every option: a popup is its own window, so grab the screen
    win.convert.quant.showPopup()
    app.processEvents()
    frame = win.frameGeometry()
    QGuiApplication.primaryScreen().grabWindow(0, frame.x(), frame.y(), frame.width(), 310).save(
        str(OUT / "quant-chooser.png"))
    win.convert.quant.hidePopup()

    win.tabs.setCurrentWidget(win.library)
    win.library.refresh()
    wait_until(app, lambda: any(e.warnings for e in win.library.entries)
               and any(e.provenance for e in win.library.entries), 60)
    win.library.list.setCurrentRow(next(i for i, e in enumerate(win.library.entries) if e.warnings))
    app.processEvents()
    win.grab().save(str(OUT / "library.png"))

    win.discover.show_repo(repo_id)
    wait_until(app, lambda: win.discover.files.rowCount() > 0, 30)
    for r in range(win.discover.files.rowCount()):
        if win.discover.files.item(r, 0).text().endswith(".gguf"):
            win.discover.files.item(r, 0).setCheckState(win.discover.files.item(r, 0).checkState().Checked)
    win.discover._on_download_clicked()
    wait_until(app, lambda: any(20 < b.value() < 900 for b in win.downloads.bars.values()), 60)
    first = min(win.downloads.bars)
    win.bridge.manager.pause(max(win.downloads.bars))
    wait_until(app, lambda: win.downloads.states.get(max(win.downloads.bars)) == "paused", 30)
    wait_until(app, lambda: win.downloads.bars[first].value() > 150, 60)
    win.grab().save(str(OUT / "model-manager.png"))
    win.close()

    dialog = w.open_settings()
    app.processEvents()
    dialog.grab().save(str(OUT / "settings.png"))
    dialog.close()
    w.close()
    store.close()
    server.stop()
    for name in ("main-light.png", "main-dark.png", "model-catalog.png", "convert.png", "quant-chooser.png",
                 "library.png", "model-manager.png", "settings.png"):
        print(OUT / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
