"""Write the trash pictures (light and dark): the window with three chats in the trash
(the sidebar's "Trash (3)") and the Trash dialog over it, one chat selected. Xvfb has
no window manager, so the dialog is drawn over the window where one would place it,
with a thin outline in place of its title bar.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python docs/screenshots/make_trash_screenshots.py
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

CHATS = [("Trip to Lisbon", "What should I see in three days?"),
         ("Python decorators", "Explain decorators with an example."),
         ("Sourdough schedule", "When do I feed the starter?"),
         ("Old draft: cover letter", "Make this shorter."),
         ("Quarterly report outline", "Give me a structure for the report."),
         ("Packing list (2019)", "What did I forget?")]
DELETED = ("Old draft: cover letter", "Packing list (2019)", "Sourdough schedule")


def main() -> int:
    from PySide6.QtCore import QPoint, QRect, QSize
    from PySide6.QtGui import QColor, QPainter
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from app.main_window import MainWindow
    from chat.store import ChatStore
    from common.settings import Settings

    def settle() -> None:
        for _ in range(40):
            app.processEvents()

    for theme in ("light", "dark"):
        os.environ["LLAMADESK_HOME"] = tempfile.mkdtemp(prefix="llamadesk-trash-shots-")
        with ChatStore.open() as store:
            ids = {}
            for title, question in CHATS:
                ids[title] = store.create(title)
                store.add_user_message(ids[title], question)
            for title in DELETED:
                store.delete(ids[title])
        window = MainWindow(model_path="", settings=Settings(theme=theme))
        window.resize(980, 620)
        window.show()
        for _ in range(600):                  # the demo model loads (a second or two)
            if window.model_ready:
                break
            app.processEvents()
            time.sleep(0.05)
        settle()
        trash = window.open_trash()
        trash.resize(440, 360)
        trash.list.setCurrentRow(1)
        settle()
        picture = window.grab()
        dialog = trash.grab()
        painter = QPainter(picture)
        at = QPoint(300, 110)
        painter.fillRect(QRect(at + QPoint(4, 4), dialog.size() / dialog.devicePixelRatio()),
                         QColor(0, 0, 0, 60))
        painter.drawPixmap(at, dialog)
        painter.setPen(QColor("#6b7280"))
        painter.drawRect(QRect(at - QPoint(1, 1), dialog.size() / dialog.devicePixelRatio() + QSize(1, 1)))
        painter.end()
        picture.save(str(OUT / f"trash-{theme}.png"))
        trash.close()
        window.close()
        settle()
    return 0


if __name__ == "__main__":
    sys.exit(main())
