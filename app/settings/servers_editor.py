"""A small table of remote OpenAI-compatible servers: name, address, API key, model.

The API key is a secret: its cell shows dots, and its editor is a password field.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QLineEdit, QPushButton, QStyledItemDelegate,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from common.settings import RemoteServer

COLUMNS = ("Name", "Address", "API key", "Model")
COLUMN_TIPS = ("A name for the model list", "The server's OpenAI-compatible address, e.g. "
               "http://127.0.0.1:8080/v1", "Only if the server asks for one", "Empty: the server's default model")
KEY_COLUMN = 2
MASK = "••••••••"


class _SecretDelegate(QStyledItemDelegate):
    """Edits the API key in a password field; the cell keeps the key out of sight."""

    def createEditor(self, parent, option, index):  # noqa: N802 (Qt's name)
        editor = QLineEdit(parent)
        editor.setEchoMode(QLineEdit.Password)
        editor.setAccessibleName("API key")
        return editor

    def setEditorData(self, editor, index):  # noqa: N802
        editor.setText(index.data(Qt.UserRole) or "")

    def setModelData(self, editor, model, index):  # noqa: N802
        key = editor.text().strip()
        model.setData(index, key, Qt.UserRole)
        model.setData(index, MASK if key else "", Qt.DisplayRole)


class ServersEditor(QWidget):
    changed = Signal()
    """A row was added, removed or edited."""

    def __init__(self, servers: list[RemoteServer], parent=None):
        super().__init__(parent)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setAccessibleName("Remote servers")
        header = self.table.horizontalHeader()
        for col, tip in enumerate(COLUMN_TIPS):
            self.table.horizontalHeaderItem(col).setToolTip(tip)
        # every header reads whole; the address takes the room that is left
        for col in range(len(COLUMNS)):
            if col == 1:
                header.setSectionResizeMode(col, QHeaderView.Stretch)
            else:
                header.setSectionResizeMode(col, QHeaderView.Interactive)
                header.resizeSection(col, header.sectionSizeHint(col) + 12)
        self.table.setMinimumHeight(110)
        self.table.setItemDelegateForColumn(KEY_COLUMN, _SecretDelegate(self.table))
        add = QPushButton("Add")
        remove = QPushButton("Remove")
        add.setAccessibleName("Add remote server")
        remove.setAccessibleName("Remove remote server")
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        for s in servers:
            self.add_row(s)
        add.clicked.connect(lambda: self.add_row(RemoteServer("Server", "http://127.0.0.1:8080/v1")))
        remove.clicked.connect(self._on_remove_clicked)
        self.table.itemChanged.connect(lambda _item: self.changed.emit())

    def add_row(self, s: RemoteServer) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        for col, value in enumerate((s.name, s.base_url, s.api_key, s.model)):
            item = QTableWidgetItem(MASK if col == KEY_COLUMN and value else value)
            if col == KEY_COLUMN:
                item.setData(Qt.UserRole, value)
            self.table.setItem(row, col, item)
        self.changed.emit()

    def servers(self) -> list[RemoteServer]:
        out = []
        for row in range(self.table.rowCount()):
            cells = [self._cell(row, c) for c in range(len(COLUMNS))]
            out.append(RemoteServer(*cells))
        return out

    def _cell(self, row: int, col: int) -> str:
        item = self.table.item(row, col)
        if item is None:
            return ""
        if col == KEY_COLUMN:
            return (item.data(Qt.UserRole) or "").strip()
        return item.text().strip()

    def _on_remove_clicked(self) -> None:
        row = self.table.currentRow()
        if row >= 0:
            self.table.removeRow(row)
            self.changed.emit()
