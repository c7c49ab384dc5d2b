"""The Models window closes as a dialog does, and long messages wrap inside it."""
from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox

from app.main_window import MainWindow

pytestmark = pytest.mark.usefixtures("one_engine_thread")


LONG_PATH = "/home/someone/Downloads/" + "a-folder-with-a-rather-long-name-" * 4 + "/Meta-Llama-3.1-8B-Instruct"
LONG_MESSAGE = (f"{LONG_PATH} only has PyTorch pickle weights (consolidated.00.pth), which can run "
                "arbitrary code when loaded, so LlamaDesk will not open them; download the model's "
                ".safetensors files instead.")


@pytest.fixture
def main_window(qtbot, smollm2_path):
    w = MainWindow(str(smollm2_path), n_ctx=512)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


def _open(qtbot, w):
    win = w.open_model_manager()
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win)
    return win


def test_close_button_escape_and_the_platform_close_keys_close_it(qtbot, main_window):
    assert "Ctrl+W" in [k.toString() for k in QKeySequence.keyBindings(QKeySequence.Close)]
    win = _open(qtbot, main_window)
    assert win.close_button.isVisible() and win.close_button.text() == "Close"
    qtbot.mouseClick(win.close_button, Qt.LeftButton)
    assert not win.isVisible()
    win = _open(qtbot, main_window)
    qtbot.keyClick(win.tabs.currentWidget(), Qt.Key_Escape)
    assert not win.isVisible()
    win = _open(qtbot, main_window)
    qtbot.keyClick(win.tabs.currentWidget(), Qt.Key_W, Qt.ControlModifier)
    assert not win.isVisible()
    assert main_window.isVisible()
    dialog = main_window.open_settings()
    dialog.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is dialog)
    qtbot.keyClick(dialog.tabs.currentWidget(), Qt.Key_W, Qt.ControlModifier)
    assert not dialog.isVisible() and main_window.isVisible()


def test_closing_during_a_conversion_asks_first(qtbot, main_window, tiny_llama):
    win = _open(qtbot, main_window)
    tab = win.convert
    win.tabs.setCurrentWidget(tab)
    tab.source.setText(str(tiny_llama.path))
    tab.quant.setCurrentIndex(tab.quant.findData("f16"))
    tab.start()
    qtbot.keyClick(win.tabs.currentWidget(), Qt.Key_Escape)
    assert win.confirm_box is not None and win.isVisible()
    win.confirm_box.button(QMessageBox.Cancel).click()
    assert win.isVisible() and (tab.op is not None or "Done" in tab.message.text())
    qtbot.keyClick(win.tabs.currentWidget(), Qt.Key_W, Qt.ControlModifier)
    if win.confirm_box is not None:           # still converting: it asks again
        win.confirm_box.button(QMessageBox.Yes).click()
    assert not win.isVisible()
    qtbot.waitUntil(lambda: tab.op is None, timeout=20000)
    assert main_window.isVisible()


def test_a_pickle_only_folder_message_wraps_inside_the_screen(qtbot, main_window, tmp_path, tiny_llama):
    src = tmp_path / ("a-folder-with-a-rather-long-name-" * 4) / "Meta-Llama-3.1-8B-Instruct"
    src.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_llama.path / name, src / name)
    (src / "consolidated.00.pth").write_bytes(b"\x80\x04not really a pickle")
    win = _open(qtbot, main_window)
    tab = win.convert
    win.tabs.setCurrentWidget(tab)
    tab.source.setText(str(src))
    tab.update_estimate()
    qtbot.waitUntil(lambda: "pickle weights" in tab.estimate.text(), timeout=20000)
    QApplication.processEvents()
    screen = win.screen().availableGeometry()
    assert win.minimumSizeHint().width() <= screen.width()
    assert win.width() <= screen.width()
    assert tab.estimate.objectName() == "ErrorLabel"
    win.close()


def test_no_message_label_widens_a_window_past_the_screen(qtbot, main_window):
    win = _open(qtbot, main_window)
    cat = win.discover.catalog
    places = [(win.convert, [win.convert.estimate, win.convert.message, win.convert.verification]),
              (win.library, [win.library.folder, win.library.details, win.library.warning, win.library.status]),
              (win.downloads, [win.downloads.summary]),
              (win.discover, [win.discover.status, win.discover.gated_label, cat.status, cat.sources,
                              cat.suggestion, cat.machine])]
    screen = win.screen().availableGeometry().width()
    for tab, labels in places:
        win.tabs.setCurrentWidget(tab)
        for label in labels:
            before = label.text()
            label.setText(LONG_MESSAGE)
            QApplication.processEvents()
            assert win.minimumSizeHint().width() <= screen, label.text()[:40]
            label.setText(before)
    win.close()
    dialog = main_window.open_settings()
    dialog.error_label.setText(LONG_MESSAGE)
    QApplication.processEvents()
    assert dialog.minimumSizeHint().width() <= screen
    dialog.close()
