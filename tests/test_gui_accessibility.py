"""Every control has a name a screen reader can say, and the layout holds at a 2x device pixel ratio."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import (QAbstractButton, QAbstractItemView, QAbstractSlider, QAbstractSpinBox, QApplication,
                               QComboBox, QLabel, QLineEdit, QPlainTextEdit, QScrollBar, QSizePolicy, QTabBar,
                               QTextEdit, QWidget)

pytestmark = pytest.mark.usefixtures("one_engine_thread")


ROOT = Path(__file__).resolve().parents[1]
INTERACTIVE = (QAbstractButton, QLineEdit, QPlainTextEdit, QTextEdit, QComboBox, QAbstractSpinBox,
               QAbstractItemView, QAbstractSlider, QTabBar)
# Qt builds these from parts (a spin box's line edit, a line edit's clear button, a view's
# header); the composite control is what carries the name.
COMPOSITES = (QAbstractSpinBox, QComboBox, QAbstractItemView, QTabBar, QLineEdit)


def interactive_controls(root: QWidget):
    for w in root.findChildren(QWidget):
        if not isinstance(w, INTERACTIVE) or isinstance(w, QScrollBar):
            continue
        parent = w.parentWidget()
        while parent is not None and parent is not root and not isinstance(parent, COMPOSITES):
            parent = parent.parentWidget()
        if parent is None or parent is root:
            yield w


def spoken_name(w: QWidget) -> str:
    """What assistive technology reads: the accessible name, else what Qt derives (button text, buddy)."""
    if w.accessibleName().strip():
        return w.accessibleName().strip()
    iface = QAccessible.queryAccessibleInterface(w)
    return (iface.text(QAccessible.Name) if iface is not None else "").replace("&", "").strip()


def test_every_control_in_the_window_manager_and_settings_has_a_name(qtbot, make_window):
    w = make_window()
    manager = w.open_model_manager()
    settings = w.open_settings()
    qtbot.addWidget(settings)
    try:
        for window in (w, manager, settings):
            controls = list(interactive_controls(window))
            assert len(controls) > 10
            nameless = [f"{type(c).__name__} in {type(c.parentWidget()).__name__}"
                        for c in controls if not spoken_name(c)]
            assert nameless == [], f"{type(window).__name__}: controls without a name: {nameless}"
        # spot checks: the names are the ones a person would expect
        assert spoken_name(w.send_button) == "Send message"
        assert spoken_name(manager.library.delete_button) == "Remove the model and its files"
        assert spoken_name(manager.discover.catalog.table) == "Llama 3 catalog"
        assert spoken_name(settings.temperature) == "Temperature"
    finally:
        settings.close()
        manager.close()


def dpr_probe() -> dict:
    """Run in a subprocess started with QT_SCALE_FACTOR=2: measure the real windows."""
    from app.main_window import MainWindow
    from models.bundled import bundled_model_path

    app = QApplication(sys.argv[:1])
    w = MainWindow(str(bundled_model_path()), n_ctx=512)
    w.show()
    manager = w.open_model_manager()
    settings = w.open_settings()
    app.processEvents()
    out = {"dpr": w.devicePixelRatio(),
           "send_icon_px": w.send_button.icon().pixmap(w.send_button.iconSize(), 2.0).width(),
           "icon_size": w.send_button.iconSize().width()}
    for name, win in (("main", w), ("manager", manager), ("settings", settings)):
        shot = win.grab()
        squeezed = []
        for c in win.findChildren(QWidget):
            if not c.isVisible() or not isinstance(c, (QLabel, QAbstractButton, QComboBox, QLineEdit,
                                                        QAbstractSpinBox)):
                continue
            if isinstance(c.parentWidget(), QAbstractSpinBox):
                continue
            if c.sizePolicy().horizontalPolicy() == QSizePolicy.Ignored:
                continue  # elides on purpose; the tooltip has the whole text
            hint = c.minimumSizeHint()
            if c.width() < hint.width() or c.height() < hint.height():
                squeezed.append(f"{type(c).__name__} {spoken_name(c)!r} {c.width()}x{c.height()} "
                                f"< {hint.width()}x{hint.height()}")
        out[name] = {"size": [win.width(), win.height()], "grab": [shot.width(), shot.height()],
                     "grab_dpr": shot.devicePixelRatio(),
                     "minimum": [win.minimumSizeHint().width(), win.minimumSizeHint().height()],
                     "squeezed": squeezed}
    w.close()   # as the app closes: the main window closes its dialogs and waits for its jobs
    app.processEvents()
    return out


def test_layout_holds_at_a_2x_device_pixel_ratio():
    env = dict(os.environ, QT_SCALE_FACTOR="2", QT_QPA_PLATFORM="offscreen")
    code = ("import json, tests.test_gui_accessibility as t; "
            "print('PROBE ' + json.dumps(t.dpr_probe()), flush=True)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("PROBE ")]
    assert run.returncode == 0 and lines, run.stderr[-2000:]
    found = json.loads(lines[-1][len("PROBE "):])
    assert found["dpr"] == 2.0
    assert found["send_icon_px"] >= 2 * found["icon_size"]          # icons drawn for 2x, not upscaled
    for name in ("main", "manager", "settings"):
        win = found[name]
        assert win["grab_dpr"] == 2.0 and win["grab"] == [2 * win["size"][0], 2 * win["size"][1]]
        assert win["squeezed"] == [], f"{name}: {win['squeezed']}"
        # fits a 1920x1080 screen at 200% (960x540 logical pixels)
        assert win["minimum"][0] <= 960 and win["minimum"][1] <= 540, f"{name}: {win['minimum']}"
