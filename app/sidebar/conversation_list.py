"""The sidebar widget. It shows what it is given and says what the user asked for."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QMenu, QPushButton, QVBoxLayout, QWidget)

from common.task import plural

ID_ROLE = Qt.UserRole
HIT_ROLE = Qt.UserRole + 1
UNDO_VISIBLE_MS = 10000


class ConversationList(QWidget):
    new_requested = Signal()
    """The user asked for a new, empty chat."""
    conversation_selected = Signal(int)
    """The user picked this conversation."""
    search_hit_selected = Signal(int, int)
    """The user picked a search result: conversation id, message id."""
    rename_requested = Signal(int, str)
    """The user renamed a conversation in place."""
    pin_requested = Signal(int, bool)
    """Pin (True) or unpin (False) a conversation."""
    archive_requested = Signal(int, bool)
    """Archive (True) or bring back (False) a conversation."""
    delete_requested = Signal(int)
    """Move a conversation to the trash."""
    system_prompt_requested = Signal(int)
    """The user wants to set this conversation's own system prompt."""
    undo_delete_requested = Signal()
    """Bring back the conversation deleted last."""
    search_changed = Signal(str)
    """The search text changed (empty: show the list again)."""
    show_archived_changed = Signal(bool)
    """The user toggled whether archived chats are listed."""
    trash_requested = Signal()
    """The user wants to see the trash (to restore or delete for good)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("Sidebar")
        self.setAttribute(Qt.WA_StyledBackground, True)
        self.new_button = QPushButton("New chat")
        self.new_button.setObjectName("PrimaryButton")
        self.new_button.setAccessibleName("New chat")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search chats (Ctrl+F)")
        self.search.setAccessibleName("Search chats")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget()
        self.list.setAccessibleName("Conversations")
        self.list.setContextMenuPolicy(Qt.CustomContextMenu)
        self.list.setEditTriggers(QListWidget.EditKeyPressed)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.ElideRight)
        self.show_archived = QCheckBox("Show archived")
        self.trash_button = QPushButton("Trash")
        self.trash_button.setToolTip("Deleted chats: restore them or delete them for good")
        self.trash_button.setAccessibleName("Trash")
        self.undo_button = QPushButton("Undo delete")
        self.undo_button.setAccessibleName("Undo delete")
        self.undo_button.hide()
        self.undo_label = QLabel("")
        self.undo_label.setObjectName("MutedLabel")
        self.undo_label.setWordWrap(True)
        self.undo_label.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.addWidget(self.new_button)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 1)
        undo_row = QHBoxLayout()
        undo_row.addWidget(self.undo_label, 1)
        undo_row.addWidget(self.undo_button)
        layout.addLayout(undo_row)
        bottom_row = QHBoxLayout()
        bottom_row.addWidget(self.show_archived)
        bottom_row.addStretch(1)
        bottom_row.addWidget(self.trash_button)
        layout.addLayout(bottom_row)

        self._undo_timer = QTimer(self, singleShot=True, interval=UNDO_VISIBLE_MS)
        self._undo_timer.timeout.connect(self._on_undo_timer_timeout)
        self._filling = False
        self.new_button.clicked.connect(self.new_requested)
        self.search.textChanged.connect(self.search_changed)
        self.list.currentItemChanged.connect(self._on_list_current_changed)
        self.list.itemChanged.connect(self._on_list_item_changed)
        self.list.customContextMenuRequested.connect(self._on_list_menu_requested)
        self.undo_button.clicked.connect(self._on_undo_clicked)
        self.show_archived.toggled.connect(self.show_archived_changed)
        self.trash_button.clicked.connect(self.trash_requested)

    # filling ----------------------------------------------------------------
    def set_conversations(self, conversations, current_id=None) -> None:
        """Show conversations (chat.records.Conversation), pinned first as the store orders them."""
        self._filling = True
        self.list.clear()
        for conv in conversations:
            title = conv.display_title
            label = ("★ " if conv.pinned else "") + title + ("  (archived)" if conv.archived else "")
            item = QListWidgetItem(label)
            item.setData(ID_ROLE, conv.id)
            item.setData(HIT_ROLE, None)
            item.setData(Qt.AccessibleTextRole, title)
            item.setFlags(item.flags() | Qt.ItemIsEditable)
            item.setToolTip(title)
            self.list.addItem(item)
            if conv.id == current_id:
                self.list.setCurrentItem(item)
        self._filling = False

    def set_search_results(self, hits) -> None:
        """Show search hits (chat.records.SearchHit) instead of the list."""
        self._filling = True
        self.list.clear()
        for hit in hits:
            snippet = " ".join(hit.snippet.split())
            item = QListWidgetItem(f"{hit.conversation_title}\n   {snippet}")
            item.setData(ID_ROLE, hit.conversation_id)
            item.setData(HIT_ROLE, hit.message_id)
            self.list.addItem(item)
        if not hits:
            item = QListWidgetItem("No chat matches.")
            item.setFlags(Qt.NoItemFlags)
            self.list.addItem(item)
        self._filling = False

    def select(self, conversation_id) -> None:
        self._filling = True
        for i in range(self.list.count()):
            if self.list.item(i).data(ID_ROLE) == conversation_id:
                self.list.setCurrentRow(i)
        self._filling = False

    def set_trash_count(self, count: int) -> None:
        self.trash_button.setText(f"Trash ({count})" if count else "Trash")
        self.trash_button.setAccessibleName(f"Trash, {plural(count, 'chat')}")

    def show_undo(self, title: str) -> None:
        self.undo_label.setText(f"Moved “{title}” to the trash.")
        self.undo_label.show()
        self.undo_button.show()
        self._undo_timer.start()

    def hide_undo(self) -> None:
        self.undo_label.hide()
        self.undo_button.hide()
        self._undo_timer.stop()

    def current_id(self):
        item = self.list.currentItem()
        return item.data(ID_ROLE) if item else None

    # handlers ---------------------------------------------------------------
    def _on_list_current_changed(self, item, _previous) -> None:
        if self._filling or item is None or item.data(ID_ROLE) is None:
            return
        hit = item.data(HIT_ROLE)
        if hit is not None:
            self.search_hit_selected.emit(item.data(ID_ROLE), hit)
        else:
            self.conversation_selected.emit(item.data(ID_ROLE))

    def _on_list_item_changed(self, item) -> None:
        if self._filling or item.data(HIT_ROLE) is not None:
            return
        title = item.text().removeprefix("★ ").removesuffix("  (archived)").strip()
        if title:
            self.rename_requested.emit(item.data(ID_ROLE), title)

    def _on_list_menu_requested(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None or item.data(ID_ROLE) is None or item.data(HIT_ROLE) is not None:
            return
        conv_id = item.data(ID_ROLE)
        pinned = item.text().startswith("★ ")
        archived = item.text().endswith("(archived)")
        menu = QMenu(self)
        menu.addAction("Rename", lambda: self.list.editItem(item))
        menu.addAction("System prompt…", lambda: self.system_prompt_requested.emit(conv_id))
        menu.addAction("Unpin" if pinned else "Pin", lambda: self.pin_requested.emit(conv_id, not pinned))
        menu.addAction("Unarchive" if archived else "Archive",
                       lambda: self.archive_requested.emit(conv_id, not archived))
        menu.addSeparator()
        menu.addAction("Delete", lambda: self.delete_requested.emit(conv_id))
        menu.popup(self.list.viewport().mapToGlobal(pos))

    def _on_undo_clicked(self) -> None:
        self.hide_undo()
        self.undo_delete_requested.emit()

    def _on_undo_timer_timeout(self) -> None:
        self.hide_undo()
