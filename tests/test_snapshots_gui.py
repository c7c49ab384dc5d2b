"""The window keeps each conversation's KV cache: opening one says how its cache came back."""
from __future__ import annotations

import pytest

from app.main_window import MainWindow
from engine import snapshots
from engine.types import GenerationParams
from tests.gui_helpers import send_and_wait

pytestmark = pytest.mark.usefixtures("one_engine_thread")

LONG = "Tell me about lighthouses and the people who kept them, in detail please. " * 4


@pytest.fixture
def open_window(qtbot, tiny_gguf_factory):
    made = []
    model = str(tiny_gguf_factory("plain", "f16"))

    def make():
        w = MainWindow(model, n_ctx=1024)
        qtbot.addWidget(w)
        made.append(w)
        w.show()
        qtbot.waitUntil(lambda: w.model_ready, timeout=60000)
        w.settings.params = GenerationParams(max_tokens=6, temperature=0.0, seed=1)
        return w

    yield make
    for w in made:
        w.close()


def files_of(conv_id: int) -> list:
    return [p for p in snapshots.snapshot_files() if p.name.startswith(f"{conv_id}-")]


def test_switching_back_restores_the_cache_and_says_so(qtbot, open_window):
    w = open_window()
    send_and_wait(qtbot, w, LONG)
    a = w.session.conversation_id
    w.new_chat()
    send_and_wait(qtbot, w, "Explain how bread rises, step by step, for a beginner baker. " * 4)
    with qtbot.waitSignal(w.memory.restored, timeout=60000) as restored:
        w.session.open(a)
    assert restored.args[0].startswith("Restored ") and " tokens" in restored.args[0]
    assert w.statusBar().currentMessage() == restored.args[0]
    send_and_wait(qtbot, w, "And today?")
    stats = w.store.active_path(w.session.conversation_id)[-1].stats   # as the reply's signal brought them
    assert stats["prompt_evaluated"] < stats["prompt_tokens"] // 3     # the new message, not the history
    qtbot.waitUntil(lambda: bool(files_of(a)), timeout=60000)     # written after the reply

    # Deleted for good: its cache goes too.
    w.session.delete(a)
    w.store.purge(a)
    w._on_trash_conversations_purged([a])
    qtbot.waitUntil(lambda: not files_of(a), timeout=60000)


def test_reopening_the_app_restores_the_last_conversation_from_disk(qtbot, open_window):
    w = open_window()
    send_and_wait(qtbot, w, LONG)
    conv = w.session.conversation_id
    w.close()
    qtbot.waitUntil(lambda: bool(files_of(conv)), timeout=60000)    # written on its own thread
    from app.window_state import conversation_to_open

    w2 = MainWindow.__new__(MainWindow)          # the same start as a user's, watching the signal
    seen = []
    MainWindow.__init__(w2, str(w.model_info.path), n_ctx=1024)
    qtbot.addWidget(w2)
    w2.memory.restored.connect(seen.append)
    w2.show()
    qtbot.waitUntil(lambda: bool(seen), timeout=60000)
    assert w2.session.conversation_id == conv == conversation_to_open(w2.store)
    assert seen[0].startswith("Restored ") and "from memory" not in seen[0]
    w2.close()


def test_settings_show_the_cache_size_and_clear_it(qtbot, open_window):
    w = open_window()
    send_and_wait(qtbot, w, LONG)
    qtbot.waitUntil(lambda: bool(snapshots.snapshot_files()), timeout=60000)
    dialog = w.open_settings()
    assert dialog.cache_used.text().endswith(" used") and not dialog.cache_used.text().startswith("0 ")
    dialog.cache_clear.click()
    qtbot.waitUntil(lambda: not snapshots.snapshot_files(), timeout=60000)
    dialog.kv_cache_mb.setValue(100)
    assert dialog.current().kv_cache_mb == 100
    dialog.reject()


def test_closing_while_a_snapshot_is_written_leaves_the_engine_to_finish(qtbot, tiny_gguf_factory,
                                                                          monkeypatch):
    """The window goes away while the engine thread still waits for a snapshot file: that
    thread, and the worker on it, must outlive the window, then free the model itself."""
    import threading

    import shiboken6

    from app.threads import WorkerThread
    from common import atomic

    entered, release = threading.Event(), threading.Event()
    real_write = atomic.atomic_write_chunks

    def slow_write(path, chunks, **kw):
        if str(path).endswith(snapshots.SUFFIX):
            entered.set()
            release.wait(60)
        return real_write(path, chunks, **kw)

    monkeypatch.setattr(atomic, "atomic_write_chunks", slow_write)
    monkeypatch.setattr(MainWindow, "ENGINE_STOP_WAIT_MS", 50)
    w = MainWindow(str(tiny_gguf_factory("plain", "f16")), n_ctx=1024)
    w.show()
    qtbot.waitUntil(lambda: w.model_ready, timeout=60000)
    w.settings.params = GenerationParams(max_tokens=6, temperature=0.0, seed=1)
    send_and_wait(qtbot, w, LONG)
    conv = w.session.conversation_id
    qtbot.waitUntil(entered.is_set, timeout=60000)
    thread, worker = w.thread, w.worker
    try:
        w.close()
        assert thread.isRunning() and worker.backend is not None   # unloading waits for the file
        assert thread.parent() is None
        shiboken6.delete(w)                # the window is gone; the thread and worker are not
        assert shiboken6.isValid(thread) and shiboken6.isValid(worker)
    finally:
        release.set()
    qtbot.waitUntil(thread.isFinished, timeout=60000)
    assert worker.backend is None          # the engine thread freed the model, after the write
    assert files_of(conv)
    assert not WorkerThread.running()
