"""The window always opens, or says why (issue: hostile settings and chat databases).

A database that is not one, or that SQLite finds damaged: the user is asked (the real
dialog is driven here) to keep it aside and start anew, to open it read-only, or to
quit. Another process holding the chats: read-only, with a banner. A second start on
the same data brings the first window forward. Bad settings values: defaults for
those only, and the window says which; an unreadable settings file is kept aside.
"""
from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QProcess, QTimer
from PySide6.QtWidgets import QApplication

from app import startup
from app.application import start_window
from app.widgets.notice_bar import NoticeBar
from chat.store import ChatStore
from common.paths import data_paths

ROOT = Path(__file__).resolve().parents[1]


def junk_database() -> bytes:
    path = data_paths().chats_db
    path.parent.mkdir(parents=True, exist_ok=True)
    data = bytes(range(256)) * 20
    path.write_bytes(data)
    return data


def damaged_database() -> None:
    """Thirty chats, then one index page made unreadable: SQLite still lists the chats,
    and any read through that index fails.

    The page's type byte is what is damaged: SQLite checks it every time it loads the
    page, so every lookup through the index reports the damage. Garbage over the cell
    pointers instead was only seen sometimes: SQLite masks an out-of-range cell offset to
    the page's last byte and then compares whatever bytes follow the page in memory."""
    path = data_paths().chats_db
    with ChatStore.open(path) as store:
        for i in range(30):
            conv = store.create(title=f"Chat {i}")
            for j in range(4):
                store.add_user_message(conv, f"message {j} " + "lorem ipsum " * 40)
    conn = sqlite3.connect(path)
    busy, _log, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0                                     # every page is in the main file
    page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'messages_by_parent'").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(path, "r+b") as f:
        f.seek((page - 1) * size)
        assert f.read(1) == b"\x0a"                      # a leaf index page (all 120 entries)
        f.seek((page - 1) * size)
        f.write(b"\xff")                                  # no b-tree page has this type


def click_when_asked(button: str, seen: dict):
    """Click ``button`` of the database dialog as soon as it is shown (it runs modally)."""
    def click():
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, startup.DatabaseProblemDialog):
            QTimer.singleShot(20, click)
            return
        seen["text"] = dialog.informativeText()
        seen["buttons"] = [b.text() for b in dialog.buttons()]
        getattr(dialog, button).click()
    QTimer.singleShot(0, click)


def notices(window) -> dict[str, str]:
    return {bar.objectName(): bar.text() for bar in window.findChildren(NoticeBar) if not bar.isHidden()}


@pytest.fixture
def started(qtbot):
    made = []

    def start(**kw):
        s = start_window(model_path="", **kw)
        if s is not None:
            qtbot.addWidget(s.window)
            made.append(s)
        return s

    yield start
    for s in made:
        s.close()


def test_not_a_database_is_kept_aside_and_a_new_one_starts(qtbot, started):
    original = junk_database()
    seen = {}
    click_when_asked("keep_aside_button", seen)
    s = started()
    assert "file is not a database" in seen["text"]
    assert seen["buttons"] == ["Keep it aside and start anew", "Quit"]   # it cannot be read
    kept = [p for p in data_paths().data.iterdir() if ".damaged-" in p.name]
    assert len(kept) == 1 and kept[0].read_bytes() == original            # renamed, never deleted
    assert f"kept as {kept[0].name}" in notices(s.window)["NoticeBar"]
    assert not s.store.read_only
    s.window.new_chat()
    assert len(s.store.list()) == 1


def test_a_damaged_database_opens_read_only_with_a_banner(qtbot, started):
    damaged_database()
    seen = {}
    click_when_asked("read_only_button", seen)
    s = started()
    assert "Open read-only" in seen["buttons"] and "damage" in seen["text"]
    assert s.store.read_only and len(s.store.list()) == 30
    assert "damaged, so it is open read-only" in notices(s.window)["ReadOnlyBanner"]
    assert s.window.composer.isReadOnly()
    s.window.new_chat()                                  # refused politely, nothing raised
    assert "read-only" in s.window.statusBar().currentMessage()
    assert not [p for p in data_paths().data.iterdir() if ".damaged-" in p.name]


def test_quit_leaves_the_database_alone(qtbot, started):
    original = junk_database()
    click_when_asked("quit_button", {})
    assert started() is None
    assert data_paths().chats_db.read_bytes() == original


def test_chats_held_by_another_process_open_read_only_with_a_banner(qtbot, started, tmp_path):
    with ChatStore.open() as other:          # e.g. `llamadesk chats import` running
        other.create(title="Mine")
        s = started(ask=lambda *a: pytest.fail("no question: the database is fine"))
        assert s.store.read_only and [c.title for c in s.store.list()] == ["Mine"]
        assert "Another LlamaDesk" in notices(s.window)["ReadOnlyBanner"]


def test_a_second_start_brings_the_first_window_forward(qtbot, started):
    s = started()
    proc = QProcess()
    env = proc.processEnvironment()
    env.insert("LLAMADESK_HOME", os.environ["LLAMADESK_HOME"])
    env.insert("QT_QPA_PLATFORM", "offscreen")
    env.insert("PYTHONPATH", str(ROOT))
    proc.setProcessEnvironment(env)
    proc.setWorkingDirectory(str(ROOT))
    try:
        with qtbot.waitSignal(s.server.raise_requested, timeout=60000):
            with qtbot.waitSignal(proc.finished, timeout=60000):
                proc.start(sys.executable, ["main.py"])
    finally:
        if proc.state() != QProcess.NotRunning:
            proc.kill()
            proc.waitForFinished(10000)
    err = bytes(proc.readAllStandardError().data()).decode()
    assert proc.exitCode() == 0, err
    assert "LlamaDesk is already open: its window was brought forward." in err
    assert "Traceback" not in err


def test_bad_settings_values_use_defaults_and_the_window_says_which(qtbot, started):
    path = data_paths().settings_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"temperature": 9, "top_k": "many", "theme": "pink", "n_ctx": 4096}))
    s = started()
    assert s.window.settings.params.temperature == 0.7 and s.window.settings.params.top_k == 40
    assert s.window.settings.theme == "system" and s.window.settings.load.n_ctx == 4096   # the good one is kept
    text = notices(s.window)["NoticeBar"]
    for name in ("temperature = 9", 'top_k = "many"', 'theme = "pink"'):
        assert name in text
    assert "n_ctx" not in text


def test_an_unreadable_settings_file_is_kept_before_anything_is_written(qtbot, started):
    path = data_paths().settings_file
    path.parent.mkdir(parents=True, exist_ok=True)
    junk = b"\x00\xffnot json at all\x89PNG"
    path.write_bytes(junk)
    s = started()
    kept = [p for p in path.parent.iterdir() if p.name.startswith("settings.json.unreadable-")]
    assert len(kept) == 1 and kept[0].read_bytes() == junk
    assert f"kept as {kept[0].name}" in notices(s.window)["NoticeBar"]
    from common.settings import save_settings

    save_settings(s.window.settings)
    assert kept[0].read_bytes() == junk


def test_a_bug_in_a_slot_is_logged_and_shown_not_printed(qtbot, started, capsys):
    from app import error_report

    started()
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError as exc:
        error_report.handle(type(exc), exc, exc.__traceback__)
    boxes = list(error_report._boxes)
    assert boxes and "errors.log" in boxes[0].text()
    assert "ZeroDivisionError" in (data_paths().logs / "errors.log").read_text()
    assert "Traceback" not in capsys.readouterr().err
    for b in boxes:
        b.close()


DRIVER = r'''
import os, sys
sys.path.insert(0, os.getcwd())
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
import main
app = QApplication(sys.argv[:1])
state = {"raised": False}
def tick():
    dialog = QApplication.activeModalWidget()
    if dialog is not None and hasattr(dialog, "keep_aside_button"):
        dialog.keep_aside_button.click()
        return
    for w in app.topLevelWidgets():
        if type(w).__name__ == "MainWindow" and w.isVisible():
            if not state["raised"]:
                state["raised"] = True
                QTimer.singleShot(0, lambda: 1 / 0)      # a bug in a slot
                return
            for box in w.findChildren(QMessageBox, "ErrorReport"):
                box.close()
            w.close()
timer = QTimer()
timer.timeout.connect(tick)
timer.start(50)
sys.exit(main.main([]))
'''


def test_the_window_starts_on_junk_without_a_traceback_on_stderr(tmp_path):
    """The real entry point (main.py, no command) on a junk database and junk settings."""
    import subprocess

    junk_database()
    data_paths().settings_file.parent.mkdir(parents=True, exist_ok=True)
    data_paths().settings_file.write_bytes(b"\xff\xfe{{{")
    driver = tmp_path / "drive.py"
    driver.write_text(DRIVER)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, str(driver)], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert [p for p in data_paths().data.iterdir() if ".damaged-" in p.name]
    assert "ZeroDivisionError" in (data_paths().logs / "errors.log").read_text()


def test_reading_a_damaged_part_says_so_as_a_store_error():
    from chat.records import ChatStoreError

    damaged_database()
    with ChatStore.open(read_only=True) as store:
        convs = store.list()
        assert len(convs) == 30                          # the list can still be read
        with pytest.raises(ChatStoreError, match="cannot be read: it is damaged"):
            for conv in convs:
                for message in store.active_path(conv.id):
                    store.children(message.id)
