"""The convert tab asks before replacing a model and shows where it wrote one."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox

from app.models_manager.convert_tab import ConvertTab
from common.settings import Settings
from models.choices import models_folder


def convert(qtbot, tab) -> Path:
    with qtbot.waitSignal(tab.conversion_finished, timeout=120000) as done:
        tab.start()
    return Path(done.args[0])


def test_replacing_is_asked_and_the_folder_can_be_shown(qtbot, tiny_llama, monkeypatch):
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    tab = ConvertTab(Settings())
    qtbot.addWidget(tab)
    tab.source.setText(str(tiny_llama.path))
    tab.quant.setCurrentIndex(tab.quant.findData("q4_0"))

    out = convert(qtbot, tab)
    assert out == models_folder(Settings()) / f"{Path(tiny_llama.path).name}-Q4_0.gguf"   # the one naming rule
    assert tab.confirm_box is None                     # nothing to replace: not asked
    assert not tab.output_row.isHidden() and str(out) in tab.output.text()
    qtbot.mouseClick(tab.show_folder_button, Qt.LeftButton)
    assert [u.toLocalFile() for u in opened] == [str(out.parent)]

    # Again: asked first; Cancel keeps the file untouched and starts nothing.
    before = out.stat().st_mtime_ns
    tab.start()
    box = tab.confirm_box
    assert box is not None and box.isVisible() and out.name in box.text()
    assert box.defaultButton() is box.button(QMessageBox.Cancel)
    qtbot.mouseClick(box.button(QMessageBox.Cancel), Qt.LeftButton)
    assert tab.op is None and "kept" in tab.message.text()
    assert out.stat().st_mtime_ns == before

    # Replace: converted again into the same file.
    with qtbot.waitSignal(tab.conversion_finished, timeout=120000) as done:
        tab.start()
        qtbot.mouseClick(tab.confirm_box.button(QMessageBox.Yes), Qt.LeftButton)
    assert Path(done.args[0]) == out and out.stat().st_mtime_ns != before
    assert [p.name for p in out.parent.iterdir()] == [out.name]    # nothing half-written left
