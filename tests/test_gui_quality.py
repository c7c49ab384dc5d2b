"""Measured quantization quality in the window: the library's details, measuring from there, the
convert tab's option and its side-by-side list of files already made."""
from __future__ import annotations

import shutil
from functools import partial

import pytest
from PySide6.QtCore import Qt

from app.main_window import MainWindow
from common.paths import data_paths
from engine import quality
from models import library

pytestmark = pytest.mark.usefixtures("one_engine_thread")


@pytest.fixture
def quick_measure(monkeypatch):
    """The real measurement on a shorter stretch of text, so the tiny model takes a second."""
    monkeypatch.setattr(quality, "measure_quality", partial(quality.measure_quality, n_ctx=64, max_chunks=2))


@pytest.fixture
def manager(qtbot, smollm2_path):
    w = MainWindow(str(smollm2_path), n_ctx=512)
    qtbot.addWidget(w)
    win = w.open_model_manager()
    with qtbot.waitSignal(win.library.scan_finished, timeout=120000):
        pass
    yield win
    w.close()


def _select(tab, name: str) -> None:
    tab.list.setCurrentRow(next(i for i, e in enumerate(tab.entries) if e.name == name))


def test_library_measures_a_file_against_its_original_and_shows_it(qtbot, tiny_gguf_factory, quick_measure,
                                                                    smollm2_path):
    models = data_paths().models
    models.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tiny_gguf_factory("plain", "f16"), models / "tiny-F16.gguf")
    shutil.copyfile(tiny_gguf_factory("plain", "q4_0"), models / "tiny-Q4_0.gguf")
    shutil.copyfile(tiny_gguf_factory("plain", "q4_0"), models / "tiny-again-Q4_0.gguf")
    w = MainWindow(str(smollm2_path), n_ctx=512)
    qtbot.addWidget(w)
    tab = w.open_model_manager().library
    qtbot.waitUntil(lambda: len(tab.entries) >= 4, timeout=120000)

    _select(tab, "tiny-Q4_0.gguf")
    assert "not measured: it can be measured against tiny-F16.gguf" in tab.details.text()
    assert tab.measure_button.isVisibleTo(tab)
    with qtbot.waitSignal(tab.scan_finished, timeout=120000):
        qtbot.mouseClick(tab.measure_button, Qt.LeftButton)
    assert tab.status.text() == "Measured tiny-Q4_0.gguf."
    _select(tab, "tiny-Q4_0.gguf")
    shown = tab.details.text()
    assert "agrees with the original on" in shown and "of next tokens (KLD" in shown
    assert "against tiny-F16.gguf (F16)" in shown
    assert "% same next token" in tab.list.currentItem().text()
    assert not tab.measure_button.isVisibleTo(tab)

    # the original itself has nothing to be measured against, and says nothing about quality
    _select(tab, "tiny-F16.gguf")
    assert "Quality" not in tab.details.text() and not tab.measure_button.isVisibleTo(tab)

    # a cancelled measurement changes nothing
    _select(tab, "tiny-again-Q4_0.gguf")
    index_before = data_paths().library_file.read_bytes()
    qtbot.mouseClick(tab.measure_button, Qt.LeftButton)
    assert tab.measure_button.text() == "Cancel measuring"
    qtbot.mouseClick(tab.measure_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: tab._measure_op is None, timeout=120000)
    assert tab.status.text() == "Measurement cancelled; nothing was changed."
    assert data_paths().library_file.read_bytes() == index_before
    assert "not measured" in tab.details.text() and tab.measure_button.text() == "Measure quality"
    w.close()


def test_convert_tab_offers_measuring_and_lists_earlier_files_side_by_side(qtbot, manager, tiny_llama,
                                                                          tiny_gguf_factory, quick_measure):
    tab = manager.convert
    assert tab.measure.isChecked() and tab.measure.text().startswith("Measure quality against the original")
    folder = data_paths().models / "made"
    folder.mkdir(parents=True)
    q4, q8 = folder / "tiny-Q4_0.gguf", folder / "tiny-Q8_0.gguf"
    shutil.copyfile(tiny_gguf_factory("plain", "q4_0"), q4)
    shutil.copyfile(tiny_gguf_factory("plain", "q8_0"), q8)
    for path, quant in ((q4, "Q4_0"), (q8, "Q8_0")):
        library.record_provenance(path, origin="converted", source_path=str(tiny_llama.path.resolve()), quant=quant)
    quality.measure_and_record(tiny_gguf_factory("plain", "f16"), q4)

    tab.source.setText(str(tiny_llama.path))
    tab.update_estimate()
    qtbot.waitUntil(lambda: "tiny-Q8_0.gguf" in tab.made_before.text() and bool(tab.sizes), timeout=120000)
    table = tab.made_before.text()
    assert table.index("tiny-Q4_0.gguf") < table.index("tiny-Q8_0.gguf")      # smaller first
    q = next(e.quality for e in library.scan() if e.path == q4)
    assert f"{100 * q['same_top']:.0f}%" in table and "not measured" in table
    # the chooser itself carries the figure of the quant already made and measured
    q4_text = tab.quant.itemText(tab.quant.findData("q4_0"))
    assert f"made: {100 * q['same_top']:.0f}% same next token" in q4_text and " · about " in q4_text
    assert "made:" not in tab.quant.itemText(tab.quant.findData("q8_0"))
    assert "adds about" in tab.measure.text() and tab.measure.isEnabled()
    tab.quant.setCurrentIndex(tab.quant.findData("f16"))
    assert not tab.measure.isEnabled()                  # nothing to measure an original against

    # a conversion with the option on says how it measured, and joins the list
    tab.quant.setCurrentIndex(tab.quant.findData("q4_k_m"))
    with qtbot.waitSignal(tab.conversion_finished, timeout=120000) as done:
        tab.start()
    assert tab.quality.text().startswith("Quality: agrees with the original on")
    made = next(e for e in library.scan() if str(e.path) == done.args[0])
    assert made.quality["other_quant"] == "Q4_K_M"
    qtbot.waitUntil(lambda: made.name in tab.made_before.text(), timeout=120000)
