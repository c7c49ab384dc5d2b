"""Sidebar, context meter and overflow marker, settings that persist, shortcuts."""
from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from app.chat.message_html import memory_marker_text
from app.main_window import MainWindow
from app.shortcuts import SHORTCUTS
from common.settings import Settings, load_settings, save_settings
from tests.gui_helpers import active_path, send_and_wait

pytestmark = pytest.mark.usefixtures("one_engine_thread")


def test_sidebar_new_rename_pin_delete_undo_search(qtbot, make_window):
    w = make_window()
    a = w.store.create("Apples")
    w.store.add_user_message(a, "Tell me about orchards")
    b = w.store.create("Bananas")
    w.store.add_user_message(b, "Tell me about bananas")
    w._refresh_conversations()
    titles = [w.sidebar.list.item(i).text() for i in range(w.sidebar.list.count())]
    assert titles == ["Bananas", "Apples"]
    w.sidebar.pin_requested.emit(a, True)
    assert w.sidebar.list.item(0).text() == "★ Apples"
    w.sidebar.rename_requested.emit(b, "Yellow fruit")
    qtbot.waitUntil(lambda: "Yellow fruit" in w.sidebar.list.item(1).text())
    w.sidebar.list.setCurrentRow(1)
    assert w.session.conversation_id == b
    assert "Tell me about bananas" in w.chat_view.toPlainText()
    w.delete_chat(b)
    assert w.sidebar.list.count() == 1 and w.sidebar.undo_button.isVisibleTo(w)
    qtbot.mouseClick(w.sidebar.undo_button, Qt.LeftButton)
    assert w.sidebar.list.count() == 2 and w.session.conversation_id == b
    qtbot.keyClick(w, Qt.Key_F, Qt.ControlModifier)
    assert w.sidebar.search.hasFocus() or QGuiApplication.focusObject() is w.sidebar.search
    w.sidebar.search.setText("orchards")
    qtbot.waitUntil(lambda: w.sidebar.list.count() == 1 and "Apples" in w.sidebar.list.item(0).text(),
                    timeout=10000)
    w.sidebar.list.setCurrentRow(0)
    assert w.session.conversation_id == a
    w.sidebar.search.clear()
    n = w.sidebar.list.count()
    qtbot.keyClick(w, Qt.Key_N, Qt.ControlModifier)
    assert w.sidebar.list.count() == n + 1 and w.chat_view.toPlainText() == ""


def test_context_meter_follows_typing_and_marks_where_memory_begins(qtbot, make_window):
    w = make_window(n_ctx=512, max_tokens=64)
    conv = w.store.create("Long")
    for i in range(6):
        w.store.add_user_message(conv, f"Question {i}: " + "tell me about the sea and the sky " * 12)
        reply = w.store.start_reply(conv)
        reply.append(f"Answer {i}: " + "the sea is wide and the sky is blue " * 12)
        reply.finish("complete")
    with qtbot.waitSignal(w.context_updated, timeout=20000) as blocker:
        w.session.open(conv)
    report = blocker.args[0]
    assert report.n_ctx == 512 and 0 < report.used <= 512 and report.dropped >= 2
    assert memory_marker_text(report.dropped) in w.chat_view.toPlainText()
    assert "/ 512 tokens" in w.context_meter.label.text()
    # typing grows the count (debounced, measured on the engine thread)
    w2_conv = w.store.create("Short")
    with qtbot.waitSignal(w.context_updated, timeout=20000) as empty:
        w.session.open(w2_conv)
    with qtbot.waitSignal(w.context_updated, timeout=20000) as typed:
        qtbot.keyClicks(w.composer, "How many legs does a llama have? " * 3)
    assert typed.args[0].used > empty.args[0].used
    assert f"{typed.args[0].used:,} / 512 tokens" in w.context_meter.label.text()


def test_settings_persist_across_a_restart_and_bad_values_are_refused(qtbot, make_window):
    w = make_window()
    dialog = w.open_settings()
    qtbot.addWidget(dialog)
    dialog.preset.setCurrentText("Precise")
    assert dialog.temperature.value() == 0.2
    dialog.max_tokens.setValue(321)
    dialog.system_prompt.setPlainText("You answer in one sentence.")
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.seed.setText("seven")
    assert not dialog.save_button.isEnabled() and "Seed must be" in dialog.error_label.text()
    dialog.seed.setText("7")
    dialog.models_dir.setText("relative/path")
    assert not dialog.save_button.isEnabled()
    dialog.models_dir.setText("")
    assert dialog.save_button.isEnabled()
    qtbot.mouseClick(dialog.save_button, Qt.LeftButton)
    assert w.theme == "dark" and w.settings.params.max_tokens == 321
    w.close()
    saved = load_settings()
    assert (saved.params.temperature, saved.params.max_tokens, saved.params.seed, saved.theme) == (0.2, 321, 7, "dark")
    assert saved.system_prompt == "You answer in one sentence."
    w2 = make_window(max_tokens=None)
    assert w2.settings.params.max_tokens == 321 and w2.theme == "dark"


def test_settings_file_keeps_good_values_and_drops_bad_ones(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{"temperature": 9, "top_k": 12, "theme": "pink", "gpu_layers": "20", "seed": 4}')
    s = load_settings(path)
    assert (s.params.temperature, s.params.top_k, s.theme, s.load.gpu_layers, s.params.seed) == (0.7, 12, "system", 20, 4)
    s.load.n_ctx = 10
    try:
        save_settings(s, path)
    except ValueError as exc:
        assert "Context size" in str(exc)
    else:
        raise AssertionError("invalid settings were saved")
    assert Settings().with_preset("Creative").preset_name() == "Creative"


def test_geometry_and_splitter_persist(qtbot, make_window):
    w = make_window()
    # Stay inside the (small) offscreen screen, so restoreGeometry has nothing to clamp.
    avail = w.screen().availableGeometry()
    width = max(w.minimumSizeHint().width(), min(1040, avail.width() - 20))
    height = max(w.minimumSizeHint().height(), min(640, avail.height() - 20))
    w.resize(width, height)
    w.splitter.setSizes([300, width - 300])
    size, sizes = w.size(), w.splitter.sizes()
    w.close()
    w2 = make_window()
    assert w2.size() == size
    assert abs(w2.splitter.sizes()[0] - sizes[0]) <= 20


def test_every_shortcut_is_bound_to_an_action():
    for keys, action, text in SHORTCUTS:
        assert text
        assert not action or callable(getattr(MainWindow, action))


def test_system_prompt_default_and_per_conversation(qtbot, make_window):
    w = make_window()
    conv = w.session.new_conversation()
    assert w.session.engine_messages()[0].content == w.settings.system_prompt
    w.store.set_system_prompt(conv, "Answer like a pirate.")
    assert w.session.engine_messages()[0].content == "Answer like a pirate."


def test_the_sampling_settings_are_what_the_reply_is_generated_with(qtbot, make_window):
    w = make_window(max_tokens=None)
    s = load_settings()
    s.params = replace(s.params, max_tokens=5, temperature=0.0, seed=3)
    w.apply_settings(s)                    # what the Settings dialog's Save does
    assert send_and_wait(qtbot, w, "Tell me a long story about the sea.") == "length"
    reply = active_path(w)[-1]
    assert reply.stats["gen_tokens"] == 5 and reply.stats["length_limit"] == 5
    assert (reply.params["max_tokens"], reply.params["temperature"], reply.params["seed"]) == (5, 0.0, 3)
