"""Write the picture of a conversation reopened after a restart: the status bar says how its
saved KV cache came back ("Restored 2,345 tokens in 0.1 s") and the meter is full at once.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python docs/screenshots/make_reopen_screenshot.py
"""
from __future__ import annotations

import sys

import shots
from shots import OUT

TURNS = [
    ("Why were lighthouses built where they were?",
     "Lighthouses were placed where ships met danger: reefs, sandbars, headlands and harbour "
     "mouths. A light had to be seen from far out at sea, so towers went up on high ground or "
     "were built tall on low coasts. Early lights burned wood or coal in open braziers; later, "
     "oil lamps with reflectors and then Fresnel lenses threw a beam many miles. "),
    ("Who kept them, and what was the work like?",
     "Keepers, often with their families, trimmed wicks, polished lenses, wound the clockwork "
     "that turned the lens, and kept a log of weather and passing ships. Nights were long and "
     "the work was lonely, especially on rock stations far offshore, where supplies came by boat "
     "and storms could cut a station off for weeks. "),
    ("How did a Fresnel lens change things?",
     "Augustin Fresnel's lens, from the 1820s, used rings of prisms to bend light from one lamp "
     "into a strong, narrow beam. It wasted far less light than mirrors did, so a modest flame "
     "could be seen twenty miles away or more. Lenses came in orders by size, the first order "
     "being the largest, used on major coastal lights. "),
    ("When did keepers disappear?",
     "Through the twentieth century electricity, automatic lamp changers and radio beacons "
     "replaced most keepers. Many stations were automated between the 1960s and 1990s; the "
     "last keepers in several countries left in the late 1990s. Today satellite navigation does "
     "much of what lights once did, but many lights still shine as aids and as landmarks. "),
]


def main() -> int:
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    shots.private_home()
    from app.main_window import MainWindow
    from chat.store import ChatStore
    from common.inference_options import LoadOptions
    from common.settings import Settings, save_settings
    from engine.types import GenerationParams
    from models.bundled import bundled_model_path

    def wait(predicate, timeout_s: float = 600.0) -> None:
        shots.wait(app, predicate, timeout_s)

    model = str(bundled_model_path())
    save_settings(Settings(welcome_done=True, load=LoadOptions(threads=1, n_ctx=4096), active_model=model))
    with ChatStore.open() as store:
        conv = store.create(title="Lighthouses and their keepers")
        for question, answer in TURNS:
            store.add_user_message(conv, question)
            w = store.start_reply(conv, model="SmolLM2-135M-Instruct.Q4_1")
            w.append((answer * 3).strip())
            w.finish()

    # First run: the conversation is read once for its next reply, then its cache is saved.
    w = MainWindow()
    w.show()
    wait(lambda: w.model_ready)
    w.settings.params = GenerationParams(max_tokens=40, temperature=0.0, seed=1)
    done = []
    w.reply_completed.connect(done.append)
    w.send("Which lighthouse is the oldest still working?")
    wait(lambda: bool(done))
    shots.close(app, w)           # waits for the saved cache to be on disk

    # The app again: the conversation opens with its cache restored.
    w = MainWindow()
    w.resize(980, 620)
    restored = []
    w.memory.restored.connect(restored.append)
    w.show()
    wait(lambda: bool(restored) and "tokens" in w.context_meter.label.text())
    path = OUT / "reopen-restored.png"
    w.grab().save(str(path))
    print(restored[0])
    shots.close(app, w)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
