"""The Library tab on models.library: metadata, the EOS warning, remove with confirmation, import."""
from __future__ import annotations

import threading
from html import escape

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.main_window import MainWindow
from common.paths import data_paths
from models import library
from models.gguf_info import EOS_WARNING
from tests.fixtures.hub_server import write_llama3_gguf

pytestmark = pytest.mark.usefixtures("one_engine_thread")


@pytest.fixture
def models_dir():
    folder = data_paths().models
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def open_library(qtbot, smollm2_path):
    made = []

    def open_():
        w = MainWindow(str(smollm2_path), n_ctx=512)
        qtbot.addWidget(w)
        made.append(w)
        win = w.open_model_manager()
        # the scan's result arrives through the event loop, so connecting now cannot miss it
        with qtbot.waitSignal(win.library.scan_finished, timeout=30000):
            pass
        return win.library
    yield open_
    for w in made:
        w.close()


def _row_of(tab, name: str) -> int:
    return next(i for i, e in enumerate(tab.entries) if e.name == name)


def test_metadata_warning_and_refusal_shown_after_a_scan_off_the_gui_thread(qtbot, open_library, models_dir,
                                                                              monkeypatch):
    write_llama3_gguf(models_dir / "good-Q8_0.gguf", tensor_bytes=4096)
    write_llama3_gguf(models_dir / "runs-on.gguf", eos="<|end_of_text|>", name="Llama 3 8B Instruct",
                      tensor_bytes=4096)
    (models_dir / "cut.gguf").write_bytes((models_dir / "good-Q8_0.gguf").read_bytes()[:-100])
    readers = []
    real = library.read_gguf_info
    monkeypatch.setattr(library, "read_gguf_info",
                        lambda *a, **kw: (readers.append(threading.current_thread()), real(*a, **kw))[1])
    tab = open_library()
    assert readers and threading.main_thread() not in readers
    names = [e.name for e in tab.entries]
    assert {"good-Q8_0.gguf", "runs-on.gguf", "cut.gguf"} <= set(names)
    assert names[-1] == "SmolLM2-135M-Instruct.Q4_1.gguf"          # the demo model is always there

    tab.list.setCurrentRow(_row_of(tab, "good-Q8_0.gguf"))
    shown = tab.details.text()
    for part in ("Architecture</b></td><td>llama", "Quantization</b></td><td>F32",
                 "Context length</b></td><td>8,192 tokens", "Chat template</b></td><td>yes",
                 escape("<|begin_of_text|> / <|eot_id|> / <|eot_id|>")):
        assert part in shown
    assert not tab.warning.isVisibleTo(tab) and tab.use_button.isEnabled()

    row = _row_of(tab, "runs-on.gguf")
    assert tab.list.item(row).text().startswith("⚠ ")
    tab.list.setCurrentRow(row)
    assert tab.warning.isVisibleTo(tab) and tab.warning.text() == EOS_WARNING
    assert escape("<|end_of_text|>") in tab.details.text()

    tab.list.setCurrentRow(_row_of(tab, "cut.gguf"))
    assert tab.warning.isVisibleTo(tab) and "refused" in tab.warning.text() and "lies outside" in tab.warning.text()
    assert not tab.use_button.isEnabled()

    tab.list.setCurrentRow(len(tab.entries) - 1)
    assert "demo model" in tab.list.currentItem().text() and not tab.delete_button.isEnabled()
    assert "Parameters</b></td><td>135 M" in tab.details.text()


def test_remove_asks_first_and_deletes_the_files(qtbot, open_library, models_dir):
    path = write_llama3_gguf(models_dir / "doomed-Q8_0.gguf", tensor_bytes=4096)
    tab = open_library()
    tab.list.setCurrentRow(_row_of(tab, path.name))
    qtbot.mouseClick(tab.delete_button, Qt.LeftButton)
    box = tab.confirm_box
    assert box.isVisible() and path.name in box.text() and "deletes 1 file," in box.informativeText()
    qtbot.mouseClick(box.button(QMessageBox.Cancel), Qt.LeftButton)
    assert path.is_file() and tab.confirm_box is None
    qtbot.mouseClick(tab.delete_button, Qt.LeftButton)
    with qtbot.waitSignal(tab.scan_finished, timeout=30000):
        qtbot.mouseClick(tab.confirm_box.button(QMessageBox.Yes), Qt.LeftButton)
    assert not path.exists()
    assert path.name not in [e.name for e in tab.entries]
    assert tab.status.text() == f"Removed {path.name}."


def test_import_validates_and_a_refused_file_shows_why(qtbot, open_library, tmp_path):
    tab = open_library()
    bad = tmp_path / "hostile.gguf"
    bad.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + b"\xff" * 40)
    tab.import_file(str(bad))
    qtbot.waitUntil(lambda: tab.status.text().startswith("Refused"), timeout=20000)
    assert tab.status.text() == ("Refused hostile.gguf: hostile.gguf: tensor count 18446744073709551615 "
                                 "is out of bounds for a 48-byte file")
    assert tab.status.objectName() == "ErrorLabel"
    assert "hostile.gguf" not in [e.name for e in tab.entries]

    good = write_llama3_gguf(tmp_path / "brought-Q8_0.gguf", tensor_bytes=4096)
    with qtbot.waitSignal(tab.scan_finished, timeout=30000):
        tab.import_file(str(good))
    assert tab.current_entry().name == good.name and tab.current_entry().usable
    assert tab.status.text() == f"Imported {good.name}." and tab.status.objectName() == "MutedLabel"
    assert "Imported from" in tab.details.text() and (data_paths().models / "imported" / good.name).is_file()


def test_the_demo_model_says_why_it_stays_and_its_line_is_never_cut_in_the_middle(qtbot, open_library):
    from models.bundled import NOT_REMOVABLE

    tab = open_library()
    assert [e.source for e in tab.entries] == ["demo"]
    assert tab.status.text() == "1 model · 98.4 MB"              # not "1 models"
    tab.list.setCurrentRow(0)
    button = tab.delete_button
    assert not button.isEnabled() and button.toolTip() == NOT_REMOVABLE
    assert escape(NOT_REMOVABLE) in tab.details.text()          # said where it can be read
    # a disabled Remove looks disabled (a red one that ignores clicks reads as broken)
    disabled = button.grab().toImage()
    button.setEnabled(True)
    enabled = button.grab().toImage()
    button.setEnabled(False)
    assert disabled != enabled
    # a narrow list shortens a line at its end, never in its middle (where the size is:
    # "135 M parameters · Q4_1 · …B · demo model")
    metrics = tab.list.fontMetrics()
    line = tab.list.item(0).text().split("\n")[1]
    assert "98.4 MB" in line
    for width in range(40, 700, 10):
        shown = metrics.elidedText(line, tab.list.textElideMode(), width)
        assert shown == line or shown.endswith("…"), shown


def test_closing_the_window_during_a_scan_stops_it_at_the_next_entry_and_leaves_no_thread(
        qtbot, smollm2_path, models_dir, monkeypatch):
    from PySide6.QtCore import QThread

    from app.threads import WorkerThread
    from common.task import TaskHandle

    for name in ("a-Q8_0.gguf", "b-Q8_0.gguf", "c-Q8_0.gguf"):
        write_llama3_gguf(models_dir / name, tensor_bytes=4096)
    entered, cancelled, scanned = threading.Event(), threading.Event(), []
    real_cancel, real_read = TaskHandle.cancel, library.read_gguf_info
    monkeypatch.setattr(TaskHandle, "cancel", lambda self: (real_cancel(self), cancelled.set())[0])

    def slow_read(*a, **kw):
        if QThread.currentThread().objectName() == "library-scan":
            scanned.append(a[0])
            entered.set()
            cancelled.wait(30)        # this entry is still being read when the window closes
        return real_read(*a, **kw)
    monkeypatch.setattr(library, "read_gguf_info", slow_read)

    w = MainWindow(str(smollm2_path), n_ctx=512)
    qtbot.addWidget(w)
    w.open_model_manager()
    qtbot.waitUntil(entered.is_set, timeout=30000)
    w.close()
    assert "library-scan" not in [t.objectName() for t in WorkerThread.running()]
    assert len(scanned) == 1          # the cancelled scan read no further entry
