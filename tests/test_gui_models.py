"""The model manager against the loopback Hub stand-in and the tiny checkpoint."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.main_window import MainWindow
from tests.fixtures.hub_server import GATED_REPO, GGUF_MAIN, GGUF_REPO, NO_LICENCE_TOKEN
from tests.gui_helpers import one_engine_thread  # noqa: F401


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
    names = [win.library.list.item(i).data(Qt.UserRole) for i in range(win.library.list.count())]
    assert str(path) in names


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


def test_conversion_with_progress_then_cancel(qtbot, manager, tiny_llama):
    w, win = manager
    tab = win.convert
    tab.source.setText(str(tiny_llama.path))
    tab.quant.setCurrentIndex(tab.quant.findData("q8_0"))
    reports = []
    with qtbot.waitSignal(tab.conversion_finished, timeout=120000) as done:
        tab.start()
        tab.op.on_progress(lambda r: (reports.append(r), tab._on_convert_progress(r)))
    out = Path(done.args[0])
    assert out.is_file() and out.name.endswith("Q8_0.gguf")
    assert reports and tab.progress.value() == 1000 and "Done" in tab.message.text()
    # cancel a second run as soon as it reports progress: nothing is left behind
    tab.quant.setCurrentIndex(tab.quant.findData("f16"))
    before = set(out.parent.iterdir())
    tab.start()
    tab.op.on_progress(lambda r: tab.cancel())
    qtbot.waitUntil(lambda: tab.op is None, timeout=120000)
    assert "cancelled" in tab.message.text()
    assert set(out.parent.iterdir()) == before
