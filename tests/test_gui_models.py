"""The model manager against the loopback Hub stand-in and the tiny checkpoint."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.main_window import MainWindow
from models.hardware import MachineMemory
from tests.fixtures.hub_server import GATED_REPO, GGUF_MAIN, GGUF_REPO, GOOD_TOKEN, NO_LICENCE_TOKEN

pytestmark = pytest.mark.usefixtures("one_engine_thread")


GB = 1000 ** 3


@pytest.fixture
def manager(qtbot, smollm2_path):
    w = MainWindow(str(smollm2_path), n_ctx=512)
    qtbot.addWidget(w)
    win = w.open_model_manager()
    yield w, win
    w.close()


def _tick(win, name: str) -> None:
    files = win.discover.files
    for r in range(files.rowCount()):
        if files.item(r, 0).text() == name:
            files.item(r, 0).setCheckState(Qt.Checked)


def _library_paths(win) -> list[str]:
    return [win.library.list.item(i).data(Qt.UserRole) for i in range(win.library.list.count())]


def _catalog_row(catalog, entry_id: str) -> int:
    return next(i for i, e in enumerate(catalog.entries) if e.id == entry_id)


def test_download_with_pause_and_resume(qtbot, manager, hub_server):
    w, win = manager
    hub_server.throttle_bps = 3_000_000
    win.discover.show_repo(GGUF_REPO)
    qtbot.waitUntil(lambda: win.discover.files.rowCount() > 0, timeout=20000)
    assert not win.discover.gated_label.isVisibleTo(win)
    _tick(win, GGUF_MAIN)
    qtbot.mouseClick(win.discover.download_button, Qt.LeftButton)
    assert win.tabs.currentWidget() is win.downloads
    qtbot.waitUntil(lambda: any(b.value() > 0 for b in win.downloads.bars.values()), timeout=20000)
    (job_id,) = win.downloads.bars
    qtbot.mouseClick(win.downloads.buttons[job_id]["Pause"], Qt.LeftButton)
    qtbot.waitUntil(lambda: win.downloads.states[job_id] == "paused", timeout=20000)
    assert win.downloads.buttons[job_id]["Resume"].isEnabled()
    paused_at = win.downloads.bars[job_id].value()
    assert 0 < paused_at < 1000
    hub_server.throttle_bps = None
    with qtbot.waitSignal(win.downloads.file_ready, timeout=30000) as done:
        qtbot.mouseClick(win.downloads.buttons[job_id]["Resume"], Qt.LeftButton)
    path = Path(done.args[0])
    assert path.is_file() and path.name == GGUF_MAIN
    assert win.downloads.bars[job_id].value() == 1000
    qtbot.waitUntil(lambda: str(path) in _library_paths(win), timeout=20000)


def test_gated_repo_shows_the_licence_link(qtbot, manager, hub_server, monkeypatch):
    w, win = manager
    monkeypatch.setenv("HF_TOKEN", NO_LICENCE_TOKEN)
    win.discover.show_repo(GATED_REPO)
    qtbot.waitUntil(lambda: win.discover.files.rowCount() > 0, timeout=20000)
    assert win.discover.gated_label.isVisibleTo(win)
    _tick(win, "config.json")
    with qtbot.waitSignal(win.downloads.licence_needed, timeout=20000) as refused:
        qtbot.mouseClick(win.discover.download_button, Qt.LeftButton)
    assert refused.args[0] == GATED_REPO
    text = win.discover.gated_label.text()
    assert "licence" in text and f'href="{hub_server.url}/{GATED_REPO}"' in text
    assert win.discover.token_row.isVisibleTo(win)


def test_catalog_fits_this_machine_and_downloads_the_chosen_quant(qtbot, manager, hub_server):
    w, win = manager
    cat = win.discover.catalog
    assert win.discover.pages.currentWidget() is cat        # the catalog is what a first run sees
    assert cat.current_entry().id == "llama-3.1-8b-instruct"
    assert "Llama 3.1 8B Instruct" in cat.suggestion.text() and "demo model" in cat.suggestion.text()
    # the real detection: this machine's RAM, and no GPU on a CPU-only build
    qtbot.waitUntil(lambda: cat.mem is not None, timeout=30000)
    assert cat.machine.text().startswith("This computer: ") and "RAM" in cat.machine.text()
    eight, seventy = _catalog_row(cat, "llama-3.1-8b-instruct"), _catalog_row(cat, "llama-3.1-70b-instruct")
    # 16 GB of RAM and no GPU: an 8B at Q4_K_M fits the RAM, a 70B does not fit at all
    cat.set_machine(MachineMemory(16 * GB, 12 * GB, None), "16 GB RAM")
    assert cat.hint(eight) == "cpu" and cat.table.item(eight, 3).text() == "✓ fits your RAM"
    assert cat.hint(seventy) == "no" and "too big" in cat.table.item(seventy, 3).text()
    est = cat.entries[eight].estimates["q4_k_m"]
    assert 4.5 * GB < est.file_bytes < 5.2 * GB and est.memory_bytes > est.file_bytes
    assert cat.table.item(eight, 1).text() == "4.9 GB"
    # a 24 GB GPU takes the 8B whole; F16 makes every size bigger
    cat.set_machine(MachineMemory(16 * GB, 12 * GB, 24 * GB), "16 GB RAM, a 24 GB GPU")
    assert cat.table.item(eight, 3).text() == "✓ fits your GPU"
    cat.quant.setCurrentIndex(cat.quant.findData("f16"))
    assert cat.table.item(eight, 1).text() == "16.1 GB"
    assert "fits your GPU" in cat.table.item(eight, 3).text()
    # both ways to get a model are offered for the selected entry
    one_b = _catalog_row(cat, "llama-3.2-1b-instruct")
    cat.table.setCurrentCell(one_b, 0)
    assert GATED_REPO in cat.sources.text() and GGUF_REPO in cat.sources.text()
    assert cat.gguf_repo.currentData() == GGUF_REPO
    cat.quant.setCurrentIndex(cat.quant.findData("q4_k_m"))
    with qtbot.waitSignal(win.downloads.file_ready, timeout=30000) as done:
        qtbot.mouseClick(cat.download_button, Qt.LeftButton)
    assert Path(done.args[0]).name == GGUF_MAIN
    assert win.tabs.currentWidget() is win.downloads


def test_catalog_download_then_convert_with_verification(qtbot, manager, hub_server, monkeypatch):
    w, win = manager
    cat = win.discover.catalog
    cat.table.setCurrentCell(_catalog_row(cat, "llama-3.2-1b-instruct"), 0)
    cat.quant.setCurrentIndex(cat.quant.findData("q8_0"))
    # without a token the gated original says so and shows where to accept the licence
    with qtbot.waitSignal(win.convert.licence_needed, timeout=30000) as refused:
        qtbot.mouseClick(cat.convert_button, Qt.LeftButton)
    assert refused.args[0] == GATED_REPO and "sign in" in refused.args[1]
    assert win.discover.gated_label.isVisibleTo(win) and win.tabs.currentWidget() is win.discover
    assert "Could not download" in win.convert.message.text()
    monkeypatch.setenv("HF_TOKEN", GOOD_TOKEN)
    messages = []
    win.convert.progress.valueChanged.connect(lambda _v: messages.append(win.convert.message.text()))
    with qtbot.waitSignal(win.convert.conversion_finished, timeout=120000) as done:
        qtbot.mouseClick(cat.convert_button, Qt.LeftButton)
        assert win.tabs.currentWidget() is win.convert
    out = Path(done.args[0])
    assert out.is_file() and out.name == "Llama-3.2-1B-Instruct-Q8_0.gguf"
    assert any(m.startswith("Downloading ") for m in messages)
    shown = win.convert.verification.text()
    assert shown.startswith("<b>Verified</b>") and "End of turn stops generation" in shown
    assert "Loads in llama.cpp" in shown and "Chat template renders" in shown
    # the library lists it with where it came from
    qtbot.waitUntil(lambda: str(out) in _library_paths(win), timeout=30000)
    win.library.list.setCurrentRow(_library_paths(win).index(str(out)))
    details = win.library.details.text()
    assert f"Converted from {GATED_REPO}" in details and "Q8_0" in details


def test_conversion_shows_sizes_progress_verification_then_cancel(qtbot, manager, tiny_llama):
    w, win = manager
    tab = win.convert
    assert "recommended" in tab.quant.itemText(tab.quant.findData("q4_k_m"))
    tab.source.setText(str(tiny_llama.path))
    tab.update_estimate()
    qtbot.waitUntil(lambda: bool(tab.sizes), timeout=30000)
    assert set(tab.sizes) == {tab.quant.itemData(i) for i in range(tab.quant.count())}
    for i in range(tab.quant.count()):
        assert " · about " in tab.quant.itemText(i)
    assert tab.sizes["q4_k_m"] < tab.sizes["q8_0"] < tab.sizes["f16"] < tab.sizes["f32"]
    assert tab.estimate.text().endswith("(recommended)")
    tab.quant.setCurrentIndex(tab.quant.findData("q8_0"))
    reports = []
    with qtbot.waitSignal(tab.conversion_finished, timeout=120000) as done:
        tab.start()
        tab.op.on_progress(lambda r: (reports.append(r), tab._on_convert_progress(r)))
    out = Path(done.args[0])
    assert out.is_file() and out.name.endswith("Q8_0.gguf")
    assert reports and tab.progress.value() == 1000 and "Done" in tab.message.text()
    assert "<b>Verified</b>" in tab.verification.text()
    # the estimate was the size written, to within the header's slack
    assert abs(out.stat().st_size - tab.sizes["q8_0"]) < 0.02 * tab.sizes["q8_0"]
    # cancel a second run as soon as it reports progress: nothing is left behind
    tab.quant.setCurrentIndex(tab.quant.findData("f16"))
    before = set(out.parent.iterdir())
    tab.start()
    tab.op.on_progress(lambda r: tab.cancel())
    qtbot.waitUntil(lambda: tab.op is None, timeout=120000)
    assert "cancelled" in tab.message.text() and tab.verification.text() == ""
    assert set(out.parent.iterdir()) == before
