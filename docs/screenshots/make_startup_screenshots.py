"""Write the window-start pictures: a damaged chat database (the question, then the
read-only window), a junk database and junk settings (kept aside, defaults named), and
chats held by another process (read-only with a banner).

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python docs/screenshots/make_startup_screenshots.py
"""
from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import shots
from shots import OUT


def seed(store) -> None:
    for title in ("Trip to Lisbon", "Python decorators", "Sourdough schedule", "Quarterly report outline"):
        conv = store.create(title=title)
        store.add_user_message(conv, "Help me plan: " + title + ". " + "Details follow. " * 30)


def damage(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'messages_by_parent'").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(path, "r+b") as f:
        f.seek((page - 1) * size + 8)
        f.write(b"\xff" * 200)


def main() -> int:
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from app import startup
    from app.application import start_window
    from chat.store import ChatStore
    from common.paths import data_paths

    def settle(window) -> None:
        window.resize(1100, 700)
        for _ in range(30):
            app.processEvents()

    def grab_and_answer(name: str, answer: str):
        def ask(path, problem, can_read):
            dialog = startup.DatabaseProblemDialog(path, problem, can_read)
            dialog.show()
            for _ in range(20):
                app.processEvents()
            dialog.grab().save(str(OUT / name))
            dialog.close()
            return answer
        return ask

    # 1. damaged, still readable: the question, then read-only
    shots.private_home("llamadesk-startup-shots-")
    with ChatStore.open() as store:
        seed(store)
    damage(data_paths().chats_db)
    s = start_window(ask=grab_and_answer("startup-damaged-database.png", startup.READ_ONLY), model_path="")
    settle(s.window)
    s.window.grab().save(str(OUT / "startup-read-only.png"))
    s.close()

    # 2. not a database, and settings with bad values: kept aside, defaults named
    shots.private_home("llamadesk-startup-shots-")
    paths = data_paths()
    paths.data.mkdir(parents=True)
    paths.chats_db.write_bytes(os.urandom(8192))
    paths.config.mkdir(parents=True)
    paths.settings_file.write_text(json.dumps({"temperature": 9, "top_k": "many", "theme": "pink"}))
    s = start_window(ask=grab_and_answer("startup-not-a-database.png", startup.KEEP_ASIDE), model_path="")
    settle(s.window)
    s.window.grab().save(str(OUT / "startup-kept-aside.png"))
    s.close()

    # 3. another process holds the chats and no window answers: read-only with a banner
    shots.private_home("llamadesk-startup-shots-")
    holder = ChatStore.open()
    seed(holder)
    s = start_window(model_path="")
    settle(s.window)
    s.window.grab().save(str(OUT / "startup-second-instance.png"))
    s.close()
    holder.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
