"""The trash: deleted conversations, to restore or to delete for good (after asking)."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHBoxLayout, QLabel,
                               QListWidget, QListWidgetItem, QMessageBox, QPushButton, QVBoxLayout)
from app.widgets.status_text import show_status

from chat.records import ChatStoreError, when_text
from common.task import plural

ID_ROLE = Qt.UserRole


class TrashDialog(QDialog):
    conversations_restored = Signal(list)
    """These conversations (ids) came back from the trash."""
    conversations_purged = Signal(list)
    """These conversations (ids) were deleted for good."""

    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self.setWindowTitle("Trash")
        self.resize(460, 420)
        self.intro = QLabel("Deleted chats stay here until you delete them for good.")
        self.intro.setObjectName("MutedLabel")
        self.intro.setWordWrap(True)
        self.list = QListWidget()
        self.list.setAccessibleName("Deleted conversations")
        self.list.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.ElideRight)
        self.list.setSpacing(2)
        self.status = QLabel("")
        self.status.setObjectName("MutedLabel")
        self.status.setWordWrap(True)
        self.restore_button = QPushButton("Restore")
        self.restore_button.setObjectName("PrimaryButton")
        self.restore_button.setAccessibleName("Restore the selected chats")
        self.delete_button = QPushButton("Delete forever…")
        self.delete_button.setObjectName("DangerButton")
        self.delete_button.setAccessibleName("Delete the selected chats for good")
        self.empty_button = QPushButton("Empty trash…")
        self.empty_button.setObjectName("DangerButton")
        self.empty_button.setAccessibleName("Empty the trash")
        closing = QDialogButtonBox(QDialogButtonBox.Close)
        closing.button(QDialogButtonBox.Close).setIcon(QIcon())   # the style's black icon is lost on dark
        self.confirm_box = None

        actions = QHBoxLayout()
        actions.addWidget(self.restore_button)
        actions.addWidget(self.delete_button)
        actions.addStretch(1)
        actions.addWidget(self.empty_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.status)
        layout.addLayout(actions)
        layout.addWidget(closing)

        self.list.itemSelectionChanged.connect(self._on_list_selection_changed)
        self.list.itemDoubleClicked.connect(lambda _item: self._on_restore_clicked())
        self.restore_button.clicked.connect(self._on_restore_clicked)
        self.delete_button.clicked.connect(self._on_delete_clicked)
        self.empty_button.clicked.connect(self._on_empty_clicked)
        closing.rejected.connect(self.close)
        self.refresh()

    # showing ----------------------------------------------------------------------
    def present(self) -> None:
        """Show it up to date, in front."""
        self.refresh()
        self.show()
        self.raise_()
        self.activateWindow()

    def refresh(self) -> None:
        """Refill from the store, keeping the selection where it still applies."""
        keep = set(self.selected_ids())
        self.list.clear()
        try:
            convs = self.store.list(trash=True)
        except ChatStoreError as exc:
            convs = []
            self.say(str(exc), error=True)
        for conv in convs:
            title = " ".join(conv.display_title.split())
            item = QListWidgetItem(f"{title}\n   deleted {when_text(conv.deleted)} · "
                                   f"{plural(conv.message_count, 'message')}")
            item.setData(ID_ROLE, conv.id)
            item.setData(Qt.AccessibleTextRole, title)
            item.setToolTip(title)
            self.list.addItem(item)
            item.setSelected(conv.id in keep)
        if not convs:
            item = QListWidgetItem("The trash is empty.")
            item.setFlags(Qt.NoItemFlags)
            self.list.addItem(item)
        self.empty_button.setEnabled(bool(convs))
        self._on_list_selection_changed()

    def selected_ids(self) -> list[int]:
        return [it.data(ID_ROLE) for it in self.list.selectedItems() if it.data(ID_ROLE) is not None]

    def trash_ids(self) -> list[int]:
        return [self.list.item(i).data(ID_ROLE) for i in range(self.list.count())
                if self.list.item(i).data(ID_ROLE) is not None]

    def say(self, text: str, error: bool = False) -> None:
        show_status(self.status, text, error)

    # handlers -----------------------------------------------------------------------
    def _on_list_selection_changed(self) -> None:
        chosen = bool(self.selected_ids())
        self.restore_button.setEnabled(chosen)
        self.delete_button.setEnabled(chosen)

    def _on_restore_clicked(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        try:
            for conv_id in ids:
                self.store.restore(conv_id)
        except ChatStoreError as exc:
            self.say(f"Could not restore: {exc}", error=True)
            return
        self.refresh()
        self.say(f"Restored {plural(len(ids), 'chat')}.")
        self.conversations_restored.emit(ids)

    def _on_delete_clicked(self) -> None:
        ids = self.selected_ids()
        if ids:
            self._confirm(ids, f"Delete {plural(len(ids), 'chat')} for good?"
                          if len(ids) > 1 else f"Delete “{self.list.selectedItems()[0].toolTip()}” for good?")

    def _on_empty_clicked(self) -> None:
        ids = self.trash_ids()
        if ids:
            self._confirm(ids, f"Empty the trash? This deletes {plural(len(ids), 'chat')} for good.",
                          empty=True)

    def _confirm(self, ids: list[int], question: str, empty: bool = False) -> None:
        box = QMessageBox(QMessageBox.Warning, "Empty trash" if empty else "Delete forever", question,
                          QMessageBox.Yes | QMessageBox.Cancel, self)
        box.setInformativeText("Their messages are deleted too. This cannot be undone.")
        box.button(QMessageBox.Yes).setText("Empty trash" if empty else "Delete forever")
        box.setDefaultButton(QMessageBox.Cancel)
        box.finished.connect(lambda result: self._on_confirm_finished(result, ids, empty))
        self.confirm_box = box
        box.open()

    def _on_confirm_finished(self, result: int, ids: list[int], empty: bool) -> None:
        self.confirm_box = None
        if result != QMessageBox.Yes:
            return
        try:
            if empty:       # what is in the trash now, should a chat have arrived meanwhile
                ids = [c.id for c in self.store.list(trash=True)]
                self.store.empty_trash()
            else:
                for conv_id in ids:
                    self.store.purge(conv_id)
        except ChatStoreError as exc:
            self.say(f"Could not delete: {exc}", error=True)
            return
        self.refresh()
        self.say(f"Deleted {plural(len(ids), 'chat')} for good.")
        self.conversations_purged.emit(ids)
