"""Starting the GUI: one window per data folder, and it always opens or says why.

``run_app`` first asks a window already open on the same data folder to come forward
(``app.single_instance``); then it loads the settings (bad values fall back to their
defaults, and the window says which), opens the chats (a damaged database is kept
aside or opened read-only, as the user chooses: ``app.startup``) and shows the
window with a banner for anything the user should know.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Optional


@dataclass
class Started:
    window: object                 # MainWindow
    store: object                  # ChatStore
    server: object                 # InstanceServer
    notices: list

    def close(self) -> None:
        self.server.close()
        self.window.close()
        self.store.close()


def run_app(argv: list[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from app import error_report
    from app.single_instance import bring_forward_running
    from common.paths import data_paths

    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("LlamaDesk")
    app.setOrganizationName("LlamaDesk")
    error_report.install()
    paths = data_paths()
    if bring_forward_running(paths.data):
        print("LlamaDesk is already open: its window was brought forward.", file=sys.stderr)
        return 0
    started = start_window()
    if started is None:
        return 1
    try:
        return app.exec()
    finally:
        started.server.close()
        started.store.close()


def start_window(ask=None, tell=None, model_path: Optional[str] = None) -> Optional[Started]:
    """Load settings and chats, show the window; None when the user chose to quit."""
    from PySide6.QtCore import Qt

    from app import startup
    from app.main_window import MainWindow
    from app.single_instance import InstanceServer
    from app.widgets.notice_bar import NoticeBar
    from common.paths import data_paths
    from common.settings import load_settings_checked
    from models.bundled import bundled_model_path

    paths = data_paths()
    loaded = load_settings_checked()
    opened = startup.open_chats(paths.chats_db, ask=ask or startup.ask_with_dialog,
                                tell=tell or startup.tell_with_dialog)
    if opened.store is None:
        return None
    if model_path is None:
        model = bundled_model_path()
        model_path = str(model) if model else None
    window = MainWindow(model_path, settings=loaded.settings, store=opened.store)
    notices = list(opened.notices)
    if opened.store.read_only:
        bar = NoticeBar(opened.notices[:1], closable=False)
        bar.setObjectName("ReadOnlyBanner")
        window.addToolBar(Qt.TopToolBarArea, bar)
        notices_left = opened.notices[1:]
    else:
        notices_left = opened.notices
    if loaded.problems:
        notices_left = notices_left + ["Some settings were not valid, so they use their defaults: "
                                       + "; ".join(loaded.problems) + "."]
    if notices_left:
        window.addToolBarBreak(Qt.TopToolBarArea)
        window.addToolBar(Qt.TopToolBarArea, NoticeBar(notices_left))
    notices += [n for n in notices_left if n not in notices]
    server = InstanceServer(paths.data, window)
    server.raise_requested.connect(lambda: _bring_forward(window))
    server.listen()
    window.show()
    return Started(window, opened.store, server, notices)


def _bring_forward(window) -> None:
    from PySide6.QtCore import Qt

    window.setWindowState((window.windowState() & ~Qt.WindowMinimized) | Qt.WindowActive)
    window.show()
    window.raise_()
    window.activateWindow()
