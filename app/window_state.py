"""Window geometry and splitter sizes, kept in an INI file in the config folder."""
from __future__ import annotations

from PySide6.QtCore import QSettings

from common.paths import data_paths


def window_settings() -> QSettings:
    path = data_paths().config / "window.ini"
    path.parent.mkdir(parents=True, exist_ok=True)
    return QSettings(str(path), QSettings.IniFormat)


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
