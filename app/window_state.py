"""Window geometry, splitter sizes and the open conversation, kept in an INI file in the
config folder."""
from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtGui import QGuiApplication

from common.paths import data_paths


def window_settings() -> QSettings:
    path = data_paths().config / "window.ini"
    path.parent.mkdir(parents=True, exist_ok=True)
    return QSettings(str(path), QSettings.IniFormat)


def resize_within_screen(window, width: int, height: int) -> None:
    """Give a window its default size, or less where the screen is smaller."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    if screen is not None:
        free = screen.availableGeometry()
        width, height = min(width, free.width() * 19 // 20), min(height, free.height() * 19 // 20)
    window.resize(width, height)


def restore(window, splitter) -> None:
    qs = window_settings()
    geometry = qs.value("main/geometry")
    if geometry is not None:
        window.restoreGeometry(geometry)
    state = qs.value("main/splitter")
    if state is not None:
        splitter.restoreState(state)


def save(window, splitter) -> None:
    qs = window_settings()
    qs.setValue("main/geometry", window.saveGeometry())
    qs.setValue("main/splitter", splitter.saveState())
    qs.sync()


def remember_conversation(conv_id) -> None:
    qs = window_settings()
    if conv_id is None:
        qs.remove("main/conversation")
    else:
        qs.setValue("main/conversation", int(conv_id))
    qs.sync()


def conversation_to_open(store):
    """At launch: the conversation open when the window last closed, else the most
    recently updated one, else None."""
    try:
        last = int(window_settings().value("main/conversation"))
    except (TypeError, ValueError):
        last = None
    convs = store.list()
    if any(c.id == last for c in convs):
        return last
    recent = max(convs, key=lambda c: c.updated or 0.0, default=None)   # a damaged row may lack one
    return recent.id if recent is not None else None
