"""The chat with a real model: stream, regenerate, branches, continue, stop, close mid-reply."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.main_window import MainWindow
from engine.types import GenerationParams
from tests.gui_helpers import active_path, send_and_wait

pytestmark = pytest.mark.usefixtures("one_engine_thread")


def test_reply_streams_in_frames_and_is_saved_with_stats(qtbot, make_window):
    w = make_window(max_tokens=40)
    frames = []
    w.chat_view.frame_rendered.connect(frames.append)
    assert send_and_wait(qtbot, w, "Name three colours.") in ("eog", "length")
    user, reply = active_path(w)
    assert (user.role, user.content) == ("user", "Name three colours.")
    assert reply.role == "assistant" and reply.state == "complete" and reply.content.strip()
    assert reply.stats["gen_tokens"] > 1 and reply.stats["ttft_s"] is not None
    assert frames, "the reply was never painted while streaming"
    assert reply.content.strip().splitlines()[0][:20] in w.chat_view.toPlainText()
    assert "tok/s" in w.chat_view.toPlainText() and "first token" in w.chat_view.toPlainText()
    # the conversation got its title from the first message
    assert w.sidebar.list.item(0).text() == "Name three colours."
    qtbot.keyClick(w, Qt.Key_C, Qt.ControlModifier | Qt.ShiftModifier)
    assert QApplication.clipboard().text() == reply.content


def test_code_blocks_render_with_a_copy_link(qtbot, make_window):
    w = make_window()
    conv = w.store.create()
    w.store.add_user_message(conv, "Show code")
    writer = w.store.start_reply(conv)
    writer.append("Here:\n\n```python\nprint('hi')\n```\n\nand **bold**.")
    writer.finish("complete")
    w.session.open(conv)
    text = w.chat_view.toPlainText()
    assert "Copy code" in text and "print('hi')" in text and "**" not in text
    reply = active_path(w)[-1]
    w.chat_view.run_link(f"copy-code:{reply.id}:0")
    assert QApplication.clipboard().text() == "print('hi')\n"


def test_regenerate_and_navigate_alternatives(qtbot, make_window):
    w = make_window()
    send_and_wait(qtbot, w, "Say hello.")
    first = active_path(w)[-1]
    w.settings.params = GenerationParams(max_tokens=24, temperature=1.0, seed=99)
    with qtbot.waitSignal(w.reply_completed, timeout=120000):
        w.chat_view.run_link(f"regen:{first.id}")
    second = active_path(w)[-1]
    assert second.id != first.id and second.parent_id == first.parent_id
    assert "2/2" in w.chat_view.toPlainText()
    w.chat_view.run_link(f"sibling:{second.id}:-1")
    assert active_path(w)[-1].id == first.id
    assert "1/2" in w.chat_view.toPlainText()
    assert first.content.strip()[:15] in w.chat_view.toPlainText()
    w.chat_view.run_link(f"sibling:{first.id}:1")
    assert active_path(w)[-1].id == second.id


def test_edit_makes_a_branch(qtbot, make_window):
    w = make_window()
    send_and_wait(qtbot, w, "What is 2+2?")
    old_user = active_path(w)[0]
    w.chat_view.run_link(f"edit:{old_user.id}")
    assert w.composer.toPlainText() == "What is 2+2?" and w.edit_banner.isVisibleTo(w)
    w.composer.selectAll()
    qtbot.keyClicks(w.composer, "What is 3+3?")
    with qtbot.waitSignal(w.reply_completed, timeout=120000):
        qtbot.keyClick(w.composer, Qt.Key_Return)
    new_user, new_reply = active_path(w)
    assert new_user.content == "What is 3+3?" and new_user.id != old_user.id
    assert new_reply.parent_id == new_user.id
    siblings, index = w.store.siblings(new_user.id)
    assert [m.id for m in siblings] == [old_user.id, new_user.id] and index == 1
    w.chat_view.run_link(f"sibling:{new_user.id}:-1")
    assert active_path(w)[0].content == "What is 2+2?"
    assert len(active_path(w)) == 2          # the old branch keeps its own reply


def test_escape_stops_and_continue_extends_the_reply(qtbot, make_window):
    w = make_window()
    w.settings.params = GenerationParams(max_tokens=400, temperature=0.8, seed=3)
    tokens = []
    w.worker.token_received.connect(tokens.append)
    w.send("Write a long story about a llama.")
    qtbot.waitUntil(lambda: len(tokens) >= 8, timeout=120000)
    with qtbot.waitSignal(w.reply_completed, timeout=30000) as blocker:
        qtbot.keyClick(w.composer, Qt.Key_Escape)
    assert blocker.args[0] == "cancelled"
    reply = active_path(w)[-1]
    assert reply.state == "cancelled" and reply.content
    assert "Reply stopped before the end." in w.chat_view.toPlainText()
    w.settings.params = GenerationParams(max_tokens=16, temperature=0.0, seed=1)
    with qtbot.waitSignal(w.reply_completed, timeout=120000):
        w.chat_view.run_link(f"continue:{reply.id}")
    after = w.store.get_message(reply.id)
    assert after.state == "complete"
    assert after.content.startswith(reply.content) and len(after.content) > len(reply.content)


def test_closing_mid_generation_saves_the_partial_reply(qtbot, smollm2_path):
    w = MainWindow(str(smollm2_path), n_ctx=1024)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.model_ready, timeout=120000)
    w.settings.params = GenerationParams(max_tokens=1000, temperature=0.8, seed=5)
    tokens = []
    w.worker.token_received.connect(tokens.append)
    w.send("Tell me everything about the history of llamas.")
    qtbot.waitUntil(lambda: len(tokens) >= 10, timeout=120000)
    conv = w.session.conversation_id
    w.close()
    assert not w.thread.isRunning()
    # a fresh window (a restart) finds the interrupted reply and can continue it
    w2 = MainWindow(str(smollm2_path), n_ctx=1024)
    qtbot.addWidget(w2)
    w2.show()
    qtbot.waitUntil(lambda: w2.model_ready, timeout=120000)
    w2.session.open(conv)
    reply = w2.store.active_path(conv)[-1]
    assert reply.role == "assistant" and reply.state == "cancelled"
    assert len(reply.content) >= len("".join(tokens[:10]))
    assert "Continue" in w2.chat_view.toPlainText()
    w2.close()
    assert QApplication.instance() is not None
