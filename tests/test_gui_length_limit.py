"""A reply cut by a length limit says why it ended and offers Continue; Continue picks up
exactly where the reply stopped."""
from __future__ import annotations

import pytest

from app.chat.conversation_views import message_view
from engine.types import GenerationParams
from tests.gui_helpers import active_path, send_and_wait

pytestmark = pytest.mark.usefixtures("one_engine_thread")


STORY = "Write a long story about a girl named Lila who sews a cloth on a boat."


def test_a_reply_cut_by_max_tokens_says_so_and_continues_in_place(qtbot, make_window):
    w = make_window(max_tokens=40)
    assert send_and_wait(qtbot, w, STORY) == "length"
    whole = active_path(w)[-1].content
    # another answer beside it, the same one (greedy) but cut at 9 tokens
    w.settings.params = GenerationParams(max_tokens=9, temperature=0.0, seed=1)
    with qtbot.waitSignal(w.reply_completed, timeout=60000):
        w.regenerate_last()
    reply = active_path(w)[-1]
    assert reply.state == "complete" and reply.stats["stop_reason"] == "length"
    assert whole.startswith(reply.content) and len(reply.content) < len(whole)
    shown = w.chat_view.toPlainText()
    assert "Reply reached the length limit (9 tokens). Continue" in shown
    assert message_view(w.store, reply).state == "truncated"

    w.settings.params = GenerationParams(max_tokens=31, temperature=0.0, seed=1)
    with qtbot.waitSignal(w.reply_completed, timeout=60000) as done:
        w.chat_view.run_link(f"continue:{reply.id}")
    assert done.args[0] == "length"
    after = w.store.get_message(reply.id)
    # the same message, grown by exactly what one uninterrupted reply would have said
    assert active_path(w)[-1].id == reply.id
    assert after.content == whole
    assert whole.split()[-1] in w.chat_view.toPlainText()
    assert "Reply reached the length limit (31 tokens)." in w.chat_view.toPlainText()


def test_a_finished_reply_offers_no_continue(qtbot, make_window):
    w = make_window(max_tokens=200)
    assert send_and_wait(qtbot, w, "Say hi.") == "eog"
    assert "Continue" not in w.chat_view.toPlainText()
    assert "length limit" not in w.chat_view.toPlainText()
