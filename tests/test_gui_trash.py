"""The trash in the window: the sidebar's Trash button opens it; restore, delete forever
and empty trash (both asked first)."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

pytestmark = pytest.mark.usefixtures("one_engine_thread")


def _titles(widget_list) -> list[str]:
    return [widget_list.item(i).text().split("\n")[0] for i in range(widget_list.count())]


def _select(trash, *titles) -> None:
    trash.list.clearSelection()
    for i in range(trash.list.count()):
        if trash.list.item(i).text().split("\n")[0] in titles:
            trash.list.item(i).setSelected(True)


def test_trash_lists_deleted_chats_to_restore_or_delete_for_good(qtbot, make_window):
    w = make_window()
    ids = {}
    for title in ("Apples", "Bananas", "Cherries", "Dates"):
        ids[title] = w.store.create(title)
        w.store.add_user_message(ids[title], f"Tell me about {title.lower()}")
    w._refresh_conversations()
    assert w.sidebar.trash_button.text() == "Trash"
    for title in ("Apples", "Bananas", "Cherries"):
        w.delete_chat(ids[title])
    assert _titles(w.sidebar.list) == ["Dates"]
    assert w.sidebar.trash_button.text() == "Trash (3)"

    qtbot.mouseClick(w.sidebar.trash_button, Qt.LeftButton)
    trash = w._trash
    assert trash.isVisible() and trash.windowTitle() == "Trash"
    assert _titles(trash.list) == ["Cherries", "Bananas", "Apples"]     # most recently deleted first
    assert "deleted " in trash.list.item(0).text() and "1 message" in trash.list.item(0).text()
    assert not trash.restore_button.isEnabled() and not trash.delete_button.isEnabled()

    # restore: back in the list, opened, and gone from the trash
    _select(trash, "Bananas")
    assert trash.restore_button.isEnabled()
    with qtbot.waitSignal(trash.conversations_restored):
        qtbot.mouseClick(trash.restore_button, Qt.LeftButton)
    assert _titles(trash.list) == ["Cherries", "Apples"]
    assert "Bananas" in _titles(w.sidebar.list) and w.session.conversation_id == ids["Bananas"]
    assert "Tell me about bananas" in w.chat_view.toPlainText()
    assert w.sidebar.trash_button.text() == "Trash (2)" and trash.status.text() == "Restored 1 chat."
    # the undo for the last delete (Cherries) still works while it is in the trash
    assert w.sidebar.undo_button.isVisibleTo(w)

    # delete forever asks first; Cancel keeps it
    _select(trash, "Cherries")
    qtbot.mouseClick(trash.delete_button, Qt.LeftButton)
    box = trash.confirm_box
    assert box.isVisible() and box.text() == "Delete “Cherries” for good?"
    assert "cannot be undone" in box.informativeText()
    assert box.defaultButton() is box.button(QMessageBox.Cancel)
    qtbot.mouseClick(box.button(QMessageBox.Cancel), Qt.LeftButton)
    assert _titles(trash.list) == ["Cherries", "Apples"]
    qtbot.mouseClick(trash.delete_button, Qt.LeftButton)
    with qtbot.waitSignal(trash.conversations_purged):
        qtbot.mouseClick(trash.confirm_box.button(QMessageBox.Yes), Qt.LeftButton)
    assert _titles(trash.list) == ["Apples"]
    assert [c.display_title for c in w.store.list(trash=True)] == ["Apples"]
    assert ids["Cherries"] not in [r[0] for r in w.store._rows("SELECT id FROM conversations")]
    # Cherries was the last delete: its undo is gone with it
    assert not w.sidebar.undo_button.isVisibleTo(w) and w.session.last_deleted is None

    # a chat deleted while the trash is open shows up in it
    w.delete_chat(ids["Dates"])
    assert _titles(trash.list) == ["Dates", "Apples"] and trash.empty_button.isEnabled()

    # empty trash asks first, then deletes everything in it
    qtbot.mouseClick(trash.empty_button, Qt.LeftButton)
    box = trash.confirm_box
    assert box.text() == "Empty the trash? This deletes 2 chats for good."
    assert box.button(QMessageBox.Yes).text() == "Empty trash"
    with qtbot.waitSignal(trash.conversations_purged) as purged:
        qtbot.mouseClick(box.button(QMessageBox.Yes), Qt.LeftButton)
    assert sorted(purged.args[0]) == sorted([ids["Apples"], ids["Dates"]])
    assert w.store.list(trash=True) == [] and _titles(trash.list) == ["The trash is empty."]
    assert not trash.empty_button.isEnabled() and w.sidebar.trash_button.text() == "Trash"
    assert _titles(w.sidebar.list) == ["Bananas"]
    trash.close()


def test_the_trash_says_why_when_the_chats_are_read_only(qtbot, make_window, tmp_path):
    from chat.store import ChatStore

    w = make_window()
    conv = w.store.create("Kept")
    w.store.delete(conv)
    reader = ChatStore.open(w.store.path, read_only=True)
    try:
        from app.sidebar.trash_dialog import TrashDialog

        trash = TrashDialog(reader)
        qtbot.addWidget(trash)
        trash.show()
        _select(trash, "Kept")
        qtbot.mouseClick(trash.restore_button, Qt.LeftButton)
        assert trash.status.text().startswith("Could not restore: the chats are open read-only")
        assert trash.status.objectName() == "ErrorLabel"
        assert [c.display_title for c in w.store.list(trash=True)] == ["Kept"]
        trash.close()
    finally:
        reader.close()
