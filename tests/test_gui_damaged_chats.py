"""The window lists, opens and trashes conversations whose rows another tool damaged."""
from __future__ import annotations

import sqlite3

import pytest
from PySide6.QtCore import Qt

from chat.store import ChatStore
from tests.test_chat_hostile_import import DAMAGE

pytestmark = pytest.mark.usefixtures("one_engine_thread")


def test_damaged_rows_are_listed_opened_and_trashed(qtbot, make_window):
    with ChatStore.open() as store:
        ids = {}
        for key in "abcd":
            conv = ids[key] = store.create(title=f"Chat {key}")
            q = store.add_user_message(conv, f"Question {key}")
            w = store.start_reply(conv, q)
            w.append(f"Answer {key}")
            w.finish(stats={"tokens_per_s": 10.0}, token_count=2)
        store.delete(ids["d"])
        path = store.path
    db = sqlite3.connect(path)
    for sql in DAMAGE:
        db.execute(sql.format(**ids))
    db.commit()
    db.close()

    w = make_window()
    assert w.sidebar.list.count() == 3 and w.sidebar.trash_button.text() == "Trash (1)"
    shown = []
    for row in range(3):
        w.sidebar.list.setCurrentRow(row)
        assert w.session.conversation_id == w.sidebar.list.item(row).data(Qt.UserRole)
        shown.append(w.chat_view.toPlainText())
    assert any("Answer b" in text for text in shown)            # a narrator, odd state, bad times
    assert any("\ufffd(" in text for text in shown)              # broken UTF-8 read with U+FFFD
    w.delete_chat(ids["a"])
    trash = w.open_trash()
    shown = {trash.list.item(i).text().split("\n")[0]: trash.list.item(i).text() for i in range(trash.list.count())}
    assert set(shown) == {"Chat a", "Chat d"}
    assert "deleted unknown time" in shown["Chat d"] and "unknown" not in shown["Chat a"]
    trash.close()
